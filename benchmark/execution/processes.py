"""Which processes run: for the checks (tests, benchmarks/fault_injection.py) that a run left
none behind, and for benchmark.execution.parent_death's watch on the run's process."""

import os
import sys


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
