"""`python -m benchmark run`: cross-validate estimators on datasets and write the leaderboards."""

import os
import shlex
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from benchmark.cli import DATA_DIR_HELP, EXIT_FAILURES, EXIT_OK
from benchmark.cli.progress import Progress
from benchmark.errors import UsageError, exit_code, no_room, no_room_line, raise_terminated, received

MAX_SEED = 2**32 - 1
DEFAULT_TUNE_BUDGET = "8"
DEFAULT_TUNE_FOLDS = 3
MAX_IMAGE_SIZE = 1024


def add_parser(commands):
    run = commands.add_parser("run", help="cross-validate estimators on datasets and write leaderboards")
    run.add_argument("--all", action="store_true",
                     help="every available dataset (the embedded ones and the named ones found "
                     "locally; see `datasets`) and, unless --estimators is given, every estimator")
    run.add_argument("--dataset", action="append", metavar="NAME",
                     help="one more dataset, taken whole (repeatable): for a folder:PATH whose path "
                     "holds a comma")
    run.add_argument("--datasets",
                     help="comma-separated dataset names (see `datasets`), or folder:PATH for an image folder")
    run.add_argument("--estimators", help="comma-separated estimator names or patterns (e.g. 'knn-*'); default: all")
    run.add_argument("--folds", type=int, help="stratified folds of --protocol cv (default 5)")
    # benchmark.data.protocols.PROTOCOLS, not imported: it loads NumPy (tests/test_cli.py checks them equal)
    run.add_argument("--protocol", choices=("auto", "cv", "holdout"),
                     help="cv: cross-validate on the pooled images; holdout: train on the official "
                     "train split, score on its test split; auto (default): holdout for datasets "
                     "with an official split and >= 10,000 images, else cv")
    run.add_argument("--repeats", type=int,
                     help="holdout repeats with seeds SEED, SEED+1, ... (default 3)")
    budget = run.add_mutually_exclusive_group()
    budget.add_argument("--max-per-class", type=int, metavar="N",
                        help="use a stratified sample of at most N images per class (per split "
                        "side for holdout); default: each dataset's own cap (see `datasets`)")
    budget.add_argument("--full", action="store_true", help="use every image: no sample cap")
    run.add_argument("--seed", type=int, help="seed of the splits and estimators (default 0)")
    run.add_argument("--jobs", type=int, default=-1,
                     help="cells run at once: worker processes, or Dask workers of a local cluster "
                     "(default -1: cores / --threads-per-cell); scores do not depend on it")
    run.add_argument("--threads-per-cell", type=int, metavar="T",
                     help="BLAS/OpenMP/TensorFlow threads of each cell (default 1, or the resumed "
                     "run's); jobs x T must not exceed the cores. CNN scores depend on T (float "
                     "sums), so it is part of each cell's key")
    run.add_argument("--backend", choices=("local", "dask"), default="local",
                     help="local: worker processes on this machine (joblib); dask: a Dask cluster, "
                     "the one at --scheduler or a local one")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (with --backend dask)")
    run.add_argument("--cell-timeout", type=float, metavar="SECONDS",
                     help="stop a cell that runs longer and mark it failed (default: no limit)")
    run.add_argument("--out", type=Path,
                     help="directory for this run's results (default results/<run-id>); running "
                     "again into the same directory reuses every finished cell that still matches")
    run.add_argument("--resume", metavar="RUN",
                     help="finish an interrupted run (directory or run id under results/): its "
                     "configuration from run.json, only missing or failed cells computed")
    run.add_argument("--image-size", type=int,
                     help="resize folder images to SIZE x SIZE (default: their most common size, at most 64)")
    run.add_argument("--data-dir", type=Path, help=DATA_DIR_HELP)
    run.add_argument("--cache-dir", type=Path,
                     help="where the caches are kept between runs: computed features in DIR, decoded image "
                          "folders in DIR/folders (default ~/.cache/image-benchmark/features and .../folders)")
    run.add_argument("--no-cache", action="store_true",
                     help="do not read or write the on-disk caches (features, decoded image folders)")
    run.add_argument("--quiet", action="store_true", help="print only the leaderboards")
    run.add_argument("--set", action="append", metavar="ESTIMATOR.PARAM=VALUE", dest="settings",
                     help="an estimator parameter for this run, e.g. cnn-fast.epochs=20 (repeatable; "
                     "values are Python literals). A variant name such as 'cnn-fast[epochs=20]' in "
                     "--estimators instead ranks the changed estimator under that name")
    tuning = run.add_argument_group("tuning (the same budget for every estimator)")
    tuning.add_argument("--tune", action="store_true",
                        help="tune every estimator that declares a search space (see `list`) by a "
                        "random search with an inner cross-validation inside each training fold; "
                        "the test fold is never seen. Default: each estimator's defaults")
    tuning.add_argument("--tune-budget", metavar="N|Ns",
                        help="candidates per estimator and training fold, the defaults included "
                        f"(default {DEFAULT_TUNE_BUDGET}), or seconds with an s (e.g. 60s: the "
                        "search then depends on the machine's speed); implies --tune")
    tuning.add_argument("--tune-folds", type=int, metavar="K",
                        help=f"inner stratified folds of the search (default {DEFAULT_TUNE_FOLDS}); implies --tune")
    leakage = run.add_argument_group("leakage (images that share a source stay on one side of every split)")
    leakage.add_argument("--groups", metavar="REGEX|near-duplicates",
                         help="group the images: a regular expression whose first capture group, "
                         "searched in each image's path relative to the dataset root, names its "
                         "group (e.g. '^[^/]+/([a-z]+\\d+)-' puts airplane3-bicycle2.png and "
                         "airplane3-clock1.png together), or near-duplicates (the near-duplicate "
                         "clusters); cv then keeps each group in one fold, holdout drops the "
                         "training images whose group has test images")
    leakage.add_argument("--groups-file", type=Path, metavar="FILE",
                         help="the groups from a CSV file of path,group rows (paths relative to "
                         "the dataset root)")
    leakage.add_argument("--groups-unmatched", metavar="own-group",
                         help="own-group: each file the regex does not match, or the groups file "
                         "does not list, is a group of its own (default: such files are an error)")
    leakage.add_argument("--dedupe", action="store_true",
                         help="drop near-duplicate images before splitting, keeping one of each cluster")
    run.add_argument("--train-sizes", metavar="N,N,...|max",
                     help="learning curves: train every estimator on at most N images per class "
                     "of each split's training part (a nested, stratified, seeded sample; 'max': "
                     "all of it), e.g. 10,30,100,max; every size is scored on the same test rows")
    run.add_argument("--keras-backend", metavar="NAME",
                     help="the Keras backend the CNNs run on: tensorflow (default), jax (pip "
                     "install '.[jax]') or torch (pip install '.[torch]'); default: $KERAS_BACKEND, "
                     "else tensorflow. Part of each CNN cell's key")
    run.add_argument("experiment", nargs="?", metavar="EXPERIMENT.toml",
                     help="an experiment file: datasets, estimators with their parameters, folds, "
                     "seed, protocol, ... (see the README); options given here win over it")



def main(args):
    return _run(args, args.argv)


def _split(value):
    return [part.strip() for part in value.split(",") if part.strip()] if value else []


@contextmanager
def _terminate_like_ctrl_c():
    handled = (signal.SIGTERM, signal.SIGHUP) if hasattr(signal, "SIGHUP") else (signal.SIGTERM,)
    if threading.current_thread() is not threading.main_thread():  # only the main thread may
        yield
        return
    previous = {s: signal.signal(s, raise_terminated) for s in handled}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _run(args, argv):
    with _terminate_like_ctrl_c():
        return _run_checked(args, argv)


def _run_checked(args, argv):
    _check_run_options(args)
    if not args.scheduler:
        from benchmark.execution.worker_pool import start_fork_server

        # the workers' libraries load on another core while this one starts (with --jobs 1
        # too: its cells run in one worker process, so a cell that kills it fails alone)
        start_fork_server(extra=["distributed"] if args.backend == "dask" else [],
                          cells_only=args.jobs == 1 and args.backend == "local")
    if args.backend == "dask" and not args.resume:
        from benchmark.execution.backends import make_backend

        # connect to the cluster (or start the local one) while the data loads
        threads = args.threads_per_cell or 1
        _check_thread_budget(args, threads)  # before a local cluster starts its workers
        with make_backend("dask", _worker_count(args, threads), args.scheduler) as backend:
            return _prepare_and_execute(args, argv, backend)
    return _prepare_and_execute(args, argv, None)


def _worker_count(args, threads_per_cell):
    """--jobs, or by default as many cells at a time as the cores hold at their threads each."""
    return args.jobs if args.jobs > 0 else max(1, (os.cpu_count() or 1) // threads_per_cell)


def _prepare_and_execute(args, argv, backend):
    from benchmark.api import build_config
    from benchmark.execution.backends import make_backend
    from benchmark.execution.store import RunStore

    if args.resume:
        run_dir, config, argv = _resumed(args)
    else:
        config, notes = build_config(
            _split(args.datasets) + list(args.dataset or []), args.estimators, all_datasets=args.all,
            settings=getattr(args, "experiment_params", None), assignments=args.settings,
            folds=args.folds, seed=args.seed, protocol=args.protocol, repeats=args.repeats,
            max_per_class=args.max_per_class, full=args.full, image_size=args.image_size,
            data_dir=args.data_dir, cache_dir=None if args.no_cache else (args.cache_dir or True),
            experiment=args.experiment, tune=args.tune_budget_parsed, groups=args.groups,
            groups_file=args.groups_file, groups_unmatched=args.groups_unmatched, dedupe=args.dedupe,
            train_sizes=args.train_sizes_parsed, keras_backend=args.keras_backend)
        for note in notes:
            print(f"{'warning' if isinstance(note, Warning) else 'note'}: {note}", file=sys.stderr)
        run_dir = args.out  # None: a new directory under results/, made once the options pass
    if args.threads_per_cell is not None or not args.resume:  # a resume keeps the run's own
        config.threads_per_cell = args.threads_per_cell or 1
    if args.cell_timeout is not None or not args.resume:
        config.cell_timeout = args.cell_timeout
    _check_thread_budget(args, config.threads_per_cell)
    _turn_off_unwritable_caches(config)
    config.n_jobs = _worker_count(args, config.threads_per_cell)
    if received:  # a Ctrl-C that a library swallowed while it was being imported (seen on a
        raise received[-1]  # loaded machine): stop now, before any cell, not after the whole run
    store = (RunStore(run_dir) if run_dir is not None else RunStore.new()).prepare()
    with store.lock():
        if backend is None:
            with make_backend(args.backend, config.n_jobs, args.scheduler, store.running_dir,
                              isolate=True) as backend:
                return _execute(config, store, argv, args, backend)
        return _execute(config, store, argv, args, backend)


def _out_of_room(exc, store, report):
    """Print the one line for a full disk (or file-size limit) that ended the run in `store`,
    after writing the report of the finished cells if `report` and the disk allows; return
    EXIT_FAILURES. The runner has marked run.json "crashed" where it could."""
    from benchmark.reporting.report import write_report

    written = ""
    if report:
        try:
            written = f"; their report: {write_report(store.path).path}"
        except Exception:  # most often the same full disk: the cells are what matters
            pass
    finished = len(store.cell_files())
    print(f"error: {no_room_line(exc)}; {finished} finished cell(s) are kept in {store.cells_dir}"
          f"{written}; resume with: python -m benchmark run --resume {shlex.quote(str(store.path))}",
          file=sys.stderr)
    return EXIT_FAILURES


def _turn_off_unwritable_caches(config):
    """Turn off each on-disk cache of `config` whose directory cannot be written (a read-only
    home, a full disk), saying so in one line: the caches cost speed, never results, and each
    of their writes would otherwise fail silently, run after run."""
    from features.cache import default_cache_dir, unwritable

    problems = []
    if config.cache_dir and (reason := unwritable(config.cache_dir)):
        problems.append((config.cache_dir, reason))
        config.cache_dir = None
    folders = default_cache_dir() / "folders" if config.folder_cache is True else config.folder_cache
    if config.folder_cache and (reason := unwritable(folders)):
        problems.append((folders, reason))
        config.folder_cache = False
    if problems:
        which = (f"cache directory {problems[0][0]} is" if len(problems) == 1
                 else f"cache directories {problems[0][0]} and {problems[1][0]} are")
        print(f"note: {which} not writable ({problems[0][1]}): caching is off for this run; point "
              "--cache-dir (or BENCHMARK_CACHE_DIR) at a writable folder", file=sys.stderr)


# What a run's configuration is made of: given with --resume they are refused (the resumed
# run's own come from its run.json); otherwise those left out take these defaults.
CONFIG_DEFAULTS = {"folds": 5, "seed": 0, "protocol": "auto", "repeats": 3}
CONFIG_OPTIONS = ("folds", "seed", "protocol", "repeats", "image_size", "max_per_class", "full",
                  "data_dir", "tune", "tune_budget", "tune_folds", "groups", "groups_file",
                  "groups_unmatched", "dedupe", "train_sizes", "keras_backend")


def _check_run_options(args):
    if args.resume and (args.experiment or args.settings):
        raise UsageError("--resume continues the run with its own configuration (run.json); drop "
                         f"{'the experiment file' if args.experiment else '--set'}, or run the command "
                         "again with it and the same --out (cells that still match are reused)")
    if args.experiment:
        from benchmark.cli.experiment import apply_experiment

        args.experiment_params = apply_experiment(args)
    if args.resume:
        given = [f"--{o.replace('_', '-')}" for o in CONFIG_OPTIONS if getattr(args, o) not in (None, False)]
        if given:
            raise UsageError(f"--resume continues the run with its own configuration (run.json); "
                             f"drop {', '.join(given)}, or run the command again with them and the same "
                             f"--out (cells that still match are reused)")
    for option, value in CONFIG_DEFAULTS.items():
        if getattr(args, option) is None:
            setattr(args, option, value)
    if args.folds < 2:
        raise UsageError(f"--folds must be at least 2; got {args.folds}")
    args.tune_budget_parsed = _tune_budget(args)
    if args.keras_backend is not None:  # in the environment before the workers' server starts
        from estimators.keras_backend import check_backend

        try:
            os.environ["KERAS_BACKEND"] = check_backend(args.keras_backend)
        except ValueError as exc:
            raise UsageError(f"--keras-backend: {exc}") from None
    args.train_sizes_parsed = None
    if args.train_sizes is not None:
        from benchmark.data.protocols import parse_train_sizes

        try:
            args.train_sizes_parsed = parse_train_sizes(args.train_sizes)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.repeats < 1:
        raise UsageError(f"--repeats must be at least 1; got {args.repeats}")
    if args.jobs == 0 or args.jobs < -1:
        raise UsageError("--jobs must be a positive number of cells at once, or -1 for all cores")
    for option in ("image_size", "max_per_class", "threads_per_cell", "cell_timeout"):
        value = getattr(args, option)
        if value is not None and value <= 0:
            raise UsageError(f"--{option.replace('_', '-')} must be positive; got {value:g}")
    if not 0 <= args.seed <= MAX_SEED:
        raise UsageError(f"--seed must be between 0 and {MAX_SEED} (NumPy's seed range); got {args.seed}")
    if args.image_size is not None and args.image_size > MAX_IMAGE_SIZE:
        raise UsageError(f"--image-size must be at most {MAX_IMAGE_SIZE} pixels a side; got "
                         f"{args.image_size} (images are held in memory at that size)")
    from benchmark.data.groups import check_grouping  # the datasets: in build_config, once known

    check_grouping(args.groups, args.groups_file, args.groups_unmatched)
    if args.scheduler and args.backend != "dask":
        raise UsageError("--scheduler needs --backend dask")
    if args.data_dir is not None:  # as `datasets` does: a --data-dir that is not there is a usage error
        from benchmark.data.catalog import data_dirs

        data_dirs(args.data_dir)
    if args.resume and (args.datasets or args.dataset or args.all or args.estimators or args.out):
        raise UsageError("--resume takes the datasets, estimators and output directory from the "
                         "run's run.json; drop --all/--datasets/--estimators/--out")
    if args.resume:  # after every check of the arguments themselves: this one reads the run
        _resume_backend(args)


def _tune_budget(args):
    """The run's TuningBudget, or None without --tune / --tune-budget / --tune-folds."""
    from estimators.tuning import TuningBudget

    if not (args.tune or args.tune_budget is not None or args.tune_folds is not None):
        return None
    folds = DEFAULT_TUNE_FOLDS if args.tune_folds is None else args.tune_folds
    if folds < 2:
        raise UsageError(f"--tune-folds must be at least 2 inner folds; got {folds}")
    try:
        return TuningBudget.parse(DEFAULT_TUNE_BUDGET if args.tune_budget is None
                                  else args.tune_budget, folds)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _check_thread_budget(args, threads):
    cores = os.cpu_count() or 1
    if threads > cores:
        raise UsageError(f"--threads-per-cell {threads} exceeds the {cores} cores")
    on_this_machine = args.backend == "local" or not args.scheduler  # or a local Dask cluster
    if on_this_machine and args.jobs > 0 and args.jobs * threads > cores:
        raise UsageError(f"--jobs {args.jobs} x --threads-per-cell {threads} threads exceed the "
                         f"{cores} cores; lower one of them")


def _resume_backend(args):
    """A resumed run's CNNs run on the backend it recorded (their cells' keys name it), whatever
    KERAS_BACKEND says now: set in the environment before the workers' server starts, so a
    stray value is not one error per CNN cell. UsageError when that backend is not installed."""
    from estimators.keras_backend import check_backend
    from estimators.registry import estimator_family

    _, config, _ = _resumed(args)
    if config.keras_backend is None or not any(estimator_family(e) == "cnn" for e in config.estimators):
        return
    try:
        os.environ["KERAS_BACKEND"] = check_backend(config.keras_backend)
    except ValueError as exc:
        raise UsageError(f"cannot resume: its CNNs ran on the {config.keras_backend} backend: {exc}") from None


def _resumed(args):
    """(run directory, RunConfig, command line) of the run to resume, from its run.json."""
    from benchmark.execution.runner import RunConfig
    from benchmark.execution.store import RUN_FILE, RunStore

    store = RunStore.find(args.resume)
    try:
        meta = store.read_meta()
        config = RunConfig(**meta["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot resume {store.path}: its {RUN_FILE} is unreadable ({exc}); run the "
                         "original command again with --out pointing at it") from None
    return store.path, config, meta.get("command") or []


def _execute(config, store, argv, args, backend):
    from benchmark.execution.runner import run
    from benchmark.reporting.leaderboard import terminal_leaderboards
    from benchmark.reporting.report import write_report

    run_dir = store.path
    progress = Progress(store, quiet=args.quiet)
    started = []

    def on_start(summaries, skipped, plan, pending, reused):
        started.append(True)
        progress.start(pending, reused)

    try:  # the runner writes run.json: running, then finished or interrupted
        result = run(config, store, backend=backend, on_cell=progress.cell, on_dataset=progress.dataset,
                     on_start=on_start, argv=argv, backend_name=args.backend)
    except KeyboardInterrupt as exc:
        progress.close()
        code = exit_code(exc)
        if not started:  # nothing was planned or written yet: there is nothing to resume
            print("\ninterrupted before the first cell started; nothing to resume: run the same "
                  "command again", file=sys.stderr)
            return code
        write_report(run_dir)
        finished = len(store.cell_files())
        kept = (f"the {finished} finished cell(s) are kept in {store.cells_dir}" if finished
                else "no cell had finished yet")
        print(f"\ninterrupted: {kept}. Resume with:\n"
              f"  python -m benchmark run --resume {shlex.quote(str(run_dir))}", file=sys.stderr)
        return code
    except OSError as exc:  # a full disk while the cells ran; any other error is a bug: raised
        if no_room(exc) is None:
            raise
        progress.close()
        return _out_of_room(no_room(exc), store, report=True)
    progress.close()
    # the workers, still running, draw the plots (a remote Dask cluster's cannot: they are
    # then drawn here)
    try:
        report = write_report(run_dir, n_jobs=config.n_jobs if args.backend == "local" else 1,
                              mapper=getattr(backend, "map_here", None))
    except OSError as exc:  # a full disk while the report was written: the run did not finish
        if no_room(exc) is None:
            raise
        store.set_status("crashed")
        return _out_of_room(no_room(exc), store, report=False)
    store.point_latest()
    sys.stdout.write(terminal_leaderboards(report.analysis))
    if result.reused or result.replaced:
        print(f"{result.reused} cell(s) reused from {run_dir}; {result.replaced} stored cell(s) no longer "
              f"matched this configuration and were moved to {run_dir}/replaced", file=sys.stderr)
    if result.recomputed:
        from benchmark.execution.recompute import recomputed_text

        print(recomputed_text(result.recomputed, result.recompute_reasons), file=sys.stderr)
    print(f"Report: {report.path}")
    for name, reason in config.unavailable.items():  # with the results: stderr is for progress and errors
        print(f"not run: {name}: {reason}")
    if result.failed_cells or result.skipped_datasets:
        # --resume computes failed cells again; a skipped dataset stays skipped until fixed
        retry = (f"; `python -m benchmark run --resume {shlex.quote(str(run_dir))}` retries the failed cells"
                 if result.failed_cells else "")
        print(f"{len(result.failed_cells)} failed cell(s), {len(result.skipped_datasets)} skipped "
              f"dataset(s): see the Problems section of {report.path}{retry}", file=sys.stderr)
        return EXIT_FAILURES
    return EXIT_OK


