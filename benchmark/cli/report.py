"""`python -m benchmark report`: rebuild a run's report.md, plots and CSVs from its stored cells."""

import os
import sys

from benchmark.cli import EXIT_FAILURES, EXIT_OK
from benchmark.errors import UsageError


def add_parser(commands):
    report = commands.add_parser(
        "report", help="regenerate a run's report.md, plots and CSVs from its stored cells (no refitting)")
    report.add_argument("run", nargs="?", metavar="RUN",
                        help="run directory or run id under results/ (default: results/latest)")
    report.add_argument("--jobs", type=int, default=-1,
                        help="processes drawing the plots (default -1: all cores)")


def main(args):
    from benchmark.reporting.leaderboard import terminal_leaderboards
    from benchmark.reporting.report import write_report
    from benchmark.reporting.results import resolve_run_dir

    if args.jobs == 0 or args.jobs < -1:
        raise UsageError("--jobs must be a positive number of processes, or -1 for all cores")
    n_jobs = args.jobs if args.jobs > 0 else os.cpu_count() or 1
    report = write_report(resolve_run_dir(args.run), n_jobs=n_jobs)
    sys.stdout.write(terminal_leaderboards(report.analysis))
    print(f"Report: {report.path}")
    for path, reason in report.unreadable:
        print(f"error: cannot read {path}: {reason}; the rest of the run is reported without it",
              file=sys.stderr)
    return EXIT_FAILURES if report.unreadable else EXIT_OK


