"""Errors the command line reports as one line (exit code 2) instead of a traceback."""


def failure_line(exc):
    """An exception as one line, "Type: first line of its message", for cells, logs and reports."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


class UsageError(Exception):
    """The user asked for something that cannot be done as asked; the message says how to fix it."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled as Ctrl-C; the exit code is 128 + the signal's number."""

    def __init__(self, signum):
        super().__init__(f"signal {signum}")
        self.signum = signum


# The interrupts this process received (KeyboardInterrupt or Terminated), for `python -m
# benchmark` to exit with their code even where a library turned one into another exception
received = []


def raise_interrupted(signum, frame):
    """SIGINT handler: Python's own (a KeyboardInterrupt), and the interrupt is remembered."""
    received.append(KeyboardInterrupt())
    raise received[-1]


def raise_terminated(signum, frame):
    """Signal handler: SIGTERM (a scheduler, `kill`, a closing terminal's SIGHUP) ends a run the
    way Ctrl-C does: finished cells kept, run.json marked interrupted, a resume hint."""
    received.append(Terminated(signum))
    raise received[-1]


def exit_after_interrupt(code):
    """End the process with `code` (130, 143) after its exit handlers ran.

    Not `raise SystemExit(code)`: CPython 3.11 then dies by SIGINT instead (exit -2) whenever
    the interrupt had passed through a string `exec()` (scipy's array-API shim imports numpy
    that way), even though the interrupt was caught: its run_eval_code_obj sets the flag
    _Py_UnhandledKeyboardInterrupt, which Py_RunMain checks last. One in six Ctrl-C during
    the imports exited -2. What Python's exit does before it ends runs here too, in its order:
    threading's shutdown (the executors' exit hooks, which stop their workers, then the
    non-daemon threads), then the exit handlers (logging, multiprocessing's join of its
    children). Without the first, multiprocessing waited forever on workers nobody had stopped.
    """
    import atexit
    import os
    import sys
    import threading

    threading._shutdown()  # as Py_FinalizeEx does first (wait_for_thread_shutdown)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def exit_code(interrupt):
    """The exit code of a run ended by `interrupt` (a KeyboardInterrupt): 130 for Ctrl-C."""
    return 128 + getattr(interrupt, "signum", 2)
