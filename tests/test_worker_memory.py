"""loky retires a worker whose memory grows by more than its leak limit and warns on stderr;
a worker that imports TensorFlow in a cell grows by 0.5 GB. The pool's limit allows that."""

import os
import time
import warnings

import numpy as np
import pytest
from joblib import delayed

from benchmark.execution.worker_pool import parallel, start_fork_server

pytestmark = pytest.mark.slow  # every test here trains a CNN or starts processes

_held = []  # what grow() keeps alive in a worker, as TensorFlow keeps its libraries and caches


def grow(megabytes):
    """Keep `megabytes` more memory alive in this worker (touched, so it counts as resident),
    as a first CNN cell does by importing TensorFlow, and return the worker's pid."""
    _held.append(np.ones(megabytes * 1_000_000 // 8))
    time.sleep(1.1)  # loky looks at a worker's memory at most once a second
    return os.getpid()


def test_workers_that_grow_like_tensorflow_workers_are_kept_without_a_warning():
    start_fork_server()
    with warnings.catch_warnings(record=True) as caught:  # loky warns from its manager thread
        warnings.simplefilter("always")
        pids = parallel(2)(delayed(grow)(350) for _ in range(6))
    stopped = [w for w in caught if "A worker stopped" in str(w.message)]
    assert not stopped
    assert len(set(pids)) == 2  # the same two workers ran all six tasks: none was retired
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)  # frees the 1 GB the workers now hold
