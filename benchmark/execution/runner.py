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

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from estimators import FeatureClassifier, estimator_spec
from estimators.capabilities import capabilities
from estimators.tuning import TuningBudget, search_space
from features.cache import FeatureCache, is_cacheable
from features.code_identity import edited_since_imported, identity_digest

from benchmark.config import RunConfig, key_options
from benchmark.execution import preparation
from benchmark.execution.backends import LocalBackend
from benchmark.errors import UsageError, failure_line
from benchmark.execution.cell_record import Cell, cell_key
from benchmark.execution.cells import CellTask
from benchmark.execution.code_identity import estimator_identity
from benchmark.execution.variants import create_estimator
from benchmark.execution.recompute import count_reasons, recompute_reasons
from benchmark.execution.order import plan_order
from benchmark.execution.provenance import run_metadata
from benchmark.execution.store import RunStore

__all__ = ["RunConfig", "RunResult", "run"]  # RunConfig: declared in benchmark.config


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
    for dataset_name, prepared in zip(config.datasets, preparation.prepare_datasets(config, backend, run_dir)):
        dataset, splits, summary, skip_reason, features = prepared
        if summary is not None:
            preparation.save_near_duplicates(store, dataset_name, summary)
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
        sized, capped = preparation.sized_splits(splits, dataset.labels, config)
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
                                    dataset_name, tuning_key, key_options(config),
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

def _keras_backend(template, config):
    """The Keras backend a cell of `template` runs on: the run's, for the CNNs (CNNClassifier
    subclasses); None for every other estimator, which no backend changes."""
    from estimators.cnn import CNNClassifier

    return config.keras_backend if isinstance(template, CNNClassifier) else None


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
            extractor = template.cell_extractor()
            if is_cacheable(extractor):
                X, extracted = cache.transform(extractor, dataset.images, fingerprint)
                image_shape, timing = dataset.images.shape[1:], (extracted.compute_seconds, extracted.source)
    except Exception as exc:
        error = failure_line(exc)
        cells += [Cell(dataset.name, estimator_name, fold, "failed", error=error, key=key, train_size=size)
                  for fold, _, key, size in todo]
        return []
    # the longest cells, run first: the "cnn" family's, and any other network's training
    heavy = estimator_spec(estimator_name).family == "cnn" or _keras_backend(template, config) is not None
    return [
        (CellTask(dataset.name, estimator_name, fold, key, template, split, image_shape, timing,
                  config.threads_per_cell, config.cell_timeout, heavy, tuning=tuning, train_size=size,
                  keras_backend=_keras_backend(template, config)),
         X, dataset.labels)
        for fold, split, key, size in todo
    ]
