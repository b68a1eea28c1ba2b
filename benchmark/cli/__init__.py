"""Command line: `python -m benchmark {run,report,compare,list,datasets} ...`.

One module per command (run, report, compare, listing: list and datasets), each with
`add_parser(commands)` and `main(args)`; `main(argv)` here parses and dispatches. The commands
parse, call the library (benchmark.execution, benchmark.reporting, benchmark.data) and print.
"""

import argparse
import sys

from benchmark.errors import UsageError, no_room, no_room_line

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2
DATA_DIR_HELP = ("where the named datasets (cifar10, mnist, ...) are looked for first: original "
                 "archives or image folders (default: $IMAGE_BENCHMARK_DATA, else [data] dir in "
                 "~/.config/image-benchmark/config.ini)")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as argparse does, but with a hint
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _commands():
    from benchmark.cli import compare, listing, report, run

    return {"run": run, "report": report, "compare": compare, "list": listing.ListCommand,
            "datasets": listing.DatasetsCommand}


def build_parser():
    parser = _Parser(
        prog="python -m benchmark",
        description="Benchmark image classifiers: classical models on handcrafted features "
        "vs convolutional networks, cross-validated on the same splits.",
    )
    from benchmark import __version__

    parser.add_argument("--version", action="version", version=f"image-benchmark {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in _commands().values():
        command.add_parser(commands)
    return parser


def main(argv=None):
    from benchmark.reporting.matplotlib_dir import use_writable_config_dir

    use_writable_config_dir()  # before matplotlib loads here or in a worker: no warning on stderr
    args = build_parser().parse_args(argv)
    args.argv = ["python -m benchmark", *(sys.argv[1:] if argv is None else argv)]
    try:
        return _commands()[args.command].main(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a full disk (or file-size limit) where a command did not expect it
        if no_room(exc) is None:
            raise
        print(f"error: {no_room_line(no_room(exc))}", file=sys.stderr)
        return EXIT_FAILURES
