"""One (dataset, estimator, fold) cell: its record, its file, its key, and running it.

A cell's result is written to `<run dir>/cells/<dataset>/<estimator>/fold-<k>.json` atomically
(temporary file, then rename), so a kill at any moment leaves either the whole file or none.
Its `key` hashes everything the result depends on - the data actually used (fingerprint), the
estimator's full parameters, the split (train and test rows), the seed and the thread count - so
a stored result is reused only by a run that would compute exactly the same cell.
"""

import hashlib
import json
import os
import re
import time
import traceback
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from sklearn.base import clone

from features.cache import atomic_write

from .metrics import score_predictions
from .time_limit import CellTimeout, time_limit


@dataclass
class Cell:
    """One (dataset, estimator, fold): its scores, or why it failed."""

    dataset: str
    estimator: str
    fold: int
    status: str  # "ok" | "failed" (reports add "missing" | "unreadable" for absent files)
    scores: dict = field(default_factory=dict)
    fit_seconds: float = None
    predict_seconds: float = None
    feature_seconds: float = None  # cost of computing this estimator's features for the dataset
    feature_source: str = None  # computed | disk | memory | mixed | in-fit
    n_train: int = None
    n_test: int = None
    error: str = None
    traceback: str = None
    test_index: list = None  # out-of-fold predictions: rows of the dataset (as used), true and
    y_true: list = None  # predicted labels as strings, so reports never need to refit
    y_pred: list = None
    history: dict = None  # per-epoch training curves of estimators that keep `history_`
    key: str = None  # see cell_key: what this result depends on
    seconds: float = None  # wall time of the whole cell


CELL_FIELDS = {f.name for f in fields(Cell)}


def slug(name):
    """A file-system-safe folder name for any dataset or estimator name (e.g. folder:/a/b)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60]
    if safe == name:
        return name
    return f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def cell_path(run_dir, dataset, estimator, fold):
    return Path(run_dir) / "cells" / slug(dataset) / slug(estimator) / f"fold-{fold}.json"


def save_cell(run_dir, cell):
    path = cell_path(run_dir, cell.dataset, cell.estimator, cell.fold)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(json.dumps(asdict(cell)).encode()))


def read_cell(path):
    """The Cell stored at `path`; ValueError (or OSError) if it is not a readable cell record."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not {"dataset", "estimator", "fold", "status"} <= data.keys():
        raise ValueError("not a cell record")
    return Cell(**{k: v for k, v in data.items() if k in CELL_FIELDS})


def _digest(array):
    return hashlib.sha1(np.ascontiguousarray(array, dtype=np.int64).tobytes()).hexdigest()


def cell_key(fingerprint, estimator, params, split, threads):
    """A hash of everything a cell's result depends on (see the module docstring)."""
    described = {
        "fingerprint": fingerprint,
        "estimator": estimator,
        "params": {k: repr(v) for k, v in sorted(params.items())},
        "train": _digest(split.train),
        "test": _digest(split.test),
        "seed": split.seed,
        "threads": threads,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]


@dataclass
class CellTask:
    """Everything a worker needs to compute one cell, except the (shared) data arrays."""

    dataset: str
    estimator: str
    fold: int
    key: str
    template: object  # an unfitted estimator with the run's parameters
    split: object  # protocols.Split: train, test, seed
    image_shape: tuple  # None: X holds images; else X holds features of images of this shape
    timing: tuple  # (feature seconds, feature source)
    threads: int  # BLAS / OpenMP / TensorFlow threads for this cell
    time_limit: float = None  # seconds; None: no limit
    heavy: bool = False  # a CNN: scheduled first, so no worker idles at the end
    marker: str = None  # file that exists while a local worker runs the cell (crash detection)

    def failed(self, error, trace=None):
        return Cell(self.dataset, self.estimator, self.fold, "failed", error=error,
                    traceback=trace, key=self.key)


def run_cell(task, X, labels):
    """Fit a fresh clone of the task's estimator on the training rows, score it on the test rows.

    X holds the images, or, when `task.image_shape` is given, their precomputed features. An
    estimator with a `random_state` gets the split's seed (the run's seed, plus the repeat
    number for repeated holdout). BLAS and OpenMP pools are capped at `task.threads` (the CNNs
    get the same number through their `n_threads` parameter); `task.time_limit` stops the cell.
    Never raises: a failure is a failed Cell with its reason.
    """
    from threadpoolctl import threadpool_limits

    if task.marker:
        Path(task.marker).parent.mkdir(parents=True, exist_ok=True)
        Path(task.marker).write_text(str(os.getpid()))
    train, test = task.split.train, task.split.test
    precomputed = task.image_shape is not None
    cell = Cell(task.dataset, task.estimator, task.fold, "ok", n_train=len(train), n_test=len(test),
                feature_seconds=task.timing[0], feature_source=task.timing[1], key=task.key)
    started = time.perf_counter()
    try:
        with threadpool_limits(limits=task.threads), time_limit(task.time_limit):
            estimator = clone(task.template)
            if "random_state" in estimator.get_params(deep=False):
                estimator.set_params(random_state=task.split.seed)
            start = time.perf_counter()
            if precomputed:
                estimator.fit_features(X[train], labels[train], task.image_shape)
            else:
                estimator.fit(X[train], labels[train])
            cell.fit_seconds = time.perf_counter() - start
            start = time.perf_counter()
            y_pred = estimator.predict_features(X[test]) if precomputed else estimator.predict(X[test])
            cell.predict_seconds = time.perf_counter() - start
        cell.scores = score_predictions(labels[test], y_pred)
        cell.test_index = test.tolist()
        cell.y_true = np.asarray(labels[test]).astype(str).tolist()
        cell.y_pred = np.asarray(y_pred).astype(str).tolist()
        cell.history = getattr(estimator, "history_", None)
    except CellTimeout as exc:
        cell = task.failed(str(exc) or f"CellTimeout: longer than {task.time_limit:g} s")
    except Exception as exc:  # one failing cell (MemoryError included) must not end the run
        cell = task.failed(failure_line(exc), traceback.format_exc())
    finally:
        if task.marker:
            Path(task.marker).unlink(missing_ok=True)
    cell.seconds = time.perf_counter() - started
    return cell


def failure_line(exc):
    return f"{type(exc).__name__}: {exc}".splitlines()[0]
