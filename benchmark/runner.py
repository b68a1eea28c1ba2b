"""Cross-validate every estimator on every dataset with the same splits; return the results.

The runner prints nothing: it returns a `RunResult` and reports progress through an optional
callback, and the command line decides what to show. Each finished (dataset, estimator, fold)
cell is written to `<run dir>/cells/` the moment it finishes, atomically, so a crash loses at
most the cells that were running.
"""

import hashlib
import json
import re
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from estimators import FeatureClassifier, create_estimator
from features.cache import FeatureCache, atomic_write, is_cacheable

from .datasets import DatasetError, load_dataset, validate_for_cv
from .metrics import score_predictions


@dataclass
class RunConfig:
    datasets: list
    estimators: list
    folds: int = 5
    seed: int = 0
    image_size: int = None
    cache_dir: str = None  # None: features are cached in memory for this run only


@dataclass
class Cell:
    """One (dataset, estimator, fold): its scores, or why it failed."""

    dataset: str
    estimator: str
    fold: int
    status: str  # "ok" | "failed"
    scores: dict = field(default_factory=dict)
    fit_seconds: float = None
    predict_seconds: float = None
    feature_seconds: float = None  # cost of computing this estimator's features for the dataset
    feature_source: str = None  # computed | disk | memory | mixed | in-fit
    n_train: int = None
    n_test: int = None
    error: str = None
    traceback: str = None
    test_index: list = None
    y_pred: list = None


@dataclass
class RunResult:
    run_dir: Path
    config: RunConfig
    cells: list
    datasets: dict  # name -> Dataset.summary()
    skipped_datasets: dict  # name -> reason

    @property
    def failed_cells(self):
        return [c for c in self.cells if c.status != "ok"]


def make_splits(labels, folds, seed):
    """The stratified, shuffled, seeded folds every estimator on a dataset shares."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def cell_path(run_dir, dataset, estimator, fold):
    return Path(run_dir) / "cells" / _slug(dataset) / _slug(estimator) / f"fold-{fold}.json"


def _slug(name):
    """A file-system-safe folder name for any dataset or estimator name (e.g. folder:/a/b)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60]
    if safe == name:
        return name
    return f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def save_cell(run_dir, cell):
    path = cell_path(run_dir, cell.dataset, cell.estimator, cell.fold)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(json.dumps(asdict(cell)).encode()))


def _failure(exc):
    return f"{type(exc).__name__}: {exc}".splitlines()[0], traceback.format_exc()


def run(config, run_dir, *, on_cell=None, on_dataset=None):
    """Run every cell of `config`, writing cells under `run_dir`; return the RunResult.

    `on_dataset(name, summary_or_None, skip_reason_or_None)` and `on_cell(cell)` are called
    as the run goes (for progress display).
    """
    run_dir = Path(run_dir)
    cache = FeatureCache(config.cache_dir)
    cells, summaries, skipped = [], {}, {}
    for dataset_name in config.datasets:
        try:
            dataset = load_dataset(dataset_name, image_size=config.image_size, seed=config.seed)
            summaries[dataset_name] = dataset.summary()
            validate_for_cv(dataset, config.folds)
        except DatasetError as exc:
            skipped[dataset_name] = str(exc)
        except Exception as exc:  # a loader bug must not end the run
            skipped[dataset_name] = _failure(exc)[0]
        if on_dataset is not None:
            on_dataset(dataset_name, summaries.get(dataset_name), skipped.get(dataset_name))
        if dataset_name in skipped:
            continue
        splits = make_splits(dataset.labels, config.folds, config.seed)
        for estimator_name in config.estimators:
            for cell in _run_estimator(dataset, estimator_name, splits, cache):
                save_cell(run_dir, cell)
                cells.append(cell)
                if on_cell is not None:
                    on_cell(cell)
    return RunResult(run_dir, config, cells, summaries, skipped)


def _run_estimator(dataset, estimator_name, splits, cache):
    """Yield one Cell per fold for `estimator_name` on `dataset`."""
    template = create_estimator(estimator_name)
    features, feature_seconds, feature_source = None, None, "in-fit"
    if isinstance(template, FeatureClassifier):
        extractor = template.feature_extractor()
        if is_cacheable(extractor):
            try:
                features, timing = cache.transform(extractor, dataset.images, dataset.fingerprint)
                feature_seconds, feature_source = timing.compute_seconds, timing.source
            except Exception as exc:
                error, trace = _failure(exc)
                for fold in range(len(splits)):
                    yield Cell(dataset.name, estimator_name, fold, "failed", error=error, traceback=trace)
                return
    for fold, (train, test) in enumerate(splits):
        cell = Cell(
            dataset.name, estimator_name, fold, "ok", n_train=len(train), n_test=len(test),
            feature_seconds=feature_seconds, feature_source=feature_source,
        )
        try:
            estimator = clone(template)
            y_train = dataset.labels[train]
            start = time.perf_counter()
            if features is not None:
                estimator.fit_features(features[train], y_train, dataset.images.shape[1:])
                cell.fit_seconds = time.perf_counter() - start
                start = time.perf_counter()
                y_pred = estimator.predict_features(features[test])
            else:
                estimator.fit(dataset.images[train], y_train)
                cell.fit_seconds = time.perf_counter() - start
                start = time.perf_counter()
                y_pred = estimator.predict(dataset.images[test])
            cell.predict_seconds = time.perf_counter() - start
            cell.scores = score_predictions(dataset.labels[test], y_pred)
            cell.test_index = test.tolist()
            cell.y_pred = np.asarray(y_pred).astype(str).tolist()
        except Exception as exc:  # one failing cell must not end the run
            cell.status = "failed"
            cell.error, cell.traceback = _failure(exc)
        yield cell
