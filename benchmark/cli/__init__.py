"""Command line: `python -m benchmark {run,report,compare,list,datasets} ...`. Parses, calls, prints."""

import argparse
import fnmatch
import json
import os
import shlex
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from benchmark.errors import UsageError, exit_code, raise_terminated
from benchmark.execution.metrics import METRICS
from benchmark.cli.progress import Progress

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_SEED = 2**32 - 1
MAX_IMAGE_SIZE = 1024
DATA_DIR_HELP = ("where the named datasets (cifar10, mnist, ...) are looked for first: original "
                 "archives or image folders (default: $IMAGE_BENCHMARK_DATA, else [data] dir in "
                 "~/.config/image-benchmark/config.ini)")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as argparse does, but with a hint
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser():
    parser = _Parser(
        prog="python -m benchmark",
        description="Benchmark image classifiers: classical models on handcrafted features "
        "vs convolutional networks, cross-validated on the same splits.",
    )
    from benchmark import __version__

    parser.add_argument("--version", action="version", version=f"image-benchmark {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
                     help="where computed features are kept between runs (default ~/.cache/image-benchmark)")
    run.add_argument("--no-cache", action="store_true",
                     help="do not read or write the on-disk caches (features, decoded image folders)")
    run.add_argument("--quiet", action="store_true", help="print only the leaderboards")

    report = commands.add_parser(
        "report", help="regenerate a run's report.md, plots and CSVs from its stored cells (no refitting)")
    report.add_argument("run", nargs="?", metavar="RUN",
                        help="run directory or run id under results/ (default: results/latest)")
    report.add_argument("--jobs", type=int, default=-1,
                        help="processes drawing the plots (default -1: all cores)")
    compare = commands.add_parser(
        "compare", help="per (dataset, estimator): the score difference between two runs and whether it is significant")
    compare.add_argument("run_a", metavar="RUN_A", help="run directory or run id under results/")
    compare.add_argument("run_b", metavar="RUN_B", help="run directory or run id under results/")
    compare.add_argument("--metric", default="f1_macro", choices=list(METRICS),
                         help="score to compare (default f1_macro)")

    commands.add_parser("list", help="list the registered estimators and the datasets")
    datasets = commands.add_parser(
        "datasets", help="every dataset: available or missing (and why), source, classes, images, size, licence")
    datasets.add_argument("--data-dir", type=Path, help=DATA_DIR_HELP)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            return _list()
        if args.command == "datasets":
            return _datasets(args)
        if args.command == "report":
            return _report(args)
        if args.command == "compare":
            return _compare(args)
        return _run(args, ["python -m benchmark", *(sys.argv[1:] if argv is None else argv)])
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _list():
    from tabulate import tabulate

    from estimators import estimator_spec, list_estimators

    from benchmark.data import list_datasets, named_datasets

    specs = [estimator_spec(n) for n in list_estimators()]
    print("Estimators")
    print(tabulate([[s.name, s.family, s.description] for s in specs], ["name", "family", "description"]))
    print("\nDatasets (`python -m benchmark datasets` says which are on this machine)")
    rows = list_datasets() + [(s.name, s.description) for s in named_datasets().values()]
    rows.append(("folder:PATH", "any folder laid out as PATH/<class>/<images> or PATH/{train,test}/<class>/<images>"))
    print(tabulate(rows, ["name", "description"]))
    return EXIT_OK


def _datasets(args):
    """Every dataset, available or missing (and why); the named ones are not loaded."""
    import urllib.parse

    from tabulate import tabulate

    from benchmark.data.catalog import availability, data_dirs, download_dir
    from benchmark.data import list_datasets, load_dataset, named_datasets

    dirs, origin = data_dirs(args.data_dir)
    rows, notes = [], []
    for name, _ in list_datasets():  # small enough to load for exact figures
        d = load_dataset(name)
        n, h, w, c = d.images.shape
        rows.append([name, "available", "embedded", len(d.classes), f"{n:,}", f"{h}x{w}x{c}", "all", d.licence])
    for spec in named_datasets().values():
        found = availability(spec.name, dirs, origin)
        source = found.where
        if found.status == "downloadable":
            host = urllib.parse.urlsplit(spec.downloads[0][1]).netloc
            source = f"download from {host}"
            notes.append(f"{spec.name}: not on disk; downloaded on first use "
                         f"(`run --datasets {spec.name}`), then kept in {download_dir()}")
        elif found.status == "missing":
            source = "-"
            notes.append(f"{spec.name}: {found.reason}")
        cap = f"{spec.max_per_class}/class" if spec.max_per_class else "all"
        rows.append([spec.name, found.status, source, spec.classes, spec.images, spec.image_size,
                     cap, spec.licence])
    print(tabulate(rows, ["name", "status", "source", "classes", "images", "image size",
                          "default sample", "licence"]))
    print(f"\ndata directories: {', '.join(map(str, dirs)) or 'none'} ({origin})")
    for note in notes:
        print(f"- {note}")
    return EXIT_OK


def _available_named(data_dir):
    """([names found on disk], {name: why it is not run}) of the named datasets, for --all."""
    from benchmark.data.catalog import availability, data_dirs
    from benchmark.data import named_datasets

    dirs, origin = data_dirs(data_dir)
    found, missing = [], {}
    for name in named_datasets():
        status = availability(name, dirs, origin)
        if status.status == "available":
            found.append(name)
        elif status.status == "downloadable":
            missing[name] = f"not downloaded yet: `run --datasets {name}` downloads it ({status.where})"
        else:
            missing[name] = status.reason
    return found, missing


def _split(value):
    return [part.strip() for part in value.split(",") if part.strip()] if value else []


def resolve_estimators(value):
    """Names from a comma-separated list of names and fnmatch patterns; UsageError if unknown."""
    from estimators import list_estimators
    from estimators.registry import unknown_name_message

    known = list_estimators()
    if not value:
        return known
    names = []
    for item in _split(value):
        matches = fnmatch.filter(known, item)
        if not matches:
            raise UsageError(unknown_name_message("estimator", item, known))
        names += [m for m in matches if m not in names]
    return names


def resolve_datasets(args):
    """([dataset names to run], {named dataset: why --all does not run it})."""
    from benchmark.data import FOLDER_PREFIX, check_dataset_name, list_datasets

    given = _split(args.datasets) + list(args.dataset or [])
    if args.all and not given:
        found, missing = _available_named(args.data_dir)
        return [name for name, _ in list_datasets()] + found, missing
    if not given:
        raise UsageError("choose datasets with --datasets NAME[,NAME...] or run them all with --all")
    names, seen = [], {}
    for name in given:
        check_dataset_name(name)
        identity, typed = name, name
        if name.startswith(FOLDER_PREFIX):  # folder:X, folder:X/ and folder:./X are one folder
            path = name[len(FOLDER_PREFIX):]
            name = FOLDER_PREFIX + os.path.normpath(path)
            identity = FOLDER_PREFIX + os.path.realpath(path)
        if identity in seen:
            print(f"note: {typed} is the same dataset as {seen[identity]}; it runs once",
                  file=sys.stderr)
            continue
        seen[identity] = name
        names.append(name)
    return names, {}


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
    if not args.scheduler and args.jobs != 1 and (os.cpu_count() or 1) > 1:
        from benchmark.execution.worker_pool import start_fork_server

        # the workers' libraries load on another core while this one starts
        start_fork_server(extra=["distributed"] if args.backend == "dask" else [])
    if args.backend == "dask" and not args.resume:
        from benchmark.execution.backends import make_backend

        # connect to the cluster (or start the local one) while the data loads
        threads = args.threads_per_cell or 1
        _check_thread_budget(args, threads)  # before a local cluster starts its workers
        n_jobs = args.jobs if args.jobs > 0 else max(1, (os.cpu_count() or 1) // threads)
        with make_backend("dask", n_jobs, args.scheduler) as backend:
            return _prepare_and_execute(args, argv, backend)
    return _prepare_and_execute(args, argv, None)


def _prepare_and_execute(args, argv, backend):
    from features.cache import default_cache_dir

    from benchmark.execution.backends import make_backend
    from benchmark.reporting.results import new_run_dir, prepare_run_dir
    from benchmark.execution.runner import RunConfig

    if args.resume:
        run_dir, config, argv = _resumed(args)
    else:
        datasets, unavailable = resolve_datasets(args)
        estimators = resolve_estimators(args.estimators)
        cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir() / "features")
        config = RunConfig(
            datasets, estimators, folds=args.folds, seed=args.seed, image_size=args.image_size,
            cache_dir=str(cache_dir) if cache_dir else None, protocol=args.protocol,
            repeats=args.repeats, max_per_class=args.max_per_class, full=args.full,
            data_dir=str(args.data_dir.expanduser().resolve()) if args.data_dir else None,
            unavailable=unavailable, folder_cache=not args.no_cache,
            locations={n: os.path.abspath(os.path.expanduser(n[len("folder:"):]))
                       for n in datasets if n.startswith("folder:")},
        )
        run_dir = args.out  # None: a new directory under results/, made once the options pass
    if args.threads_per_cell is not None or not args.resume:  # a resume keeps the run's own
        config.threads_per_cell = args.threads_per_cell or 1
    if args.cell_timeout is not None or not args.resume:
        config.cell_timeout = args.cell_timeout
    _check_thread_budget(args, config.threads_per_cell)
    config.n_jobs = args.jobs if args.jobs > 0 else max(1, (os.cpu_count() or 1) // config.threads_per_cell)
    run_dir = prepare_run_dir(run_dir if run_dir is not None else new_run_dir())
    with run_lock(run_dir):
        if backend is None:
            with make_backend(args.backend, config.n_jobs, args.scheduler) as backend:
                return _execute(config, run_dir, argv, args, backend)
        return _execute(config, run_dir, argv, args, backend)


# What a run's configuration is made of: given with --resume they are refused (the resumed
# run's own come from its run.json); otherwise those left out take these defaults.
CONFIG_DEFAULTS = {"folds": 5, "seed": 0, "protocol": "auto", "repeats": 3}
CONFIG_OPTIONS = ("folds", "seed", "protocol", "repeats", "image_size", "max_per_class", "full",
                  "data_dir")


def _check_run_options(args):
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
    if args.scheduler and args.backend != "dask":
        raise UsageError("--scheduler needs --backend dask")
    if args.data_dir is not None:  # as `datasets` does: a --data-dir that is not there is a usage error
        from benchmark.data.catalog import data_dirs

        data_dirs(args.data_dir)
    if args.resume and (args.datasets or args.dataset or args.all or args.estimators or args.out):
        raise UsageError("--resume takes the datasets, estimators and output directory from the "
                         "run's run.json; drop --all/--datasets/--estimators/--out")


def _check_thread_budget(args, threads):
    cores = os.cpu_count() or 1
    if threads > cores:
        raise UsageError(f"--threads-per-cell {threads} exceeds the {cores} cores")
    on_this_machine = args.backend == "local" or not args.scheduler  # or a local Dask cluster
    if on_this_machine and args.jobs > 0 and args.jobs * threads > cores:
        raise UsageError(f"--jobs {args.jobs} x --threads-per-cell {threads} threads exceed the "
                         f"{cores} cores; lower one of them")


def _resumed(args):
    """(run dir, RunConfig, command line) of the run to resume, from its run.json."""
    from benchmark.reporting.results import RUN_FILE, resolve_run_dir
    from benchmark.execution.runner import RunConfig

    run_dir = resolve_run_dir(args.resume)
    try:
        meta = json.loads((run_dir / RUN_FILE).read_text())
        config = RunConfig(**meta["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot resume {run_dir}: its {RUN_FILE} is unreadable ({exc}); run the "
                         "original command again with --out pointing at it") from None
    return run_dir, config, meta.get("command") or []


@contextmanager
def run_lock(run_dir):
    """Refuse a second run writing into the same directory at the same time."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(Path(run_dir) / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UsageError(f"another run is writing to {run_dir} right now; wait for it to finish "
                         "or choose another --out") from None
    try:
        yield
    finally:
        lock.release()


def _execute(config, run_dir, argv, args, backend):
    from benchmark.reporting.leaderboard import render
    from benchmark.reporting.report import write_report
    from benchmark.reporting.results import point_latest, write_run_json
    from benchmark.execution.runner import RunResult, run

    progress = Progress(run_dir, quiet=args.quiet)
    started = []

    def on_start(summaries, skipped, plan, pending, reused):
        started.append(RunResult(run_dir, config, [], summaries, skipped, plan))
        write_run_json(started[0], argv, "running", backend=args.backend)
        progress.start(pending, reused)

    try:
        result = run(config, run_dir, backend=backend, on_cell=progress.cell,
                     on_dataset=progress.dataset, on_start=on_start)
    except KeyboardInterrupt as exc:
        progress.close()
        code = exit_code(exc)
        if not started:  # nothing was planned or written yet: there is nothing to resume
            print("\ninterrupted before the first cell started; nothing to resume: run the same "
                  "command again", file=sys.stderr)
            return code
        write_run_json(started[0], argv, "interrupted", backend=args.backend)
        write_report(run_dir)
        finished = len(list(Path(run_dir).glob("cells/*/*/fold-*.json")))
        kept = (f"the {finished} finished cell(s) are kept in {run_dir}/cells" if finished
                else "no cell had finished yet")
        print(f"\ninterrupted: {kept}. Resume with:\n"
              f"  python -m benchmark run --resume {shlex.quote(str(run_dir))}", file=sys.stderr)
        return code
    progress.close()
    write_run_json(result, argv, "finished", backend=args.backend)
    # the workers, still running, draw the plots (a remote Dask cluster's cannot: they are
    # then drawn here)
    report = write_report(run_dir, n_jobs=config.n_jobs if args.backend == "local" else 1,
                          mapper=getattr(backend, "map_here", None))
    point_latest(run_dir)
    if len(report.summary):
        print(render(report.summary, report.overall))
    if result.reused or result.replaced:
        print(f"{result.reused} cell(s) reused from {run_dir}; {result.replaced} stored cell(s) no longer "
              f"matched this configuration and were moved to {run_dir}/replaced", file=sys.stderr)
    print(f"Report: {report.path}")
    for name, reason in config.unavailable.items():  # with the results: stderr is for progress and errors
        print(f"not run: {name}: {reason}")
    if result.failed_cells or result.skipped_datasets:
        print(f"{len(result.failed_cells)} failed cell(s), {len(result.skipped_datasets)} skipped "
              f"dataset(s): see the Problems section of {report.path}; `python -m benchmark run "
              f"--resume {shlex.quote(str(run_dir))}` retries the failed cells", file=sys.stderr)
        return EXIT_FAILURES
    return EXIT_OK


def _report(args):
    from benchmark.reporting.leaderboard import render
    from benchmark.reporting.report import write_report
    from benchmark.reporting.results import resolve_run_dir

    if args.jobs == 0 or args.jobs < -1:
        raise UsageError("--jobs must be a positive number of processes, or -1 for all cores")
    n_jobs = args.jobs if args.jobs > 0 else os.cpu_count() or 1
    report = write_report(resolve_run_dir(args.run), n_jobs=n_jobs)
    if len(report.summary):
        print(render(report.summary, report.overall))
    print(f"Report: {report.path}")
    for path, reason in report.unreadable:
        print(f"error: cannot read {path}: {reason}; the rest of the run is reported without it",
              file=sys.stderr)
    return EXIT_FAILURES if report.unreadable else EXIT_OK


def _compare(args):
    from tabulate import tabulate

    from benchmark.reporting.compare import compare_runs, comparison_table
    from benchmark.reporting.results import load_run, resolve_run_dir

    dirs = [resolve_run_dir(args.run_a), resolve_run_dir(args.run_b)]
    runs = [load_run(d) for d in dirs]
    unreadable = [(path, reason) for stored in runs for path, reason in stored.unreadable]
    for path, reason in unreadable:
        print(f"error: cannot read {path}: {reason}; compared without it", file=sys.stderr)
    frame = compare_runs(*runs, metric=args.metric)
    print(f"A: {dirs[0]}\nB: {dirs[1]}\nmetric: {args.metric}, mean over folds\n")
    if frame.empty:
        print("The two runs have no successful cells to compare.")
        return EXIT_FAILURES if unreadable else EXIT_OK
    rows, headers = comparison_table(frame)
    print(tabulate(rows, headers, disable_numparse=True))
    significant = int(frame["significant"].sum())
    print(f"\n{significant} of {int(frame['p_value'].notna().sum())} tested difference(s) significant.")
    return EXIT_FAILURES if unreadable else EXIT_OK
