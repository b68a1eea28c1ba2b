"""Cross-validate every estimator on every dataset with the same splits; return the results.

The runner prints nothing: it returns a `RunResult` and reports progress through an optional
callback, and the command line decides what to show. Each finished (dataset, estimator, fold)
cell is written to `<run dir>/cells/` the moment it finishes, atomically, so a crash loses at
most the cells that were running.
"""

import hashlib
import json
import os
import re
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import clone

from estimators import FeatureClassifier, create_estimator
from features.cache import FeatureCache, atomic_write, is_cacheable

from .datasets import DatasetError, default_max_per_class, load_dataset
from .metrics import score_predictions
from .protocols import plan_splits


@dataclass
class RunConfig:
    datasets: list
    estimators: list
    folds: int = 5
    seed: int = 0
    image_size: int = None
    cache_dir: str = None  # None: features are cached in memory for this run only
    n_jobs: int = 1  # worker processes for the cells (-1: all cores)
    protocol: str = "auto"  # "auto" | "cv" | "holdout" (see benchmark.protocols)
    repeats: int = 3  # holdout: train/score repeats with seeds seed, seed+1, ...
    max_per_class: int = None  # sample cap per class; None: each dataset's default cap
    full: bool = False  # no sample cap at all
    data_dir: str = None  # local data directory for the named datasets
    unavailable: dict = field(default_factory=dict)  # named datasets --all did not run, and why
    folder_cache: bool = True  # keep decoded image folders on disk between runs


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
    test_index: list = None  # out-of-fold predictions: rows of the dataset (as used), true and
    y_true: list = None  # predicted labels as strings, so reports never need to refit
    y_pred: list = None
    history: dict = None  # per-epoch training curves of estimators that keep `history_`


@dataclass
class RunResult:
    run_dir: Path
    config: RunConfig
    cells: list
    datasets: dict  # name -> Dataset.summary()
    skipped_datasets: dict  # name -> reason
    plan: dict = field(default_factory=dict)  # dataset -> {"estimators": [...], "folds": n}

    @property
    def failed_cells(self):
        return [c for c in self.cells if c.status != "ok"]


def cell_path(run_dir, dataset, estimator, fold):
    return Path(run_dir) / "cells" / slug(dataset) / slug(estimator) / f"fold-{fold}.json"


def slug(name):
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


def thread_budget(n_jobs):
    """(worker processes, threads per cell) so that workers x threads <= cores."""
    n_workers = max(1, effective_n_jobs(n_jobs))
    return n_workers, max(1, (os.cpu_count() or 1) // n_workers)


def run(config, run_dir, *, on_cell=None, on_dataset=None, on_start=None):
    """Run every cell of `config`, writing cells under `run_dir`; return the RunResult.

    `on_dataset(name, summary_or_None, skip_reason_or_None)` and `on_cell(cell)` are called
    as the run goes (for progress display); `on_start(summaries, skipped, plan)` once every
    dataset is loaded and before the first cell runs, with `plan` = {dataset: {"estimators":
    [...], "folds": n}}, the cells the run will produce (so a report of an interrupted run can
    list the missing ones). Cells of every dataset share one pool of
    `config.n_jobs` worker processes (joblib), the CNN cells (the longest) first so no worker
    idles at the end; each cell is deterministic, so the scores do not depend on `n_jobs`.
    Estimators with an `n_threads` parameter (the CNNs) get their share of the cores, so
    parallel cells never oversubscribe them.
    """
    run_dir = Path(run_dir)
    cache = FeatureCache(config.cache_dir)
    n_workers, threads = thread_budget(config.n_jobs)
    cells, summaries, skipped, tasks, plan = [], {}, {}, [], {}
    for dataset_name in config.datasets:
        try:
            dataset = load_dataset(dataset_name, image_size=config.image_size, seed=config.seed,
                                   data_dir=config.data_dir, folder_cache=config.folder_cache)
            cap = None if config.full else (config.max_per_class or default_max_per_class(dataset_name))
            try:
                split_plan = plan_splits(dataset, protocol=config.protocol, folds=config.folds,
                                   repeats=config.repeats, max_per_class=cap, seed=config.seed)
            except DatasetError:  # skipped: the report still describes what was loaded
                summaries[dataset_name] = dataset.summary()
                raise
            sampling = split_plan.describe(dataset.labels)
            dataset = dataset.subset(split_plan.rows)  # the summary describes the images actually used
            summaries[dataset_name] = {**dataset.summary(), "sampling": sampling}
        except DatasetError as exc:
            skipped[dataset_name] = str(exc)
        except Exception as exc:  # a loader bug must not end the run
            skipped[dataset_name] = _failure(exc)[0]
        if on_dataset is not None:
            on_dataset(dataset_name, summaries.get(dataset_name), skipped.get(dataset_name))
        if dataset_name in skipped:
            continue
        splits = split_plan.splits
        plan[dataset_name] = {"estimators": list(config.estimators), "folds": len(splits)}
        for estimator_name in config.estimators:
            prepared = _prepare(dataset, estimator_name, len(splits), cache, config.seed, threads)
            if isinstance(prepared, list):  # its features could not be computed
                for cell in prepared:
                    _finish(run_dir, cell, cells, on_cell)
                continue
            template, features, timing = prepared
            X, image_shape = (
                (dataset.images, None) if features is None else (features, dataset.images.shape[1:])
            )
            heavy = "n_threads" in template.get_params(deep=False)
            for fold, split in enumerate(splits):
                tasks.append((not heavy, delayed(_run_cell)(
                    dataset_name, estimator_name, template, fold, split,
                    X, image_shape, dataset.labels, timing,
                )))
    if on_start is not None:
        on_start(summaries, skipped, plan)
    tasks.sort(key=lambda task: task[0])  # stable: heavy cells first, otherwise in order
    if tasks:
        with Parallel(n_jobs=config.n_jobs, return_as="generator_unordered") as parallel:
            for cell in parallel(task for _, task in tasks):
                _finish(run_dir, cell, cells, on_cell)
    order = {name: i for i, name in enumerate(config.estimators)}
    cells.sort(key=lambda c: (config.datasets.index(c.dataset), order[c.estimator], c.fold))
    return RunResult(run_dir, config, cells, summaries, skipped, plan)


def _finish(run_dir, cell, cells, on_cell):
    save_cell(run_dir, cell)
    cells.append(cell)
    if on_cell is not None:
        on_cell(cell)


def _prepare(dataset, estimator_name, n_folds, cache, seed, threads):
    """(template estimator, features or None, (seconds, source)), or failed cells for every fold.

    Estimators built on a deterministic extractor get the dataset's features from the cache:
    computed once, shared by every fold and by every estimator that uses the same extractor.
    An estimator with a `random_state` gets the run's seed, so one seed fixes the whole run;
    one with `n_threads` gets `threads`, its cell's share of the cores; one with a `flip`
    switch (mirror augmentation) has it turned off on datasets whose labels a mirror changes.
    """
    try:
        template = create_estimator(estimator_name)
        params = template.get_params(deep=False)
        if "random_state" in params:
            template.set_params(random_state=seed)
        if "n_threads" in params and params["n_threads"] is None:
            template.set_params(n_threads=threads)
        if "flip" in params and not dataset.mirror_invariant:
            template.set_params(flip=False)
        if isinstance(template, FeatureClassifier):
            extractor = template.feature_extractor()
            if is_cacheable(extractor):
                features, timing = cache.transform(extractor, dataset.images, dataset.fingerprint)
                return template, features, (timing.compute_seconds, timing.source)
        return template, None, (None, "in-fit")
    except Exception as exc:
        error, trace = _failure(exc)
        return [
            Cell(dataset.name, estimator_name, fold, "failed", error=error, traceback=trace)
            for fold in range(n_folds)
        ]


def _run_cell(dataset_name, estimator_name, template, fold, split, X, image_shape, labels, timing):
    """Fit a fresh clone of `template` on the training rows of X and score it on the test rows.

    X holds the images, or, when `image_shape` is given, the images' precomputed features. An
    estimator with a `random_state` gets the split's seed (the run's seed, plus the repeat
    number for repeated holdout).
    """
    train, test = split.train, split.test
    precomputed = image_shape is not None
    cell = Cell(
        dataset_name, estimator_name, fold, "ok", n_train=len(train), n_test=len(test),
        feature_seconds=timing[0], feature_source=timing[1],
    )
    try:
        estimator = clone(template)
        if "random_state" in estimator.get_params(deep=False):
            estimator.set_params(random_state=split.seed)
        start = time.perf_counter()
        if precomputed:
            estimator.fit_features(X[train], labels[train], image_shape)
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
    except Exception as exc:  # one failing cell must not end the run
        cell.status = "failed"
        cell.error, cell.traceback = _failure(exc)
    return cell
