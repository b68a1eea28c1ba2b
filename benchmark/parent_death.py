"""Imported by the fork server (benchmark.worker_pool.PRELOAD): no worker outlives its run.

A run killed with SIGKILL (or any death that skips its clean-up) left its loky workers running
for minutes, holding hundreds of MB, and with them Python's fork server: each worker keeps a
copy of the run's pipe to the server, so the server never sees that pipe close. So every
process the server forks watches the run's process (the server's parent, recorded when the
server imports this module) from a daemon thread, and exits as soon as that process is gone;
the server then exits by itself when its last worker has (end of file on its pipe). Workers
ignore SIGINT: the run's process handles Ctrl-C and stops them.
"""

import os
import signal
import sys
import threading
import time

RUN_PID = os.getppid()  # in the fork server: the process that started it
PERIOD = 1.0  # seconds between two looks


def alive(pid):
    """Whether process `pid` still runs (a zombie, dead but not yet reaped, does not)."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but is another user's
        pass
    return True


def descendants(pid, parents=None):
    """PIDs of every process below `pid`, from Linux's /proc (for checks that a run left none);
    `parents`, if given, is filled with pid -> ppid."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for child in children.get(parent, []):
            found.append(child)
            todo.append(child)
            if parents is not None:
                parents[child] = parent
    return found


def _watch(pid):
    while alive(pid):
        time.sleep(PERIOD)
    os._exit(1)


def _in_child():
    # Ctrl-C reaches every process of the terminal's group: the run's process handles it (it
    # stops the workers itself), so a worker ignores SIGINT instead of dying with a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch, args=(RUN_PID,), daemon=True, name="watch-run-process").start()


if hasattr(os, "register_at_fork") and RUN_PID != 1:
    os.register_at_fork(after_in_child=_in_child)
