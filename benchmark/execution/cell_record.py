"""One (dataset, estimator, fold) cell's record: its fields, its JSON and its checks, and its key.

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

import hashlib
import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from features.code_identity import identity_problem

from benchmark.execution.metrics import METRICS

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
