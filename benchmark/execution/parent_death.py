"""Imported by the fork server (benchmark.execution.worker_pool.PRELOAD): no worker outlives its run.

A run killed with SIGKILL (or any death that skips its clean-up) left its loky workers running
for minutes, holding hundreds of MB, and with them Python's fork server: each worker keeps a
copy of the run's pipe to the server, so the server never sees that pipe close. So every
process the server forks watches the run's process (the server's parent, recorded when the
server imports this module) from a daemon thread, and exits as soon as that process is gone;
the server then exits by itself when its last worker has (end of file on its pipe). Workers
ignore SIGINT: the run's process handles Ctrl-C and stops them.

Only the fork server imports this module (it changes the signal handling of the process that
imports it); benchmark.execution.processes holds the process-listing helpers for everyone else.
"""

import os
import signal
import sys
import threading
import time

from benchmark.execution.processes import alive

# The process that started the fork server. From the environment it set, not os.getppid():
# killed while the server was still importing, the run's process would leave the server
# reparented to init by now, and its workers unwatched (they lived on with the server).
RUN_PID = int(os.environ.get("BENCHMARK_RUN_PID") or os.getppid())
PERIOD = 1.0  # seconds between two looks


def _watch(pid):
    while alive(pid):
        time.sleep(PERIOD)
    os._exit(1)


def _quiet_when_the_run_ended(kind, value, tb):
    """The fork server's (and its children's) hook for an uncaught exception: silent when the
    run's process has ended (or ends within seconds), as when a worker was still being
    started as an interrupted run exited - it failed to unpickle the pool's semaphores, which
    the exiting run had just removed, and printed a traceback after the run's last line.
    While the run lives, the error is shown as usual."""
    deadline = time.time() + 3
    while alive(RUN_PID) and time.time() < deadline:
        time.sleep(0.05)
    if alive(RUN_PID):
        sys.__excepthook__(kind, value, tb)


def _in_child():
    threading.Thread(target=_watch, args=(RUN_PID,), daemon=True, name="watch-run-process").start()


if hasattr(os, "register_at_fork") and RUN_PID != 1:
    os.register_at_fork(after_in_child=_in_child)
    # Ctrl-C reaches every process of the terminal's group: the run's process handles it (it
    # stops the workers itself), so a worker ignores SIGINT instead of dying with a traceback.
    # Set here, at import, not in _in_child: the fork server resets each child's handlers,
    # after the at-fork hooks, to those it found when its preloading was done (CPython's
    # multiprocessing.forkserver._serve_one), which undid a SIG_IGN set in the hook.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.excepthook = _quiet_when_the_run_ended
