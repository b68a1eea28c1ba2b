"""Errors the command line reports as one line instead of a traceback: the user's (exit code
2) and the machine's, a full disk or a file-size limit (exit code 1)."""

import errno
import os


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


# OSError numbers that say the machine has no room for a file, rather than that the path is wrong
NO_ROOM = {errno.ENOSPC: "disk full", errno.EFBIG: "file-size limit reached"}
if hasattr(errno, "EDQUOT"):
    NO_ROOM[errno.EDQUOT] = "disk quota exceeded"


def no_room(exc):
    """The OSError in `exc` or its causes that says a disk, a quota or the file-size limit is
    full (ENOSPC, EDQUOT, EFBIG), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def no_room_line(exc, where="the results", option="--out"):
    """One line for `exc` (an OSError of no_room): what was being written and what to free,
    e.g. "disk full writing results/x/cells/...: free space on /home or point --out elsewhere".
    `where` names what was written when the error does not; `option` moves it elsewhere."""
    path = exc.filename or where
    what = NO_ROOM[exc.errno]
    if exc.errno == errno.EFBIG:
        return (f"{what} writing {path} ({_file_size_limit()}): raise it (ulimit -f unlimited) "
                f"or point {option} elsewhere")
    return f"{what} writing {path}: free space on {mount_point(path)} or point {option} elsewhere"


def mount_point(path):
    """The mount point of the file system that holds `path` (or would hold it)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def _file_size_limit():
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return "the file-size limit"
    return "no file-size limit" if limit == resource.RLIM_INFINITY else f"ulimit -f: {limit:,} bytes"
