"""The local worker processes: forks of a server that has already imported the libraries,
shared by every parallel step of a run (preparing datasets, cells, plots).

Kept apart from benchmark.execution.backends (which imports scikit-learn) so the command line can start
the server before it imports anything heavy itself.

What this machinery buys, measured by `python benchmarks/worker_pool_value.py` (every classical
estimator, 5 folds, --jobs 2, wall time of the whole command, median of 3 interleaved runs on a
2-core machine shared with other jobs, 2026-11):

    workload                                 as shipped  no fork server   no exit gc.freeze
    digits                                   3.87 s      4.93 s (x1.27)   4.01 s (x1.04)
    trashnet folder, 50 per class (300 JPEGs) 6.56 s     7.61 s (x1.16)   6.77 s (x1.03)

- the fork server with PRELOAD (and preload_freeze's gc.freeze in it): about 1.05 s per run on
  both workloads - each worker otherwise imports scikit-learn, scikit-image and matplotlib
  itself. Kept. (preload_freeze was not measured apart from the server.)
- gc.freeze before exit (benchmark/__main__.py): 0.14-0.21 s per run. Kept.
Both together: x1.38 on digits, x1.20 on trashnet. IMAGE_BENCHMARK_NO_FORK_SERVER=1 turns the
server off, for that measurement only.

The workers' memory-leak limit (WORKER_MEMORY_GROWTH) is raised so that a worker that imports
TensorFlow is not retired after its first CNN cell.
"""

import multiprocessing
import os
from multiprocessing import forkserver

RUN_PID_VARIABLE = "BENCHMARK_RUN_PID"
# Set to 1: no fork server; workers are joblib's default fresh interpreters (loky), which import
# the libraries themselves. Only to measure what the server buys (benchmarks/worker_pool_value.py).
NO_FORK_SERVER_VARIABLE = "IMAGE_BENCHMARK_NO_FORK_SERVER"

# How much a worker's memory may grow before loky retires it. loky measures each worker's
# resident size after its first task and, when it later exceeds that by more than 300 MB
# (loky's `_MAX_MEMORY_LEAK_SIZE`), treats the worker as leaking: it retires it and warns
# "A worker stopped while some jobs were given to the executor ... memory leak" on stderr.
# Here a worker's first task is the warm-up or a dataset's preparation, and its first CNN cell
# then imports TensorFlow, which alone adds 518 MB; each later fit adds 20-40 MB of
# TensorFlow's caches (measured over 12 fits: +480 MB, 2026-11). So every worker that ran a
# CNN cell was retired right after it, throwing away the TensorFlow import the next CNN cell
# paid again (2 s of CPU). 2 GB leaves room for TensorFlow and dozens of fits, and still
# retires a worker that holds on to far more than a cell needs.
WORKER_MEMORY_GROWTH = int(2e9)  # bytes over the worker's size after its first task

# What every cell, and the report's plots, import. The fork server imports them once and each
# worker process starts as a fork of it, with them already in memory: a fresh interpreter spends
# about 1.4 s of CPU importing scikit-learn, scikit-image and matplotlib, paid once per worker
# otherwise. TensorFlow is not preloaded: it is only imported by the cells that need it, after
# the fork, as forking a process that has started TensorFlow's threads is unsafe.
PRELOAD = ["benchmark.execution.runner", "benchmark.data.catalog", "benchmark.data.duplicates", "benchmark.reporting.plots", "estimators",
           "features", "sklearn.ensemble", "skimage.data"]
# What a cell alone imports: the preload of a run with one isolated worker (--jobs 1), which
# only runs cells (the datasets and the plots are made in the run's process). Matplotlib and
# the data modules left out, the worker is ready sooner on a busy machine.
CELL_PRELOAD = ["benchmark.execution.cells", "estimators", "features", "sklearn.ensemble"]


def start_fork_server(extra=(), cells_only=False):
    """Start the fork server (where the system has one) and make joblib's workers fork from it.

    Returns at once: the server imports PRELOAD (and `extra`) in the background, on another
    core, while this process goes on (importing the same libraries, loading the data). Idempotent.
    Like any start method other than `fork`, it re-imports the main module in each worker, so a
    script that runs cells in parallel needs the `if __name__ == "__main__":` guard. Returns
    whether the server is in use (False on Windows: joblib's default start method then).
    `cells_only`: preload CELL_PRELOAD instead of PRELOAD (one worker that only runs cells).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False  # Windows: joblib's default (loky) start method
    if os.environ.get(NO_FORK_SERVER_VARIABLE) == "1":  # benchmarks/worker_pool_value.py's baseline
        return False
    # parent_death first: the server may be forked from after the run's process has died
    # (a request already sent), and its workers must still watch the run's process
    preload = CELL_PRELOAD if cells_only else PRELOAD
    forkserver.set_forkserver_preload(["benchmark.execution.parent_death"] + preload + list(extra)
                                      + ["benchmark.execution.preload_freeze"])
    os.environ[RUN_PID_VARIABLE] = str(os.getpid())  # inherited by the server: see parent_death
    forkserver.ensure_running()
    from joblib.externals.loky.backend.context import set_start_method  # after: it takes 0.3 s

    set_start_method("forkserver", force=True)
    return True


def retire_workers():
    """End the worker processes that earlier runs of this process started, so that the next
    cells run in fresh workers that import the code as it is now (see
    features.code_identity.workers_outdated). loky keeps idle workers for minutes with the
    modules they imported, and has no public way to end them without starting new ones, so its
    private handle is used, guarded. The fork server stays: it preloads only the libraries and
    the built-in packages, and stopping it just before the next fork made that fork fail."""
    try:
        from joblib.externals.loky import reusable_executor

        executor = getattr(reusable_executor, "_executor", None)
        if executor is not None:
            executor.shutdown(wait=True, kill_workers=True)
    except Exception:  # a pool already broken: the next call starts a new one anyway
        pass


def parallel(n_jobs, **kwargs):
    """`joblib.Parallel(n_jobs)` on the shared workers.

    Every parallel step goes through here so all pass joblib the same executor arguments:
    joblib replaces its worker processes whenever they change (the initializer is one
    module-level function for that reason: see WORKER_MEMORY_GROWTH). `max_nbytes=None` turns
    joblib's own memory-mapping of large arrays off; the local backend maps them itself
    (see benchmark.execution.backends._memory_mapped for why).
    """
    from joblib import Parallel

    return Parallel(n_jobs=n_jobs, max_nbytes=None, initializer=allow_memory_growth, **kwargs)


def allow_memory_growth():
    """Run by loky in each new worker (`initializer`): raise its memory-leak limit to
    WORKER_MEMORY_GROWTH. loky has no public setting for it; its worker loop reads this module
    global at every check, so setting it in the worker is enough."""
    from joblib.externals.loky import process_executor

    process_executor._MAX_MEMORY_LEAK_SIZE = WORKER_MEMORY_GROWTH
