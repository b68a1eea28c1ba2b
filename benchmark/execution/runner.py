"""Cross-validate every estimator on every dataset with the same splits; return the results.

The runner prints nothing: it returns a `RunResult` and reports progress through callbacks,
and the command line decides what to show. Each finished (dataset, estimator, fold) cell is
written to `<run dir>/cells/` the moment it finishes, atomically, so a crash or a kill loses at
most the cells that were running. Running again into the same directory reuses every stored
cell whose key (benchmark.execution.cell_record.cell_key) still matches and computes the rest: missing cells,
failed ones, and ones whose data, parameters, split, seed, thread count, estimator code or
library versions changed (benchmark.execution.code_identity). Stored cells that no longer match
are moved to `replaced/`, never mixed into the new results; the RunResult (and run.json, the
report and the command line) says how many stored cells were recomputed and why.
"""

import functools
import itertools
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from estimators import FeatureClassifier, create_estimator, estimator_spec
from estimators.capabilities import capabilities
from estimators.tuning import TuningBudget, search_space
from features.cache import FeatureCache, is_cacheable
from features.code_identity import edited_since_imported, identity_digest

from benchmark.execution.backends import LocalBackend
from benchmark.errors import UsageError, failure_line
from benchmark.execution.cell_record import Cell, cell_key
from benchmark.execution.cells import CellTask
from benchmark.execution.code_identity import estimator_identity
from benchmark.execution.recompute import count_reasons, recompute_reasons
from benchmark.execution.order import plan_order
from benchmark.execution.provenance import run_metadata
from benchmark.execution.store import RunStore, is_output
from benchmark.data import DatasetError, default_max_per_class, load_dataset
from benchmark.data.groups import NEAR_DUPLICATES
from benchmark.data.near_duplicates import describe as describe_near_duplicates
from benchmark.data.protocols import MAX_SIZE, Split, nested_training_samples, plan_splits


@dataclass
class RunConfig:
    datasets: list
    estimators: list
    folds: int = 5
    seed: int = 0
    image_size: int = None
    cache_dir: str = None  # None: features are cached in memory for this run only
    n_jobs: int = 1  # worker processes (or Dask workers) for the cells
    protocol: str = "auto"  # "auto" | "cv" | "holdout" (see benchmark.data.protocols)
    repeats: int = 3  # holdout: train/score repeats with seeds seed, seed+1, ...
    max_per_class: int = None  # sample cap per class; None: each dataset's default cap
    full: bool = False  # no sample cap at all
    data_dir: str = None  # local data directory for the named datasets
    unavailable: dict = field(default_factory=dict)  # named datasets --all did not run, and why
    # keep decoded image folders on disk between runs: True (the default cache folder), a
    # folder's path (--cache-dir DIR: DIR/folders), or False
    folder_cache: object = True
    threads_per_cell: int = 1  # BLAS/OpenMP/TensorFlow threads of each cell (part of its key)
    cell_timeout: float = None  # seconds; a longer cell is stopped and marked failed
    # folder datasets' absolute locations, {name: path}, so a resume from another working
    # directory still finds them (the name stays as the user gave it)
    locations: dict = field(default_factory=dict)
    # estimator parameters given without code (--set, an experiment file): {name: {param: value}}
    params: dict = field(default_factory=dict)
    experiment: str = None  # the experiment file this run came from, if any
    # `run --tune`: estimators.tuning.TuningBudget.as_dict() ({amount, unit, folds}), given to
    # every estimator that declares a search space; None: each estimator's defaults
    tune: dict = None
    # leakage (benchmark.data.groups): `groups` is a regex whose first capture group names each
    # image's group, or "near-duplicates"; `groups_file` an absolute path to a path,group CSV;
    # `groups_unmatched` "own-group" or None. `dedupe`: drop near-duplicates before splitting
    groups: str = None
    groups_file: str = None
    groups_unmatched: str = None
    dedupe: bool = False
    # `run --train-sizes`: images per class to train on ([int | "max"], sorted, "max" last), each
    # a nested stratified sample of every split's training part, all scored on the same test
    # rows; None: the whole training part only
    train_sizes: list = None
    # the Keras backend the CNN cells run on (estimators.keras_backend): part of their key
    # when it is not the default, so cells of another backend are never reused as these; None in a
    # run without CNNs whose KERAS_BACKEND names no Keras backend (nothing to record)
    keras_backend: str = "tensorflow"


@dataclass
class RunResult:
    run_dir: Path
    config: RunConfig
    cells: list
    datasets: dict  # name -> Dataset.summary()
    skipped_datasets: dict  # name -> reason
    plan: dict = field(default_factory=dict)  # dataset -> {"estimators": [...], "folds": n}
    reused: int = 0  # cells taken from an earlier run into the same directory
    replaced: int = 0  # stored cells that no longer matched, moved to replaced/
    # stored cells of this run's plan computed again (their file was set aside), and why:
    # {reason: cells}; a cell may have several reasons (see `recompute_reasons`)
    recomputed: int = 0
    recompute_reasons: dict = field(default_factory=dict)

    @property
    def failed_cells(self):
        return [c for c in self.cells if c.status != "ok"]


def run(config, run_dir, *, backend=None, on_cell=None, on_dataset=None, on_start=None, argv=None,
        backend_name="local"):
    """Run every cell of `config` not already stored in `run_dir` (a path or a RunStore); return
    the RunResult.

    run.json is written here: with status "running" before the first cell, "finished" at the
    end, and "interrupted" when Ctrl-C or SIGTERM stops the cells (the KeyboardInterrupt then
    goes on to the caller); `argv` (the command line) and `backend_name` are recorded in it.

    `backend` runs the cells (default: LocalBackend(config.n_jobs)); a Dask backend must be
    entered (`with DaskBackend(...) as backend:`) by the caller. Cells of every dataset
    share it, CNN cells (the longest) first so no worker idles at the end. Each cell uses
    `config.threads_per_cell` threads and is deterministic, so scores do not depend on the
    number of workers or on the backend. Callbacks, for progress display:
    `on_dataset(name, summary_or_None, skip_reason_or_None)` after loading each dataset;
    `on_start(summaries, skipped, plan, pending, reused)` once, before the first cell runs, with
    `plan` = {dataset: {"estimators": [...], "folds": n}} and the number of cells to compute
    and reused; `on_cell(cell)` after each computed cell.
    """
    store = run_dir if isinstance(run_dir, RunStore) else RunStore(run_dir)
    run_dir = store.path
    backend = backend or LocalBackend(config.n_jobs, scratch=store.running_dir)
    cache = FeatureCache(config.cache_dir)
    stored, stored_paths = store.stored_cells()
    reused, failed_early, summaries, skipped, plan, work = [], [], {}, {}, {}, []
    identities, recomputed = {}, []  # estimator -> code identity (once per run); [reasons per cell]
    for dataset_name, prepared in zip(config.datasets, _prepare_datasets(config, backend, run_dir)):
        dataset, splits, summary, skip_reason, features = prepared
        if summary is not None:
            table = summary.pop("near_duplicate_table", None)
            if table is not None:  # every pair (and what --dedupe dropped) in a CSV; run.json
                # keeps the counts and examples
                csv = store.save_near_duplicates(dataset_name, *table)
                summary["near_duplicates"]["csv"] = csv
                if "dedupe" in summary.get("sampling", {}):
                    summary["sampling"]["dedupe"]["csv"] = csv
            summaries[dataset_name] = summary
        if skip_reason is not None:
            skipped[dataset_name] = skip_reason
        if on_dataset is not None:
            on_dataset(dataset_name, summary, skip_reason)
        if dataset is None:
            continue
        cache.seed(features)
        fingerprint = summary["fingerprint"]  # a hash of every image used: computed once, by _load
        plan[dataset_name] = {"estimators": list(config.estimators), "folds": len(splits)}
        sized, capped = _sized_splits(splits, dataset.labels, config)
        if config.train_sizes:
            plan[dataset_name]["train_sizes"] = [size for _, size, _ in sized[:len(config.train_sizes)]]
            summary["sampling"]["train_sizes"] = {"sizes": list(config.train_sizes), "capped": capped}
        for estimator_name in config.estimators:
            try:
                template = _template(dataset, estimator_name, config)
            except Exception as exc:  # e.g. a user estimator whose constructor fails
                failed_early += [Cell(dataset_name, estimator_name, fold, "failed", error=failure_line(exc),
                                      train_size=size) for fold, size, _ in sized]
                continue
            params = template.get_params(deep=False)
            tuning = _tuning(template, config)
            tuning_key = None if tuning is None else {**tuning.as_dict(), "space": search_space(template)}
            if estimator_name not in identities:
                identities[estimator_name] = estimator_identity(
                    template, estimator_spec(estimator_name).factory, _keras_backend(template, config),
                    tuned=tuning is not None)
            identity = identities[estimator_name]
            todo = []
            for fold, size, split in sized:
                def key_with(code, split=split):
                    return cell_key(fingerprint, estimator_name, params, split, config.threads_per_cell,
                                    dataset_name, tuning_key, _data_options(config),
                                    keras_backend=_keras_backend(template, config), code=code)

                key = key_with(identity_digest(identity))
                old = stored.get((dataset_name, estimator_name, fold, size))
                # a cell stored before code identities were recorded is never reused, whatever
                # its key: nothing says which code computed it
                if old is not None and old.key == key and old.status == "ok" and old.code is not None:
                    reused.append(old)
                else:
                    todo.append((fold, split, key, size))
                    if old is not None:
                        recomputed.append(recompute_reasons(old, identity, key_with))
            if todo:
                work += _tasks(dataset, fingerprint, estimator_name, template, todo, cache, config,
                               failed_early, tuning)
    edited = edited_since_imported(identities.values())
    if edited:  # this process would run the old code under the new code's key
        raise UsageError(f"{', '.join(edited)} changed after this Python process imported it, so its "
                         "cells would run the old code: start a new process (a notebook: restart its "
                         "kernel, or importlib.reload the module) and run again")
    # a dataset that could not be loaded this time (moved, unmounted, another working
    # directory) keeps its stored cells where they are: nothing says they no longer match
    kept = {(c.dataset, c.estimator, c.fold, c.train_size) for c in reused}
    kept |= {key for key in stored if key[0] in skipped}
    replaced = store.set_aside(stored_paths, kept)
    reasons = count_reasons(recomputed)
    started = RunResult(run_dir, config, [], summaries, skipped, plan, len(reused), replaced,
                        len(recomputed), reasons)
    store.write_meta(run_metadata(started, argv, "running", backend=backend_name))
    if on_start is not None:
        on_start(summaries, skipped, plan, len(work) + len(failed_early), len(reused))
    cells = list(reused)
    # longest first, so no worker idles at the end: CNN cells, then the larger training sets
    work.sort(key=lambda item: (not item[0].heavy, -len(item[0].split.train)))
    try:
        with store.running():  # the local workers' scratch, removed on every exit path
            for cell in itertools.chain(failed_early, backend.run(work)):
                cell.code = identities.get(cell.estimator)  # what its key hashed, to explain reruns
                store.save_cell(cell)
                cells.append(cell)
                if on_cell is not None:
                    on_cell(cell)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: finished cells are on disk; say so in run.json
        store.set_status("interrupted", run_metadata(started, argv, "interrupted", backend=backend_name))
        raise
    except BaseException:  # a crash of the run itself (not of a cell), a full disk among them:
        # never left "running" (set_status does what a full disk allows, and never raises)
        store.set_status("crashed", run_metadata(started, argv, "crashed", backend=backend_name))
        raise
    order = plan_order(config.datasets, config.estimators)
    cells.sort(key=lambda c: (*order(c.dataset, c.estimator), c.train_size or 0, c.fold))
    result = RunResult(run_dir, config, cells, summaries, skipped, plan, len(reused), replaced,
                       len(recomputed), reasons)
    store.write_meta(run_metadata(result, argv, "finished", backend=backend_name))
    return result


def _prepare_datasets(config, backend, run_dir=None):
    """[(dataset, splits, summary, skip reason, feature cache entries)] for each dataset of
    `config`, in order (see `_prepare`); `run_dir`, this run's output, is never read as images.

    Datasets are independent, so when the backend's workers share this machine's files
    (`backend.map_here`) they prepare all but the first in parallel, while this process
    prepares the first (and does not wait for the workers to start): with two workers this
    halves the wait before the first cell, most of a small run's serial part. Otherwise, or
    if a worker dies, they are prepared here, one by one.
    """
    extractors = _cacheable_extractors(config)
    calls = [(_prepare, (config, name, extractors, run_dir)) for name in config.datasets]
    mapper = getattr(backend, "map_here", None)
    if mapper is None or len(calls) < 2:
        return [function(*args) for function, args in calls]
    others = {}

    def in_workers():
        try:
            results = mapper(calls[1:])
            others["results"] = None if results is None else list(results)
        except Exception:  # e.g. a worker killed while loading: they are prepared here
            others["results"] = None

    thread = threading.Thread(target=in_workers, daemon=True)
    thread.start()
    first = _prepare(*calls[0][1])
    thread.join()
    return [first] + (others["results"] or [function(*args) for function, args in calls[1:]])


def _cacheable_extractors(config):
    """The deterministic feature extractors of the run's estimators (see features.cache)."""
    extractors = []
    for estimator_name in config.estimators:
        try:
            template = create_estimator(estimator_name)
        except Exception:  # reported for each dataset, when its cells are made
            continue
        if isinstance(template, FeatureClassifier):
            extractor = template.feature_extractor()
            if is_cacheable(extractor):
                extractors.append(extractor)
    return extractors


def _prepare(config, dataset_name, extractors, run_dir=None):
    """Load, sample and describe one dataset, and compute its features for `extractors`:
    (dataset subset actually used, splits, summary, None, feature cache entries), or
    (None, None, summary or None, skip reason, {}) when it cannot be run.

    A worker process can run this: everything it returns is plain data. An extractor that
    fails here is left out; the runner computes it again, and fails its cells with the error.
    """
    dataset, splits, summary, reason = _load(config, dataset_name, run_dir)
    cache = FeatureCache(config.cache_dir)
    if dataset is not None:
        for extractor in extractors:
            try:
                cache.transform(extractor, dataset.images, summary["fingerprint"])
            except Exception:
                pass
    return dataset, splits, summary, reason, cache.entries()


def _load(config, dataset_name, run_dir=None):
    """(dataset subset actually used, splits, summary, None), or (None, None, summary or None,
    the reason it is skipped).

    Near-duplicates (benchmark.data.near_duplicates) are looked for among the images the run
    uses; among all the loaded ones first when --dedupe drops them or --groups near-duplicates
    groups by them, before splitting. The summary's "near_duplicates" says how many test images
    have one on their training side; its pair table and the rows of the images --dedupe dropped
    travel under "near_duplicate_table"."""
    summary = None
    try:
        dataset = load_dataset(dataset_name, image_size=config.image_size, seed=config.seed,
                               data_dir=config.data_dir, folder_cache=config.folder_cache,
                               location=(config.locations or {}).get(dataset_name),
                               leave_out=functools.partial(is_output, run_dir))
        cap = None if config.full else (config.max_per_class or default_max_per_class(dataset_name))
        found, deduped, dropped = None, None, []
        try:
            if config.dedupe or config.groups == NEAR_DUPLICATES:
                found = _near_duplicates(config, dataset)
            if config.dedupe:
                dataset, found, deduped, dropped = _dedupe(dataset, found)
            groups, group_facts = _groups(config, dataset, found)
            split_plan = plan_splits(dataset, protocol=config.protocol, folds=config.folds,
                                     repeats=config.repeats, max_per_class=cap, seed=config.seed,
                                     groups=groups, group_facts=group_facts,
                                     resampled=any(s != MAX_SIZE for s in config.train_sizes or []))
        except DatasetError:  # skipped: the report still describes what was loaded
            summary = dataset.summary()
            raise
        sampling = split_plan.describe(dataset.labels)
        if deduped is not None:
            sampling["dedupe"] = deduped
        dataset = dataset.subset(split_plan.rows)  # the summary describes the images actually used
        summary = dataset.summary()
        found = (found.restrict(split_plan.rows) if found is not None
                 else _near_duplicates(config, dataset, summary["fingerprint"]))
        facts, table = describe_near_duplicates(found, dataset.labels, dataset.paths, split_plan.splits)
        summary.update(sampling=sampling, near_duplicates=facts, near_duplicate_table=(table, dropped))
        return dataset, split_plan.splits, summary, None
    except DatasetError as exc:
        return None, None, summary, str(exc)
    except Exception as exc:  # a loader bug must not end the run
        return None, None, summary, failure_line(exc)


def _near_duplicates(config, dataset, fingerprint=None):
    """benchmark.data.near_duplicates.find_near_duplicates of `dataset`'s images, kept on disk
    beside the features (keyed by the images' fingerprint, hashed here unless given) unless the
    run has no cache."""
    from benchmark.data.near_duplicates import cached_near_duplicates

    directory = Path(config.cache_dir) / "near-duplicates" if config.cache_dir else None
    return cached_near_duplicates(dataset.images, fingerprint or dataset.fingerprint, directory)


def _dedupe(dataset, found):
    """(`dataset` with one image kept of each near-duplicate cluster, the pairs left among the
    kept images, facts for the report, a row per dropped image for the near-duplicates CSV;
    see benchmark.data.near_duplicates.describe_dedupe). A cluster keeps an official training
    image where it has one, so the official test split only loses images that are copies of
    training ones; otherwise its first image, whatever the others' classes."""
    from benchmark.data.near_duplicates import describe_dedupe

    prefer = None if dataset.split is None else np.asarray(dataset.split) == "train"
    keep = found.keep_one(prefer)
    facts, rows = describe_dedupe(found, keep, dataset.labels, dataset.paths)
    return dataset.subset(keep), found.restrict(keep), facts, rows


def _groups(config, dataset, found=None):
    """(each image's group, their facts) for the whole loaded dataset as the run's grouping asks,
    or (None, None) when it asks none; DatasetError when this dataset cannot be grouped so.
    `found`: the dataset's near-duplicates, when already computed."""
    from benchmark.data.groups import Grouping, assign_groups

    if config.groups is None and config.groups_file is None:
        return None, None
    grouping = Grouping(config.groups, config.groups_file, config.groups_unmatched)
    clusters = _near_duplicate_clusters(dataset, found) if grouping.near_duplicates else None
    return assign_groups(dataset, grouping, clusters)


def _near_duplicate_clusters(dataset, found=None):
    """The near-duplicate cluster of each image of `dataset` (an int id; singletons their own)."""
    if found is None:
        from benchmark.data.near_duplicates import find_near_duplicates

        found = find_near_duplicates(dataset.images)
    return found.clusters()


def _keras_backend(template, config):
    """The Keras backend a cell of `template` runs on: the run's, for the CNNs (CNNClassifier
    subclasses); None for every other estimator, which no backend changes."""
    from estimators.cnn import CNNClassifier

    return config.keras_backend if isinstance(template, CNNClassifier) else None


def _data_options(config):
    """The run's grouping and dedupe options, for each cell's key: a grouped run's cells are never
    taken for an ungrouped run's, even where their splits coincide. Only the options set, so
    the keys of a run without them are those of earlier versions."""
    options = {"groups": config.groups, "groups_file": config.groups_file,
               "groups_unmatched": config.groups_unmatched, "dedupe": config.dedupe}
    return {k: v for k, v in options.items() if v not in (None, False)}


def _template(dataset, estimator_name, config):
    """The estimator with the run's parameters (they are part of each cell's key).

    Only the parameters the estimator declares (estimators.capabilities) are set: its "seed"
    gets the run's seed (each cell then gets its split's), its "threads", when left at None,
    the threads per cell, and its "mirror_augmentation" switch is turned off on datasets whose
    labels a mirror changes. Any other parameter, whatever its name, keeps its value.
    """
    template = create_estimator(estimator_name, **config.params.get(estimator_name, {}))
    declared = capabilities(template)
    params = template.get_params(deep=False)
    if "seed" in declared:
        template.set_params(**{declared["seed"]: config.seed})
    if "threads" in declared and params[declared["threads"]] is None:
        template.set_params(**{declared["threads"]: config.threads_per_cell})
    if "mirror_augmentation" in declared and not dataset.mirror_invariant:
        template.set_params(**{declared["mirror_augmentation"]: False})
    return template


def _sized_splits(splits, labels, config):
    """([(fold, train_size, Split)], capped): each split as it is (train_size None), or, with
    `config.train_sizes`, once per size with its training rows cut to a nested, stratified,
    seeded sample of at most that many images per class ("max": the whole training part, whose
    cells are the plain run's, so they are reused and ranked in the leaderboards). `capped`:
    {size: {class: the fewest training images it had in any split}} for the classes that had
    fewer than the size, and so use all theirs (the report says so)."""
    if not config.train_sizes:
        return [(fold, None, split) for fold, split in enumerate(splits)], {}
    sized, capped = [], {}
    for fold, split in enumerate(splits):
        samples, short = nested_training_samples(labels, split.train, config.train_sizes, (config.seed, fold))
        for size in config.train_sizes:
            sized.append((fold, None if size == MAX_SIZE else size, Split(samples[size], split.test, split.seed)))
        for size, classes in short.items():
            fewest = capped.setdefault(str(size), {})
            for label, available in classes.items():
                fewest[label] = min(available, fewest.get(label, available))
    return sized, capped


def _tuning(template, config):
    """The TuningBudget for `template`'s cells: None when the run is not tuned or the
    estimator declares no search space (its cells, and their keys, are then untuned)."""
    if not config.tune or not search_space(template):
        return None
    return TuningBudget(**config.tune)


def _tasks(dataset, fingerprint, estimator_name, template, todo, cache, config, cells, tuning=None):
    """(task, X, labels) for each fold in `todo`; X is shared by every fold of the dataset.

    Estimators built on a deterministic extractor get the dataset's features from the cache:
    computed once, shared by every fold and every estimator that uses the same extractor. If
    they cannot be computed, each fold becomes a failed cell (appended to `cells`).
    """
    X, image_shape, timing = dataset.images, None, (None, "in-fit")
    try:
        if isinstance(template, FeatureClassifier):
            extractor = template.feature_extractor()
            if is_cacheable(extractor):
                X, extracted = cache.transform(extractor, dataset.images, fingerprint)
                image_shape, timing = dataset.images.shape[1:], (extracted.compute_seconds, extracted.source)
    except Exception as exc:
        error = failure_line(exc)
        cells += [Cell(dataset.name, estimator_name, fold, "failed", error=error, key=key, train_size=size)
                  for fold, _, key, size in todo]
        return []
    heavy = estimator_spec(estimator_name).family == "cnn"  # the longest cells: run first
    return [
        (CellTask(dataset.name, estimator_name, fold, key, template, split, image_shape, timing,
                  config.threads_per_cell, config.cell_timeout, heavy, tuning=tuning, train_size=size,
                  keras_backend=_keras_backend(template, config)),
         X, dataset.labels)
        for fold, split, key, size in todo
    ]
