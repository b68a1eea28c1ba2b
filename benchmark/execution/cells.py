"""One (dataset, estimator, fold) cell: its record, its file, its key, and running it.

A cell's result is written to `<run dir>/cells/<dataset>/<estimator>/fold-<k>.json` atomically
(temporary file, then rename), so a kill at any moment leaves either the whole file or none.
Its `key` hashes everything the result depends on, so a stored result is reused only by a run
that would compute exactly the same cell (`cell_key`):

* the data actually used (the fingerprint of every image's pixels) and the dataset's name;
* the estimator's name and full parameters (`get_params`, after the run set its seed, threads
  and mirror switch), the split (train and test rows), the seed and the threads per cell;
* with `--tune`, the budget and search space; with `--groups`/`--dedupe`, those options; a
  CNN's Keras backend when it is not TensorFlow;
* the estimator's code identity (benchmark.execution.code_identity, stored whole in the cell as
  `code`): hashes of the source files of its class and bases, its registry factory, its
  feature extractors, the scoring module, and every project or plug-in module they import;
  and the versions of Python (major.minor), NumPy, SciPy, scikit-learn and scikit-image, plus
  Keras and its backend's packages for the CNNs.

Not in the key: NumPy's BLAS build, the CPU's instruction set and the GPU, CUDA, environment
variables, Python's patch version, other libraries' versions, files read at run time, and the
benchmark's own scheduling and loading code (see code_identity's docstring). A cell stored
before code identities were recorded has no `code`: its key never matches, and it is
recomputed.

When the fitted estimator offers `predict_proba`, the test rows' probabilities travel with the
Cell (`probabilities`, in memory only) and are stored beside its JSON as a float32 `.npy`
file (see `RunStore.save_cell`); the JSON then names that file (`proba_file`) and the class of
each column (`proba_classes`). They are an output, like the predictions: not part of the key.
"""

import contextlib
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from sklearn.base import clone

from estimators.capabilities import capability_parameter
from estimators.tuning import tune
from features.code_identity import identity_problem

from benchmark.errors import failure_line
from benchmark.execution.metrics import METRICS, score_predictions, unknown_predictions
from benchmark.execution.time_limit import CellTimeout, time_limit

MAX_PRINTED = 4000  # characters of a fit's printed output kept in its cell
METRIC_NAMES = tuple(METRICS)


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
    # what the fit said and how it trained (see `diagnose_fit`): warnings raised in the cell,
    # its printed output, a CNN's budget and convergence check; `undertrained` and `reasons`
    diagnostics: dict = None
    key: str = None  # see cell_key: what this result depends on
    seconds: float = None  # wall time of the whole cell
    # with `run --tune`: the search's record (estimators.tuning.tune: chosen and default
    # parameters, candidates and their inner macro-F1, seconds; fit_seconds is the final fit
    # alone) and the scores of the untuned defaults on the same test fold, for the report's
    # paired tuned-vs-default test
    tuning: dict = None
    default_scores: dict = None
    # `run --train-sizes`: the cap on training images per class this cell was fitted with (a
    # nested, stratified sample of its split's training part); None: the whole training part
    train_size: int = None
    # out-of-fold probabilities, when the estimator offers predict_proba: the file beside the
    # cell's JSON that holds them (n_test x classes, float32; see RunStore.save_cell), the
    # class of each column as text (the fitted estimator's `classes_`) and the seconds
    # predict_proba took (not in predict_seconds, which times predict alone, as before)
    proba_file: str = None
    proba_classes: list = None
    proba_seconds: float = None
    # the code identity the key hashed (benchmark.execution.code_identity): {"modules": {file:
    # hash}, "libraries": {name: version}}, so a rerun can say which files or versions changed
    code: dict = None
    # the probabilities themselves while the cell is in memory (a worker's result, or cells
    # loaded for a notebook run without a run directory); never written into the JSON
    probabilities: object = field(default=None, repr=False, compare=False)


IN_MEMORY = {"probabilities"}
CELL_FIELDS = {f.name for f in fields(Cell)} - IN_MEMORY  # what a cell's JSON holds


def cell_record(cell):
    """The cell as its JSON object: every stored field (the probabilities go to their own file)."""
    return {name: getattr(cell, name) for name in (f.name for f in fields(Cell)) if name not in IN_MEMORY}


def slug(name):
    """A file-system-safe folder name for any dataset or estimator name (e.g. folder:/a/b)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60]
    if safe == name:
        return name
    return f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def read_cell(path):
    """The Cell stored at `path`; ValueError (or OSError) if it is not a valid cell record.

    Every field is checked (types, score ranges, predictions of one length), so a file that
    parses but was edited or truncated is reported as unreadable - and recomputed on resume -
    instead of crashing a report or being reused."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not {"dataset", "estimator", "fold", "status"} <= data.keys():
        raise ValueError("not a cell record")
    problem = _invalid(data)
    if problem:
        raise ValueError(f"not a valid cell record: {problem}")
    return Cell(**{k: v for k, v in data.items() if k in CELL_FIELDS})


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _invalid(data):
    """What is wrong with a cell record read from JSON, or None."""
    for name in ("dataset", "estimator", "status"):
        if not isinstance(data[name], str):
            return f"{name} is not text"
    if not isinstance(data["fold"], int) or isinstance(data["fold"], bool) or data["fold"] < 0:
        return "fold is not a whole number >= 0"
    if data["status"] not in ("ok", "failed"):
        return f"status {data['status']!r} is neither 'ok' nor 'failed'"
    for name in ("fit_seconds", "predict_seconds", "feature_seconds", "seconds", "proba_seconds"):
        if data.get(name) is not None and not (_is_number(data[name]) and data[name] >= 0):
            return f"{name} is not a number of seconds"
    for name in ("n_train", "n_test"):
        if data.get(name) is not None and not (isinstance(data[name], int) and data[name] >= 0):
            return f"{name} is not a count"
    size = data.get("train_size")
    if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and size >= 1):
        return "train_size is not a whole number >= 1"
    for name in ("history", "diagnostics", "tuning"):
        if data.get(name) is not None and not isinstance(data[name], dict):
            return f"{name} is not a mapping"
    if data.get("code") is not None and identity_problem(data["code"]):
        return f"code {identity_problem(data['code'])}"
    if data["status"] != "ok":
        return None
    for name in ("scores", "default_scores"):
        scores = data.get(name)
        if name == "default_scores" and scores is None:
            continue
        if not isinstance(scores, dict) or not all(
                _is_number(scores.get(metric)) and 0 <= scores[metric] <= 1 for metric in METRIC_NAMES):
            return f"{name} must hold {', '.join(METRIC_NAMES)} as numbers in [0, 1]"
    predictions = [data.get(name) for name in ("test_index", "y_true", "y_pred")]
    if any(p is not None for p in predictions):
        if not all(isinstance(p, list) for p in predictions) or len({len(p) for p in predictions}) != 1:
            return "test_index, y_true and y_pred are not lists of one length"
        if data.get("n_test") is not None and len(predictions[0]) != data["n_test"]:
            return f"{len(predictions[0])} predictions for n_test {data['n_test']}"
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in predictions[0]):
            return "test_index holds something other than row numbers"
    proba_file, proba_classes = data.get("proba_file"), data.get("proba_classes")
    if (proba_file is None) != (proba_classes is None):
        return "proba_file and proba_classes must be given together"
    if proba_file is not None:
        # a bare file name: the probabilities live beside the cell's JSON, never elsewhere
        if (not isinstance(proba_file, str) or not proba_file.endswith(".npy")
                or Path(proba_file).name != proba_file or proba_file.startswith(".")):
            return "proba_file is not the name of a .npy file beside the cell"
        if (not isinstance(proba_classes, list) or not proba_classes
                or not all(isinstance(c, str) for c in proba_classes)
                or len(set(proba_classes)) != len(proba_classes)):
            return "proba_classes is not a list of distinct class names"
    return None


PROBA_SUM_TOLERANCE = 1e-3  # float32 rows of up to thousands of classes sum to 1 within 1e-5


def probability_problem(array, cell):
    """What is wrong with `array` as the stored probabilities of `cell`, or None: it must be
    n_test x len(proba_classes) floats, finite, in [0, 1], each row summing to 1."""
    rows = len(cell.y_true) if cell.y_true is not None else cell.n_test
    expected = (rows, len(cell.proba_classes or ()))
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        return "the probabilities are not an array of floats"
    if array.shape != expected:
        return f"the probabilities have shape {array.shape}, not {expected} (test rows x classes)"
    if not np.isfinite(array).all():
        return "the probabilities hold NaN or infinite values"
    if array.min(initial=0) < 0 or array.max(initial=0) > 1 + PROBA_SUM_TOLERANCE:
        return "the probabilities are not all in [0, 1]"
    sums = array.sum(axis=1, dtype=np.float64)
    off = np.abs(sums - 1)
    if off.max(initial=0) > PROBA_SUM_TOLERANCE:
        return f"a row of the probabilities sums to {sums[off.argmax()]:.4g}, not 1"
    return None


def _digest(array):
    return hashlib.sha1(np.ascontiguousarray(array, dtype=np.int64).tobytes()).hexdigest()


def cell_key(fingerprint, estimator, params, split, threads, dataset=None, tuning=None, data=None,
             keras_backend=None, code=None):
    """A hash of everything a cell's result depends on (see the module docstring), and the
    dataset's name: two datasets with the same pixels are still two sets of cells. `tuning`:
    the budget and search space of a tuned cell (None: untuned, the key of earlier versions).
    `data`: the run's options that change which images go where ({"groups": ..., "dedupe":
    True}, only those set; None or empty: the key of earlier versions). `keras_backend`: a
    CNN cell's Keras backend (None, or the default "tensorflow": the key of earlier versions,
    which all ran on TensorFlow). `code`: the hash of the estimator's code identity
    (code_identity.identity_digest; the runner always gives it, so keys of cells stored without
    one never match)."""
    described = {
        "dataset": dataset,
        "fingerprint": fingerprint,
        "estimator": estimator,
        "params": {k: repr(v) for k, v in sorted(params.items())},
        "train": _digest(split.train),
        "test": _digest(split.test),
        "seed": split.seed,
        "threads": threads,
    }
    if tuning is not None:
        described["tuning"] = {k: repr(v) for k, v in sorted(tuning.items())}
    if data:
        described["data"] = {k: repr(v) for k, v in sorted(data.items())}
    if keras_backend not in (None, "tensorflow"):
        described["keras_backend"] = keras_backend
    if code is not None:
        described["code"] = code
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
                _quiet(caught, printed):
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


@contextlib.contextmanager
def _quiet(caught, printed):
    """Keep a cell's warnings and output off the terminal: every warning raised is appended to
    `caught`, and what the fit prints goes to `printed` - Python's prints, and what native
    code (TensorFlow's C++ start-up log) writes to file descriptors 1 and 2, which are pointed
    at a temporary file for the cell's duration."""
    for stream in (sys.stdout, sys.stderr):
        _flush(stream)
    saved = []
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")  # every warning, whatever filters the process has
        try:
            for fd in (1, 2):
                try:
                    saved.append((fd, os.dup(fd)))
                    os.dup2(sink.fileno(), fd)
                except OSError:  # no such descriptor (e.g. a detached worker): nothing to hide
                    pass
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                yield
        finally:
            caught.extend(record)
            for stream in (sys.stdout, sys.stderr):
                _flush(stream)
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            printed.write(sink.read().decode("utf-8", "replace"))


def _flush(stream):
    try:
        stream.flush()
    except (AttributeError, OSError, ValueError):
        pass


# Warnings about the libraries' own future, not about this fit: kept apart as "notices"
NOTICES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def summarise_warnings(caught):
    """["Category: message (xN)"] for each distinct warning, in the order first raised."""
    counts = {}
    for w in caught:
        text = f"{w.category.__name__}: {' '.join(str(w.message).split())}"
        counts[text] = counts.get(text, 0) + 1
    return [text if n == 1 else f"{text} (x{n})" for text, n in counts.items()]


def diagnose_fit(estimator, caught, printed):
    """The cell's `diagnostics`: its warnings, the libraries' deprecation notices (NOTICES),
    its printed output (last MAX_PRINTED characters) and, for estimators that check their own
    training (`convergence_`), that check. `undertrained` is set by a CNN's convergence check
    or by a ConvergenceWarning; `reasons` says why, one line each. (run_cell adds
    `unknown_predictions`, metrics.unknown_predictions, when the estimator predicted labels
    that are not among its training classes.)"""
    texts = summarise_warnings([w for w in caught if not issubclass(w.category, NOTICES)])
    notices = summarise_warnings([w for w in caught if issubclass(w.category, NOTICES)])
    convergence = getattr(estimator, "convergence_", None)
    reasons = list((convergence or {}).get("reasons", []))
    unconverged = [t for t in texts if t.startswith("ConvergenceWarning")]
    if unconverged:
        reasons.append(f"did not converge: {unconverged[0]}")
    return {
        "warnings": texts,
        "notices": notices,
        "printed": printed[-MAX_PRINTED:] if printed else "",
        "training": convergence,
        "undertrained": bool(reasons),
        "reasons": reasons,
    }
