"""Command line: `python -m benchmark {run,list} ...`. Parses, calls the runner, prints."""

import argparse
import fnmatch
import sys
from pathlib import Path

from tabulate import tabulate

from .errors import UsageError

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as argparse does, but with a hint
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser():
    parser = _Parser(
        prog="python -m benchmark",
        description="Benchmark image classifiers: classical models on handcrafted features "
        "vs convolutional networks, cross-validated on the same splits.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="cross-validate estimators on datasets and write leaderboards")
    run.add_argument("--all", action="store_true",
                     help="every embedded dataset and (unless --estimators is given) every estimator")
    run.add_argument("--datasets", help="comma-separated dataset names, or folder:PATH for an image folder")
    run.add_argument("--estimators", help="comma-separated estimator names or patterns (e.g. 'knn-*'); default: all")
    run.add_argument("--folds", type=int, default=5, help="stratified folds (default 5)")
    run.add_argument("--seed", type=int, default=0, help="seed of the splits and estimators (default 0)")
    run.add_argument("--jobs", type=int, default=-1,
                     help="worker processes for the cells (default -1: all cores); scores do not depend on it")
    run.add_argument("--out", type=Path,
                     help="directory for this run's results (default results/<run-id>)")
    run.add_argument("--image-size", type=int,
                     help="resize folder images to SIZE x SIZE (default: their most common size, at most 64)")
    run.add_argument("--cache-dir", type=Path,
                     help="where computed features are kept between runs (default ~/.cache/image-benchmark)")
    run.add_argument("--no-cache", action="store_true", help="do not read or write the on-disk feature cache")
    run.add_argument("--quiet", action="store_true", help="print only the leaderboards")

    commands.add_parser("list", help="list the registered estimators and the datasets")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            return _list()
        return _run(args, sys.argv if argv is None else ["python -m benchmark", *argv])
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _list():
    from estimators import estimator_spec, list_estimators

    from .datasets import list_datasets

    specs = [estimator_spec(n) for n in list_estimators()]
    print("Estimators")
    print(tabulate([[s.name, s.family, s.description] for s in specs], ["name", "family", "description"]))
    print("\nDatasets")
    rows = list_datasets() + [("folder:PATH", "any folder laid out as PATH/<class>/<images>")]
    print(tabulate(rows, ["name", "description"]))
    return EXIT_OK


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
    from .datasets import check_dataset_name, list_datasets

    if args.all and not args.datasets:
        return [name for name, _ in list_datasets()]
    if not args.datasets:
        raise UsageError("choose datasets with --datasets NAME[,NAME...] or run them all with --all")
    names = _split(args.datasets)
    for name in names:
        check_dataset_name(name)
    return names


def _run(args, argv):
    from .results import new_run_id, prepare_run_dir, write_outputs
    from .runner import RunConfig, run
    from features.cache import default_cache_dir

    if args.folds < 2:
        raise UsageError(f"--folds must be at least 2; got {args.folds}")
    if args.jobs == 0:
        raise UsageError("--jobs must be a positive number of processes, or -1 for all cores")
    if args.image_size is not None and args.image_size < 1:
        raise UsageError(f"--image-size must be a positive number of pixels; got {args.image_size}")
    datasets = resolve_datasets(args)
    estimators = resolve_estimators(args.estimators)
    run_dir = prepare_run_dir(args.out or Path("results") / new_run_id())
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir() / "features")
    config = RunConfig(datasets, estimators, folds=args.folds, seed=args.seed,
                       image_size=args.image_size, n_jobs=args.jobs, cache_dir=str(cache_dir) if cache_dir else None)

    def on_dataset(name, summary, skip_reason):
        if skip_reason:
            print(f"skipping dataset {name}: {skip_reason}", file=sys.stderr)
        elif not args.quiet:
            print(f"{name}: {summary['images']} images of {summary['image_size']}, "
                  f"{len(summary['classes'])} classes", file=sys.stderr)

    def on_cell(cell):
        if cell.status != "ok":
            print(f"  {cell.dataset} / {cell.estimator} / fold {cell.fold}: FAILED {cell.error}",
                  file=sys.stderr)
        elif not args.quiet:
            print(f"  {cell.dataset:10s} {cell.estimator:26s} fold {cell.fold}  macro-F1 {cell.scores['f1_macro']:.3f}  "
                  f"fit {cell.fit_seconds:.2f}s", file=sys.stderr)

    try:
        result = run(config, run_dir, on_cell=on_cell, on_dataset=on_dataset)
    except KeyboardInterrupt:
        print(f"\ninterrupted; the finished cells are in {run_dir}/cells", file=sys.stderr)
        return EXIT_INTERRUPTED
    summary, overall = write_outputs(result, argv)

    from .leaderboard import render

    if len(summary):
        print(render(summary, overall))
    print(f"Results: {run_dir}/leaderboard.md")
    problems = len(result.failed_cells) + len(result.skipped_datasets)
    if problems:
        print(f"{len(result.failed_cells)} failed cell(s), {len(result.skipped_datasets)} skipped "
              f"dataset(s): see the Problems section of {run_dir}/leaderboard.md", file=sys.stderr)
        return EXIT_FAILURES
    return EXIT_OK
