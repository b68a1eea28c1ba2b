"""`python -m benchmark compare`: per (dataset, estimator), the score difference of two runs."""

import sys

from benchmark.cli import EXIT_FAILURES, EXIT_OK


def add_parser(commands):
    from benchmark.execution.metrics import METRICS

    compare = commands.add_parser(
        "compare", help="per (dataset, estimator): the score difference between two runs and whether it is significant")
    compare.add_argument("run_a", metavar="RUN_A", help="run directory or run id under results/")
    compare.add_argument("run_b", metavar="RUN_B", help="run directory or run id under results/")
    compare.add_argument("--metric", default="f1_macro", choices=list(METRICS),
                         help="score to compare (default f1_macro)")



def main(args):
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
