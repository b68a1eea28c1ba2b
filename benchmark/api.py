"""The Python API, for notebooks: run a benchmark and get its results as objects.

    from benchmark import run_benchmark

    results = run_benchmark(datasets=["digits", "faces"], estimators=["knn-hog", "logreg-*"], folds=5)
    results.leaderboard("digits")      # a pandas DataFrame, best first
    results.overall                    # the ranking across datasets
    results.ranking.friedman           # the statistics (Friedman test, Nemenyi groups)
    results.figures()                  # {(dataset, kind): matplotlib Figure}
    results.per_class                  # every section of report.md as a DataFrame: per_class,
    results.diagnostics                # tuning, diagnostics, sizes, calibration, near_duplicates
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
from contextlib import contextmanager
from pathlib import Path

from benchmark.errors import UsageError
from benchmark.reporting.benchmark_results import BenchmarkResults  # noqa: F401 (the API's result)
from estimators.registry import unknown_name_message


def run_benchmark(datasets, estimators=None, **options):
    """Cross-validate `estimators` on `datasets` with the same splits; return BenchmarkResults.

    `datasets`: names (see `python -m benchmark datasets`) or "folder:PATH"; `estimators`:
    names, patterns ("knn-*") or variants ("cnn-fast[epochs=20]"), default (None) the default
    set; `settings`: {estimator: {param: value}} as --set gives them. The other keyword
    arguments are the `run` options of the same names, with the same defaults and checks
    (benchmark.config.OPTIONS; e.g. folds=5, seed=0, protocol="auto", repeats=3), except
    `n_jobs` (--jobs, default 1: no worker processes; -1: as many as the cores hold at
    `threads_per_cell` threads each). `tune`: True, or a budget as --tune-budget gives it (8
    configurations, "60s"), or an estimators.tuning.TuningBudget (None or False: no tuning).
    `train_sizes`: as --train-sizes, e.g. [10, 30, 100, "max"] or "10,30,max"; `keras_backend`:
    as --keras-backend ("tensorflow", "jax", "torch"; a process runs one: the first CNN fitted
    in it fixes it); `plugins`: as --plugin, files or modules that register estimators. A
    name, a value or a setting that cannot be used raises ValueError (one line, naming the
    argument) before anything runs.

    With `n_jobs` other than 1 the cells run in worker processes, which start by importing the
    main module again (the fork server's start method, like `spawn`): a script must call
    run_benchmark under the guard, or each worker would start the run anew::

        if __name__ == "__main__":
            results = run_benchmark(["faces"], ["knn-pixels"], n_jobs=-1)

    A notebook needs no guard.
    """
    from benchmark.config import BY_KEYWORD, BY_NAME, check_named
    from benchmark.execution.worker_pool import start_fork_server

    values = {}
    try:
        for keyword, value in {"datasets": datasets, "estimators": estimators, **options}.items():
            option = BY_KEYWORD.get(keyword)
            if option is None:
                raise UsageError(unknown_name_message("argument", keyword, BY_KEYWORD))
            if value is None and option.default not in (None, False):  # None is "unset" only
                check_named(option, value, keyword)  # where that is the default: raises
            values[option.name] = value
        if "tune" in values:  # True, or the budget itself
            values["tune"], budget = _tune_argument(values["tune"])
            if budget is not None:
                values["tune_budget"] = check_named(BY_NAME["tune_budget"], budget, "tune")
        config, notes = build_config(**values)
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    for note in notes:
        if isinstance(note, Warning):
            warnings.warn(note, stacklevel=2)
    if config.n_jobs > 1:
        start_fork_server()
    if values.get("out") is not None:  # checked by build_config
        return _run_into(config, Path(values["out"]), keep=True)
    scratch = Path(tempfile.mkdtemp(prefix="benchmark-run-"))
    try:
        return _run_into(config, scratch / "run", keep=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _tune_argument(value):
    """(tune, budget) of run_benchmark's `tune`: True, False or None, a budget (8, "60s") or a
    TuningBudget (kept as it is, its folds too: build_config takes it)."""
    from estimators.tuning import TuningBudget

    if value is None or isinstance(value, bool):
        return bool(value), None
    if isinstance(value, TuningBudget):
        return value, None
    return True, value


def _api_name(option):
    return option.keyword


def build_config(datasets=None, estimators=None, *, all_datasets=False, file_settings=None, **options):
    """(RunConfig, [notes]) of a run, every option, name and setting checked (UsageError, one
    line, naming the options as the API does: the command line checks its own first).

    `options`: {option name: value} of benchmark.config.OPTIONS, each left out or None at its
    default. `datasets`: names (every available one with `all_datasets` and none given);
    `estimators`: names, patterns or variants (None: the default set); `settings`: {estimator:
    {param: value}}; `assignments`: ["ESTIMATOR.PARAM=VALUE", ...] (--set); `file_settings`: an
    experiment file's {estimator: {param: value}}, kept for the estimators this run has (the
    command line's --estimators may choose fewer than the file names); `cache_dir`: where
    features are kept (None: the default place), unless `no_cache`. The command line and
    run_benchmark both build their runs here."""
    from benchmark.config import OPTIONS, RunConfig, check_options, tuning_budget, with_defaults
    from benchmark.execution.selection import (estimator_settings, resolve_datasets, resolve_estimators,
                                               unavailable_estimators)

    from benchmark.data.groups import check_grouping
    from estimators.keras_backend import DeterminismWarning, determinism_gap
    from estimators.registry import KERAS_FAMILIES, estimator_family, load_plugins

    budget = options.pop("tune", None)  # False, True or a TuningBudget (run_benchmark's)
    options["tune"] = budget if budget is None or isinstance(budget, bool) else True
    budget = None if isinstance(budget, (bool, type(None))) else budget
    given = {**options, "datasets": datasets, "estimators": estimators}
    values = with_defaults(check_options(given, _api_name))
    names, unavailable, notes = resolve_datasets(values["datasets"] or [], all_datasets, values["data_dir"])
    if values["weights_dir"] is not None:  # before any estimator's weights are looked for
        values["weights_dir"] = use_weights_dir(values["weights_dir"])
    resolved = {"data_dir": _absolute(values["data_dir"]), "groups_file": _absolute(values["groups_file"]),
                "experiment": _absolute(values["experiment"]), "plugins": _plugin_paths(values["plugins"])}
    check_grouping(values["groups"], resolved["groups_file"], values["groups_unmatched"], names)
    try:  # before the names are read: the plug-ins register estimators
        load_plugins(resolved["plugins"])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    chosen = resolve_estimators(values["estimators"], notes=notes)
    kept = {name: params for name, params in (file_settings or {}).items() if name in chosen}
    params = estimator_settings(values["assignments"] or [], chosen, {**kept, **(values["settings"] or {})})
    missing = unavailable_estimators(chosen, params)
    if missing and values["estimators"]:  # named: the user asked for it, so it is an error
        name, reason = next(iter(missing.items()))
        raise UsageError(f"{name} cannot run here: {reason}")
    chosen = [name for name in chosen if name not in missing]  # the default set: left out, said why
    params = {name: p for name, p in params.items() if name not in missing}
    has_cnn = any(estimator_family(e) in KERAS_FAMILIES for e in chosen)
    keras_backend = _check_keras_backend(values["keras_backend"], has_cnn)
    if has_cnn:
        gap = determinism_gap(keras_backend)
        if gap:  # once per run: the command line prints it, run_benchmark warns
            notes.append(DeterminismWarning(gap))
    budget = budget or tuning_budget(values)
    if budget is not None:
        notes += _check_tuning(chosen, params)
        _check_sizes_for_tuning(values["train_sizes"], budget)
    cache_dir, folder_cache = cache_places(values["cache_dir"], values["no_cache"])
    n_jobs = values["n_jobs"]
    if n_jobs == -1:  # as many cells at a time as the cores hold at their threads each
        n_jobs = max(1, (os.cpu_count() or 1) // values["threads_per_cell"])
    recorded = {o.name: values[o.name] for o in OPTIONS if o.record}
    config = RunConfig(names, chosen, **{
        **recorded, **resolved, "n_jobs": n_jobs, "params": params, "unavailable": unavailable,
        "unavailable_estimators": missing,
        "cache_dir": cache_dir, "folder_cache": folder_cache, "keras_backend": keras_backend,
        "tune": budget.as_dict() if budget is not None else None,
        "locations": {n: os.path.abspath(os.path.expanduser(n[len("folder:"):]))
                      for n in names if n.startswith("folder:")},
    })
    return config, notes


def cache_places(cache_dir=None, no_cache=False):
    """(features cache directory or None, decoded image folders' cache: True for the default
    place, a directory, or False) of --cache-dir / --no-cache: the default places, or DIR and
    DIR/folders; None and False with `no_cache` (features then cached in memory for the run)."""
    from features.cache import default_cache_dir

    if no_cache:
        return None, False
    if cache_dir is None:
        return str(default_cache_dir() / "features"), True
    return str(cache_dir), str(Path(cache_dir) / "folders")


def use_weights_dir(path):
    """Make `path` the folder pretrained networks' weight files are looked in first, in this
    process and the workers it starts ($BENCHMARK_WEIGHTS_DIR, features.backbones); UsageError
    when it is not a folder."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise UsageError(f"--weights-dir {path}: not a folder; give the folder that holds the weight files")
    os.environ["BENCHMARK_WEIGHTS_DIR"] = str(folder)
    return str(folder)


def _absolute(path):
    return None if path is None else str(Path(path).expanduser().resolve())


def _plugin_paths(plugins):
    """The plug-ins with each file made absolute (a module name stays as it is), so a resume
    from another working directory loads the same files; None when there are none."""
    if not plugins:
        return None
    return [_absolute(p) if p.endswith(".py") or os.sep in p else p for p in plugins]


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
    from estimators.tuning import search_space

    from benchmark.execution.variants import create_estimator

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


class Execution:
    """A run being executed (see `execute`): its configuration, store and backend."""

    def __init__(self, config, store, backend, backend_name):
        self.config, self.store, self.backend, self.backend_name = config, store, backend, backend_name
        self.started = False  # whether the cells were planned (run.json written): a run to resume

    def run(self, argv, on_cell=None, on_dataset=None, on_start=None):
        """benchmark.execution.runner.run of the configuration into the store; the RunResult."""
        from benchmark.execution.runner import run

        def started(*args):
            self.started = True
            if on_start is not None:
                on_start(*args)

        return run(self.config, self.store, backend=self.backend, on_cell=on_cell, on_dataset=on_dataset,
                   on_start=started, argv=argv, backend_name=self.backend_name)

    def report(self):
        """Write the run directory's report; the Report. The backend's workers, still running,
        draw the plots (a remote Dask cluster's cannot: they are then drawn here)."""
        from benchmark.reporting.report import write_report

        return write_report(self.store.path, n_jobs=self.config.n_jobs if self.backend_name == "local" else 1,
                            mapper=getattr(self.backend, "map_here", None))


@contextmanager
def execute(config, run_dir=None, *, backend="local", scheduler=None, connected=None, isolate=False):
    """The one way a run is executed, by the command line and run_benchmark alike: the run
    directory `run_dir` made ready (None: a new one under results/; UsageError when it cannot
    be written or holds something else), locked while the run lasts, and the cells' backend
    started (`backend`, "local" or "dask", with `scheduler`; `connected`: one already
    entered); yields the Execution, whose `run` and `report` the caller calls, handling what
    it must (interrupts, a full disk) inside the block, while the lock is held."""
    from benchmark.execution.backends import make_backend
    from benchmark.execution.store import RunStore

    store = (RunStore(run_dir) if run_dir is not None else RunStore.new()).prepare()
    with store.lock():
        if connected is not None:
            yield Execution(config, store, connected, backend)
            return
        with make_backend(backend, config.n_jobs, scheduler, store.running_dir, isolate=isolate) as made:
            yield Execution(config, store, made, backend)


def _run_into(config, path, keep):
    try:
        with execute(config, path) as execution:
            execution.run(argv=["benchmark.run_benchmark(...)"])
            analysis = execution.report().analysis if keep else None
            store = execution.store
    except UsageError as exc:  # e.g. an estimator's file edited after it was imported here
        raise ValueError(str(exc)) from None
    return BenchmarkResults.load(store.path, keep_path=keep, analysis=analysis)
