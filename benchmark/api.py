"""The Python API, for notebooks: run a benchmark and get its results as objects.

    from benchmark import run_benchmark

    results = run_benchmark(datasets=["digits", "faces"], estimators=["knn-hog", "logreg-*"], folds=5)
    results.leaderboard("digits")      # a pandas DataFrame, best first
    results.overall                    # the ranking across datasets
    results.ranking.friedman           # the statistics (Friedman test, Nemenyi groups)
    results.figures()                  # {(dataset, kind): matplotlib Figure}
    results.save("results/my-run")     # the run directory and report.md the command line writes

The same runner, splits, seeds and statistics as `python -m benchmark run`: the scores of a
notebook run equal the command line's. Without `out`, the cells live in a temporary directory
while the run lasts and in memory afterwards; with `out`, the run directory is written as the
command line writes it (and a later call with the same `out` reuses its finished cells).
"""

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import UsageError


@dataclass
class BenchmarkResults:
    """A finished run: its cells and what the report computes from them."""

    cells: list  # benchmark.execution.cell_record.Cell, one per (dataset, estimator, fold)
    meta: dict  # what run.json holds: configuration, plan, datasets, versions, machine
    scores: object  # pandas DataFrame, one row per (dataset, estimator, fold)
    summary: object  # pandas DataFrame, one row per (dataset, estimator)
    overall: object  # pandas DataFrame, one row per estimator: mean rank across datasets
    history: object  # pandas DataFrame, the CNNs' per-epoch curves
    ranking: object  # benchmark.reporting.stats.Ranking
    problems: list = field(default_factory=list)  # failed or missing cells, skipped datasets
    path: Path = None  # the run directory, when one was written (`out`, or save())
    # benchmark.reporting.calibration.Calibration: probabilistic scores, reliability bins
    calibration: object = None

    @property
    def datasets(self):
        return list(self.summary["dataset"].drop_duplicates()) if len(self.summary) else []

    def leaderboard(self, dataset=None):
        """The leaderboard of `dataset` (the only one when None), best first, as a DataFrame."""
        if dataset is None:
            if len(self.datasets) != 1:
                raise ValueError(f"name one dataset of {self.datasets}")
            dataset = self.datasets[0]
        if dataset not in self.datasets:
            raise ValueError(f"no results for dataset {dataset!r}; this run has {self.datasets}")
        return self.summary[self.summary["dataset"] == dataset].reset_index(drop=True)

    def figures(self):
        """{(dataset, kind): matplotlib Figure} of the report's plots ("" for the critical-
        difference diagram; kinds f1, pareto, confusion, curves, reliability, cd); no file is
        written."""
        from benchmark.reporting.report import figures

        return figures(self._stored(), self)

    def save(self, path):
        """Write the run directory (run.json, cells/, report.md, CSVs, plots) at `path`, as the
        command line does; return its path. `path` must be new, empty or this run's own:
        ValueError, naming what it holds, for a folder of another run (whose cells would be
        ranked with these) or of other files."""
        from benchmark.execution.store import RunStore
        from benchmark.reporting.report import write_report

        store = RunStore(path)
        if store.path.resolve() != (self.path.resolve() if self.path else None):
            try:
                store.refuse_other_run("save these results")
                store.prepare()
            except UsageError as exc:
                raise ValueError(str(exc)) from None
            with store.lock():
                meta = dict(self.meta, run_id=store.path.name)
                store.write_meta(meta)
                for cell in self.cells:
                    store.save_cell(cell)
                write_report(store.path)
        self.path = store.path
        return store.path

    def _stored(self):
        from benchmark.reporting.results import StoredRun

        return StoredRun(self.path, self.meta, list(self.cells))

    def __repr__(self):
        return (f"BenchmarkResults({len(self.datasets)} dataset(s), {self.summary['estimator'].nunique() if len(self.summary) else 0} "
                f"estimator(s), {len(self.cells)} cell(s){', ' + str(self.path) if self.path else ''})")


def run_benchmark(datasets, estimators=None, *, folds=5, seed=0, protocol="auto", repeats=3,
                  max_per_class=None, full=False, image_size=None, settings=None, n_jobs=1,
                  threads_per_cell=1, cell_timeout=None, out=None, cache_dir=None, data_dir=None,
                  tune=None, groups=None, groups_file=None, groups_unmatched=None, dedupe=False,
                  train_sizes=None, keras_backend=None):
    """Cross-validate `estimators` on `datasets` with the same splits; return BenchmarkResults.

    `datasets`: names (see `python -m benchmark datasets`) or "folder:PATH"; `estimators`:
    names, patterns ("knn-*") or variants ("cnn-fast[epochs=20]"), default all; `settings`:
    {estimator: {param: value}} as --set gives them. The other arguments are the `run`
    options of the same names (`n_jobs` is --jobs, default 1: no worker processes; -1: as many
    as the cores hold at `threads_per_cell` threads each). `tune`:
    as --tune-budget, e.g. 8 (configurations) or "60s", or an estimators.tuning.TuningBudget
    (None: no tuning). `groups`, `groups_file`, `groups_unmatched`: as --groups (a regex or
    "near-duplicates"), --groups-file and --groups-unmatched, to keep each group of images on
    one side of every split; `dedupe`: as --dedupe; `train_sizes`: as --train-sizes, e.g.
    [10, 30, 100, "max"] or "10,30,max"; `keras_backend`: as --keras-backend ("tensorflow",
    "jax", "torch"; a process runs one: the first CNN fitted in it fixes it). A name or a
    setting that cannot be used raises ValueError before anything runs.

    With `n_jobs` other than 1 the cells run in worker processes, which start by importing the
    main module again (the fork server's start method, like `spawn`): a script must call
    run_benchmark under the guard, or each worker would start the run anew::

        if __name__ == "__main__":
            results = run_benchmark(["faces"], ["knn-hog"], n_jobs=-1)

    A notebook needs no guard.
    """
    from estimators.tuning import TuningBudget

    try:
        if tune is not None and not isinstance(tune, TuningBudget):
            tune = TuningBudget.parse(tune)
        if folds < 2 or repeats < 1 or threads_per_cell < 1:
            raise UsageError("folds must be at least 2, repeats and threads_per_cell at least 1")
        if n_jobs == -1:  # as --jobs -1: the cells the cores hold at threads_per_cell threads each
            n_jobs = max(1, (os.cpu_count() or 1) // threads_per_cell)
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
            raise UsageError(f"n_jobs must be a positive number of worker processes, or -1 for all "
                             f"cores; got {n_jobs!r}")
        if train_sizes is not None:
            from benchmark.data.protocols import parse_train_sizes

            try:
                text = train_sizes if isinstance(train_sizes, str) else ",".join(map(str, train_sizes))
                train_sizes = parse_train_sizes(text)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        config, notes = build_config(
            _names(datasets, "datasets"), _names(estimators, "estimators") if estimators else None,
            settings=settings, folds=folds, seed=seed, protocol=protocol, repeats=repeats,
            max_per_class=max_per_class, full=full, image_size=image_size, data_dir=data_dir,
            cache_dir=cache_dir or True, n_jobs=n_jobs, threads_per_cell=threads_per_cell,
            cell_timeout=cell_timeout, tune=tune, groups=groups, groups_file=groups_file,
            groups_unmatched=groups_unmatched, dedupe=dedupe, train_sizes=train_sizes,
            keras_backend=keras_backend)
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    for note in notes:
        if isinstance(note, Warning):
            warnings.warn(note, stacklevel=2)
    if out is not None:
        return _run_into(config, Path(out), keep=True)
    scratch = Path(tempfile.mkdtemp(prefix="benchmark-run-"))
    try:
        return _run_into(config, scratch / "run", keep=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def build_config(datasets, estimators=None, *, all_datasets=False, settings=None, assignments=(),
                 folds=5, seed=0, protocol="auto", repeats=3, max_per_class=None, full=False,
                 image_size=None, data_dir=None, cache_dir=True, n_jobs=1, threads_per_cell=1,
                 cell_timeout=None, experiment=None, tune=None, groups=None, groups_file=None,
                 groups_unmatched=None, dedupe=False, train_sizes=None, keras_backend=None):
    """(RunConfig, [notes]) of a run, every name and setting checked (UsageError, one line).

    `datasets`: names (every available one with `all_datasets` and none given); `estimators`:
    names, patterns or variants (None: all); `settings`: {estimator: {param: value}} and
    `assignments`: ["ESTIMATOR.PARAM=VALUE", ...] (--set); `cache_dir`: where features are
    kept, True for the default place, None for this run's memory only. The command line and
    run_benchmark both build their runs here. `tune`: an estimators.tuning.TuningBudget, to
    tune every estimator that declares a search space (None: defaults). `groups` (a regex or
    "near-duplicates"), `groups_file`, `groups_unmatched`: the grouping of the splits (see
    benchmark.data.groups), checked here; `dedupe`: drop near-duplicates before splitting;
    `train_sizes`: benchmark.data.protocols.parse_train_sizes's list (learning curves);
    `keras_backend`: the CNNs' Keras backend (None: $KERAS_BACKEND, else TensorFlow), checked
    to be installed when the run has a CNN."""
    from features.cache import default_cache_dir

    from benchmark.execution.runner import RunConfig
    from benchmark.execution.selection import estimator_settings, resolve_datasets, resolve_estimators

    from benchmark.data.groups import check_grouping
    from estimators.keras_backend import DeterminismWarning, determinism_gap
    from estimators.registry import estimator_family

    names, unavailable, notes = resolve_datasets(list(datasets or []), all_datasets, data_dir)
    if groups_file is not None:
        groups_file = str(Path(groups_file).expanduser().resolve())
    check_grouping(groups, groups_file, groups_unmatched, names)
    chosen = resolve_estimators(estimators)
    params = estimator_settings(list(assignments or []), chosen, settings)
    has_cnn = any(estimator_family(e) == "cnn" for e in chosen)
    keras_backend = _check_keras_backend(keras_backend, has_cnn)
    if has_cnn:
        gap = determinism_gap(keras_backend)
        if gap:  # once per run: the command line prints it, run_benchmark warns
            notes.append(DeterminismWarning(gap))
    if tune is not None:
        notes += _check_tuning(chosen, params)
        _check_sizes_for_tuning(train_sizes, tune)
    # decoded image folders: the default place, or under a given --cache-dir (beside its features)
    folder_cache = (cache_dir is not None) if cache_dir in (True, None) else str(Path(cache_dir) / "folders")
    if cache_dir is True:
        cache_dir = default_cache_dir() / "features"
    config = RunConfig(
        names, chosen, folds=folds, seed=seed, image_size=image_size, protocol=protocol,
        repeats=repeats, max_per_class=max_per_class, full=full, n_jobs=n_jobs,
        threads_per_cell=threads_per_cell, cell_timeout=cell_timeout, params=params,
        unavailable=unavailable, cache_dir=str(cache_dir) if cache_dir else None,
        folder_cache=folder_cache,
        data_dir=str(Path(data_dir).expanduser().resolve()) if data_dir else None,
        experiment=str(Path(experiment).expanduser().resolve()) if experiment else None,
        tune=tune.as_dict() if tune is not None else None,
        groups=groups, groups_file=groups_file, groups_unmatched=groups_unmatched, dedupe=bool(dedupe),
        train_sizes=list(train_sizes) if train_sizes else None, keras_backend=keras_backend,
        locations={n: os.path.abspath(os.path.expanduser(n[len("folder:"):]))
                   for n in names if n.startswith("folder:")},
    )
    return config, notes


def _check_keras_backend(name, has_cnn):
    """The Keras backend of a run: `name`, else $KERAS_BACKEND, else TensorFlow; UsageError when
    it is unknown, or not installed while the run has a CNN (or it was asked for by name). A
    run without CNNs does not use $KERAS_BACKEND: one that names no backend Keras has gives
    None (run.json records no backend)."""
    from estimators.keras_backend import BACKENDS, DEFAULT, check_backend

    resolved = name or os.environ.get("KERAS_BACKEND") or DEFAULT
    if name is not None or has_cnn:
        try:
            check_backend(resolved)
        except ValueError as exc:
            given = "--keras-backend" if name is not None else "KERAS_BACKEND"
            raise UsageError(f"{given}: {exc}") from None
    return resolved if resolved in BACKENDS else None


def _check_sizes_for_tuning(train_sizes, tune):
    """UsageError when a training size is too small for the tuning's inner folds: each class
    needs an image in every inner fold, and a size below that would run untuned (defaults
    kept) while the larger sizes are tuned - a curve comparing unlike training."""
    smallest = min((s for s in train_sizes or [] if isinstance(s, int)), default=None)
    if smallest is not None and smallest < tune.folds:
        raise UsageError(f"--train-sizes {smallest} is fewer images per class than --tune's "
                         f"{tune.folds} inner folds need (one per fold), so that size could not be "
                         f"tuned like the others; use sizes of at least {tune.folds}, or "
                         + (f"--tune-folds {smallest}" if smallest >= 2 else "drop --tune"))


def _check_tuning(chosen, params):
    """Notes on what --tune leaves untuned; UsageError when a declared search space is wrong
    (checked here, once, rather than failing every cell) or nothing can be tuned."""
    from estimators import create_estimator
    from estimators.tuning import search_space

    tunable, untuned = [], []
    for name in chosen:
        try:
            estimator = create_estimator(name, **params.get(name, {}))
        except Exception:  # reported per cell, as without --tune
            continue
        try:
            (tunable if search_space(estimator) else untuned).append(name)
        except ValueError as exc:
            raise UsageError(f"cannot tune {name}: {exc}") from None
    if not tunable:
        raise UsageError(f"--tune: none of the chosen estimators ({', '.join(chosen)}) declares a "
                         "search space, so nothing would be tuned; drop --tune or add an estimator "
                         "that declares one (`python -m benchmark list` marks them)")
    return [f"not tuned (no search space declared): {', '.join(untuned)}"] if untuned else []


def _names(value, what):
    if isinstance(value, str):
        return [value]
    try:
        return [str(v) for v in value]
    except TypeError:
        raise UsageError(f"{what} must be a name or a list of names; got {value!r}") from None


def _run_into(config, path, keep):
    from benchmark.execution.backends import make_backend
    from benchmark.execution.runner import run
    from benchmark.execution.store import RunStore
    from benchmark.execution.worker_pool import start_fork_server
    from benchmark.reporting.report import analyse, write_report
    from benchmark.reporting.results import load_run

    try:
        store = RunStore(path).prepare()
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    if config.n_jobs > 1:
        start_fork_server()
    with store.lock(), make_backend("local", config.n_jobs, scratch=store.running_dir) as backend:
        try:
            run(config, store, backend=backend, argv=["benchmark.run_benchmark(...)"])
        except UsageError as exc:  # e.g. an estimator's file edited after it was imported here
            raise ValueError(str(exc)) from None
    if keep:
        write_report(store.path)
    stored = load_run(store.path)
    result = analyse(stored)
    for cell in stored.cells:  # kept in memory: without `out` the run directory goes, and
        cell.probabilities, _ = stored.probabilities(cell)  # save() writes them again
    return BenchmarkResults(stored.cells, stored.meta, result.scores, result.summary, result.overall,
                            result.history, result.ranking, result.problems,
                            path=store.path if keep else None, calibration=result.calibration)
