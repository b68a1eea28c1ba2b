"""Running one (dataset, estimator, fold) cell: the task a worker gets (`CellTask`) and
`run_cell`, which fits, predicts and scores it into a `Cell` (benchmark.execution.cell_record,
which also holds its key and JSON), with the fit's warnings and output kept in the cell
(benchmark.execution.cell_output).
"""

import io
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.base import clone

from estimators.capabilities import capability_parameter
from estimators.tuning import tune

from benchmark.errors import failure_line
from benchmark.execution.cell_output import capture_output, diagnose_fit
from benchmark.execution.cell_record import Cell
from benchmark.execution.metrics import score_predictions, unknown_predictions
from benchmark.execution.time_limit import CellTimeout, time_limit


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
    heavy: bool = False  # family "cnn": scheduled first, so no worker idles at the end
    marker: str = None  # file that exists while a local worker runs the cell (crash detection)
    tuning: object = None  # estimators.tuning.TuningBudget: search the declared space first
    train_size: int = None  # images per class the split's training rows were sampled to (None: all)
    keras_backend: str = None  # a CNN's Keras backend, set in the worker before Keras loads

    def failed(self, error, trace=None):
        return Cell(self.dataset, self.estimator, self.fold, "failed", error=error,
                    traceback=trace, key=self.key, train_size=self.train_size)


def run_cell(task, X, labels):
    """Fit a fresh clone of the task's estimator on the training rows, score it on the test rows.

    X holds the images, or, when `task.image_shape` is given, their precomputed features. An
    estimator that declares a "seed" parameter (estimators.capabilities) gets the split's seed
    (the run's seed, plus the repeat number for repeated holdout). BLAS and OpenMP pools are
    capped at `task.threads` (estimators declaring "threads", the CNNs, get the same number
    through that parameter); `task.time_limit` stops the cell.
    Never raises: a failure is a failed Cell with its reason.
    """
    from threadpoolctl import threadpool_limits

    caught, printed = [], io.StringIO()
    if task.marker:
        Path(task.marker).parent.mkdir(parents=True, exist_ok=True)
        Path(task.marker).write_text(str(os.getpid()))
    train, test = task.split.train, task.split.test
    cell = Cell(task.dataset, task.estimator, task.fold, "ok", n_train=len(train), n_test=len(test),
                feature_seconds=task.timing[0], feature_source=task.timing[1], key=task.key,
                train_size=task.train_size)
    started = time.perf_counter()
    try:
        with threadpool_limits(limits=task.threads), time_limit(task.time_limit), \
                capture_output(caught, printed):
            if task.keras_backend is not None:
                from estimators.keras_backend import use_backend

                use_backend(task.keras_backend)  # ValueError if this worker's Keras runs another
            estimator = clone(task.template)
            seed = capability_parameter(estimator, "seed")
            if seed is not None:
                estimator.set_params(**{seed: task.split.seed})
            default = estimator
            if task.tuning is not None:
                best, cell.tuning = tune(estimator, X[train], labels[train], task.tuning,
                                         seed=task.split.seed, image_shape=task.image_shape)
                estimator = clone(estimator).set_params(**best)
            start = time.perf_counter()
            _fit(estimator, X[train], labels[train], task.image_shape)
            cell.fit_seconds = time.perf_counter() - start
            start = time.perf_counter()
            y_pred = _predict(estimator, X[test], task.image_shape)
            cell.predict_seconds = time.perf_counter() - start
            start = time.perf_counter()
            proba = _predict_proba(estimator, X[test], task.image_shape)
            if proba is not None:
                cell.proba_seconds = time.perf_counter() - start
                cell.probabilities = proba
                cell.proba_classes = np.asarray(estimator.classes_).astype(str).tolist()
            if task.tuning is not None:
                # the untuned defaults on the same test fold, for the paired tuned-vs-default
                # test; only reported, never used to choose anything
                if cell.tuning["chose_default"]:
                    default_pred = y_pred
                else:
                    default_pred = _predict(_fit(default, X[train], labels[train], task.image_shape),
                                            X[test], task.image_shape)
                cell.default_scores = score_predictions(labels[test], default_pred)
            # scored inside too: what scikit-learn says of the predictions ("y_pred contains
            # classes not in y_true", RuntimeWarnings of NaN ones) is the cell's, like the fit's
            cell.scores = score_predictions(labels[test], y_pred)
            unknown = unknown_predictions(y_pred, labels[train])
        cell.test_index = test.tolist()
        cell.y_true = np.asarray(labels[test]).astype(str).tolist()
        cell.y_pred = np.asarray(y_pred).astype(str).tolist()
        cell.history = getattr(estimator, "history_", None)
        cell.diagnostics = diagnose_fit(estimator, caught, printed.getvalue())
        if unknown:
            cell.diagnostics["unknown_predictions"] = unknown
    except CellTimeout as exc:
        cell = task.failed(str(exc) or f"CellTimeout: longer than {task.time_limit:g} s")
    except Exception as exc:  # one failing cell (MemoryError included) must not end the run
        cell = task.failed(failure_line(exc), traceback.format_exc())
    finally:
        if task.marker:
            Path(task.marker).unlink(missing_ok=True)
    if cell.status != "ok" and (caught or printed.getvalue()):
        cell.diagnostics = diagnose_fit(None, caught, printed.getvalue())
    cell.seconds = time.perf_counter() - started
    return cell


def _fit(estimator, X, y, image_shape):
    """Fit on images, or, with `image_shape`, on their precomputed feature rows."""
    if image_shape is not None:
        return estimator.fit_features(X, y, image_shape)
    return estimator.fit(X, y)


def _predict(estimator, X, image_shape):
    return estimator.predict_features(X) if image_shape is not None else estimator.predict(X)


def _predict_proba(estimator, X, image_shape):
    """The rows' class probabilities as float32 (columns in the order of `classes_`), or None
    when the estimator offers none: no `predict_proba` (`predict_proba_features` on feature
    rows), one that raises AttributeError or NotImplementedError (scikit-learn's way of saying
    a fitted model has none, e.g. a head without probabilities), or no `classes_` to name the
    columns. Any other error is the estimator's and fails the cell, as in predict."""
    method = getattr(estimator, "predict_proba_features" if image_shape is not None else "predict_proba", None)
    if method is None or getattr(estimator, "classes_", None) is None:
        return None
    try:
        proba = method(X)
    except (AttributeError, NotImplementedError):
        return None
    return np.asarray(proba, dtype=np.float32)
