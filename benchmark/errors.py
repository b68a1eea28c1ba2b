"""Errors the command line reports as one line (exit code 2) instead of a traceback."""


class UsageError(Exception):
    """The user asked for something that cannot be done as asked; the message says how to fix it."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled as Ctrl-C; the exit code is 128 + the signal's number."""

    def __init__(self, signum):
        super().__init__(f"signal {signum}")
        self.signum = signum


def raise_terminated(signum, frame):
    """Signal handler: SIGTERM (a scheduler, `kill`, a closing terminal's SIGHUP) ends a run the
    way Ctrl-C does: finished cells kept, run.json marked interrupted, a resume hint."""
    raise Terminated(signum)


def exit_code(interrupt):
    """The exit code of a run ended by `interrupt` (a KeyboardInterrupt): 130 for Ctrl-C."""
    return 128 + getattr(interrupt, "signum", 2)
