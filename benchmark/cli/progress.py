"""What a run shows while it goes: a progress bar with an ETA, and run.log.

The runner reports through callbacks (it prints nothing); this turns them into a tqdm bar over
the cells to compute (on stderr, off with --quiet), one line per dataset and per failed cell on
stderr, and one log line per finished cell in `<run dir>/run.log`.
"""

import logging
import sys

from tqdm import tqdm

from benchmark.errors import no_room


class Progress:
    def __init__(self, store, quiet=False):
        """`store`: the run's benchmark.execution.store.RunStore (where run.log goes)."""
        self.quiet, self.bar = quiet, None
        self.log = logging.getLogger(f"benchmark.run.{id(self)}")
        self.log.propagate = False
        self.log.setLevel(logging.INFO)
        self.handler = _RunLog(store.log_file, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        self.log.addHandler(self.handler)

    def _print(self, text):
        (self.bar.write if self.bar is not None else print)(text, file=sys.stderr)

    def dataset(self, name, summary, skip_reason):
        from benchmark.reporting.leaderboard import describe_sampling

        if skip_reason:
            self._print(f"skipping dataset {name}: {skip_reason}")
            self.log.info("dataset %s skipped: %s", name, skip_reason)
            return
        line = (f"{name}: {summary['images']} images of {summary['image_size']}, "
                f"{len(summary['classes'])} classes; {describe_sampling(summary['sampling'])}")
        self.log.info("dataset %s", line)
        if not self.quiet:
            self._print(line)

    def start(self, pending, reused):
        self.log.info("start: %d cell(s) to compute, %d reused", pending, reused)
        if reused and not self.quiet:
            self._print(f"{reused} finished cell(s) reused; {pending} to compute")
        self.bar = tqdm(total=pending, unit="cell", disable=self.quiet or None, file=sys.stderr,
                        dynamic_ncols=True)

    def cell(self, cell):
        where = f"{cell.dataset} / {cell.estimator} / fold {cell.fold}"
        seconds = f"{cell.seconds:.2f} s" if cell.seconds is not None else "-"
        if cell.status == "ok":
            self.log.info("%s: macro-F1 %.4f accuracy %.4f in %s", where, cell.scores["f1_macro"],
                          cell.scores["accuracy"], seconds)
        else:
            self.log.info("%s: FAILED after %s: %s", where, seconds, cell.error)
            self._print(f"  {where}: FAILED {cell.error}")
        diagnostics = cell.diagnostics or {}
        for reason in diagnostics.get("reasons") or []:
            self.log.info("%s: training: %s", where, reason)
        for text in (diagnostics.get("warnings") or []) + (diagnostics.get("notices") or []):
            self.log.info("%s: warning: %s", where, text)
        if self.bar is not None:
            self.bar.set_postfix_str(f"{cell.dataset}/{cell.estimator}", refresh=False)
            self.bar.update()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.log.removeHandler(self.handler)
        self.handler.close()


class _RunLog(logging.FileHandler):
    """run.log's handler: a full disk (benchmark.errors.no_room) ends the run with its one
    line, as it would at the next cell's file; logging would print a traceback and go on."""

    def handleError(self, record):
        exc = no_room(sys.exc_info()[1])
        if exc is not None:
            exc.filename = exc.filename or self.baseFilename
            raise exc
        super().handleError(record)
