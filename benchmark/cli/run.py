"""`python -m benchmark run`: cross-validate estimators on datasets and write the leaderboards."""

import os
import shlex
import signal
import sys
import threading
from contextlib import contextmanager

from benchmark.cli import EXIT_FAILURES, EXIT_OK
from benchmark.cli.progress import Progress
from benchmark.errors import UsageError, exit_code, no_room, no_room_line, raise_terminated, received



def add_parser(commands):
    """The `run` parser: a flag for each option of benchmark.config.OPTIONS that has one, each
    taken as the text typed (None when not given), so the values are checked, and their
    errors worded, as the API's and the experiment file's are (`_options`)."""
    from benchmark.config import BY_NAME, OPTIONS

    run = commands.add_parser("run", help="cross-validate estimators on datasets and write leaderboards")
    groups = {}
    for option in OPTIONS:
        if not option.cli:
            continue
        where = run if option.group is None else groups.get(option.group) or groups.setdefault(
            option.group, run.add_argument_group(option.group))
        if option.kind == "flag":
            where.add_argument(option.cli, dest=option.name, action="store_true", default=None, help=option.help)
            continue
        action = "append" if option.kind in ("name", "assignments", "plugins") else "store"
        metavar = "{" + ",".join(option.choices) + "}" if option.choices else option.metavar
        where.add_argument(option.cli, dest=option.name, action=action, help=option.help,
                           metavar=metavar or option.name.upper())
    run.add_argument("experiment", nargs="?", metavar="EXPERIMENT.toml", help=BY_NAME["experiment"].help)


def main(args):
    return _run(args, args.argv)


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
    values, given, file_settings = _options(args)
    if not values["scheduler"]:
        from benchmark.execution.worker_pool import start_fork_server

        # the workers' libraries load on another core while this one starts (with --jobs 1
        # too: its cells run in one worker process, so a cell that kills it fails alone)
        start_fork_server(extra=["distributed"] if values["backend"] == "dask" else [],
                          cells_only=values["n_jobs"] == 1 and values["backend"] == "local")
    if values["backend"] == "dask" and not values["resume"]:
        from benchmark.execution.backends import make_backend

        # connect to the cluster (or start the local one) while the data loads
        threads = values["threads_per_cell"]
        _check_thread_budget(values, threads)  # before a local cluster starts its workers
        with make_backend("dask", _worker_count(values, threads), values["scheduler"]) as backend:
            return _prepare_and_execute(values, given, file_settings, argv, backend)
    return _prepare_and_execute(values, given, file_settings, argv, None)


def _worker_count(values, threads_per_cell):
    """--jobs, or by default as many cells at a time as the cores hold at their threads each."""
    jobs = values["n_jobs"]
    return jobs if jobs > 0 else max(1, (os.cpu_count() or 1) // threads_per_cell)


def _prepare_and_execute(values, given, file_settings, argv, backend):
    from benchmark.api import build_config, execute
    from benchmark.config import BY_NAME, OVERRIDES, OPTIONS

    if values["resume"]:
        run_dir, config, argv = _resumed(values["resume"])
        overridden = {o.name for o in OPTIONS if o.on_resume == OVERRIDES and o.name in given}
        for name in overridden & {o.name for o in OPTIONS if o.record}:  # a resume keeps the run's own
            setattr(config, name, values[name])  # unless given again
        if overridden & {"cache_dir", "no_cache"}:
            from benchmark.api import cache_places

            config.cache_dir, config.folder_cache = cache_places(values["cache_dir"], values["no_cache"])
    else:
        options = {k: v for k, v in values.items() if k in BY_NAME and k not in ("datasets", "dataset", "all")}
        config, notes = build_config((values["datasets"] or []) + (values["dataset"] or []),
                                     all_datasets=bool(values["all"]), file_settings=file_settings, **options)
        for note in notes:
            print(f"{'warning' if isinstance(note, Warning) else 'note'}: {note}", file=sys.stderr)
        run_dir = values["out"]  # None: a new directory under results/, made once the options pass
    _check_thread_budget(values, config.threads_per_cell)
    _turn_off_unwritable_caches(config)
    config.n_jobs = _worker_count(values, config.threads_per_cell)
    if received:  # a Ctrl-C that a library swallowed while it was being imported (seen on a
        raise received[-1]  # loaded machine): stop now, before any cell, not after the whole run
    with execute(config, run_dir, backend=values["backend"], scheduler=values["scheduler"],
                 connected=backend, isolate=True) as execution:
        return _execute(execution, argv, values["quiet"])


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


def _options(args):
    """({option name: value}, {names given on the command line}, an experiment file's
    {estimator: {param: value}}) of the `run` command: every option checked by
    benchmark.config (UsageError, one line naming the flag), the experiment file's filled in
    where the command line left them, the defaults for the rest."""
    from benchmark.config import BY_NAME, OPTIONS, REFUSED, check_options, from_text, with_defaults

    typed = {o.name: getattr(args, o.name) for o in OPTIONS if o.cli and getattr(args, o.name) is not None}
    given = check_options({name: from_text(BY_NAME[name], value) if isinstance(value, str) else value
                           for name, value in typed.items()}, lambda option: option.cli)
    values, file_settings = dict(given), None
    if args.resume:
        if args.experiment or "assignments" in given:
            raise UsageError("--resume continues the run with its own configuration (run.json); drop "
                             f"{'the experiment file' if args.experiment else '--set'}, or run the command "
                             "again with it and the same --out (cells that still match are reused)")
        if given.keys() & {"datasets", "dataset", "all", "estimators", "out"}:
            raise UsageError("--resume takes the datasets, estimators and output directory from the "
                             "run's run.json; drop --all/--datasets/--estimators/--out")
        refused = [o.cli for o in OPTIONS if o.on_resume == REFUSED and o.name in given]
        if refused:
            raise UsageError(f"--resume continues the run with its own configuration (run.json); "
                             f"drop {', '.join(refused)}, or run the command again with them and the same "
                             f"--out (cells that still match are reused)")
    if args.experiment:
        from benchmark.cli.experiment import merge_experiment

        values, file_settings, notes = merge_experiment(given, typed, args.experiment)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        values["experiment"] = args.experiment
    values = with_defaults(values, cli=True)
    _check_run_options(values)
    return values, set(given), file_settings


def _check_run_options(values):
    """The checks that need more than one option, or the machine: before anything starts."""
    if values["keras_backend"] is not None:  # in the environment before the workers' server starts
        from estimators.keras_backend import check_backend

        try:
            os.environ["KERAS_BACKEND"] = check_backend(values["keras_backend"])
        except ValueError as exc:
            raise UsageError(f"--keras-backend: {exc}") from None
    if values["weights_dir"] is not None:  # the same: before the workers' server starts
        from benchmark.api import use_weights_dir

        use_weights_dir(values["weights_dir"])
    from benchmark.data.groups import check_grouping  # the datasets: in build_config, once known

    check_grouping(values["groups"], values["groups_file"], values["groups_unmatched"])
    if values["scheduler"] and values["backend"] != "dask":
        raise UsageError("--scheduler needs --backend dask")
    if values["data_dir"] is not None:  # as `datasets` does: a --data-dir that is not there is a usage error
        from benchmark.data.catalog import data_dirs

        data_dirs(values["data_dir"])
    if values["resume"]:  # after every check of the arguments themselves: this one reads the run
        _resume_environment(values["resume"])


def _check_thread_budget(values, threads):
    cores = os.cpu_count() or 1
    if threads > cores:
        raise UsageError(f"--threads-per-cell {threads} exceeds the {cores} cores")
    on_this_machine = values["backend"] == "local" or not values["scheduler"]  # or a local Dask cluster
    jobs = values["n_jobs"]
    if on_this_machine and jobs > 0 and jobs * threads > cores:
        raise UsageError(f"--jobs {jobs} x --threads-per-cell {threads} threads exceed the "
                         f"{cores} cores; lower one of them")


def _resume_environment(resume):
    """A resumed run's CNNs run on the backend it recorded (their cells' keys name it), whatever
    KERAS_BACKEND says now, and its pretrained networks' weights are looked for in the
    --weights-dir it recorded: set in the environment before the workers' server starts, so a
    stray value is not one error per CNN cell. UsageError when that backend is not installed."""
    from estimators.keras_backend import check_backend
    from estimators.registry import KERAS_FAMILIES, estimator_family

    from benchmark.api import use_weights_dir

    _, config, _ = _resumed(resume)
    if config.weights_dir is not None:
        use_weights_dir(config.weights_dir)
    if config.keras_backend is None or not any(estimator_family(e) in KERAS_FAMILIES for e in config.estimators):
        return
    try:
        os.environ["KERAS_BACKEND"] = check_backend(config.keras_backend)
    except ValueError as exc:
        raise UsageError(f"cannot resume: its CNNs ran on the {config.keras_backend} backend: {exc}") from None


def _resumed(resume):
    """(run directory, RunConfig, command line) of the run to resume, from its run.json; its
    plug-ins loaded again, so its estimators are known."""
    from benchmark.config import config_from_record
    from benchmark.execution.store import RUN_FILE, RunStore
    from estimators.registry import load_plugins

    store = RunStore.find(resume)
    try:
        meta = store.read_meta()
        config = config_from_record(meta["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot resume {store.path}: its {RUN_FILE} is unreadable ({exc}); run the "
                         "original command again with --out pointing at it") from None
    try:
        load_plugins(config.plugins)
    except ValueError as exc:
        raise UsageError(f"cannot resume {store.path}: {exc}") from None
    return store.path, config, meta.get("command") or []


def _execute(execution, argv, quiet):
    """Run the cells with progress on stderr, write the report and print the leaderboards; the
    exit code. An interrupt or a full disk ends it in one message that says what was kept and
    how to resume."""
    from benchmark.reporting.leaderboard import terminal_leaderboards
    from benchmark.reporting.report import write_report

    store, config = execution.store, execution.config
    run_dir = store.path
    progress = Progress(store, quiet=quiet)

    def on_start(summaries, skipped, plan, pending, reused):
        progress.start(pending, reused)

    try:  # the runner writes run.json: running, then finished or interrupted
        result = execution.run(argv, on_cell=progress.cell, on_dataset=progress.dataset, on_start=on_start)
    except KeyboardInterrupt as exc:
        progress.close()
        code = exit_code(exc)
        if not execution.started:  # nothing was planned or written yet: there is nothing to resume
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
    try:
        report = execution.report()
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
    for name, reason in {**config.unavailable, **config.unavailable_estimators}.items():
        print(f"not run: {name}: {reason}")  # with the results: stderr is for progress and errors
    if result.failed_cells or result.skipped_datasets:
        # --resume computes failed cells again; a skipped dataset stays skipped until fixed
        retry = (f"; `python -m benchmark run --resume {shlex.quote(str(run_dir))}` retries the failed cells"
                 if result.failed_cells else "")
        print(f"{len(result.failed_cells)} failed cell(s), {len(result.skipped_datasets)} skipped "
              f"dataset(s): see the Problems section of {report.path}{retry}", file=sys.stderr)
        return EXIT_FAILURES
    return EXIT_OK


