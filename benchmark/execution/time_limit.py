"""A per-cell wall-clock limit that works in any thread: `with time_limit(seconds): ...`.

Written by hand because no maintained library offers it: `signal.alarm` (and libraries built on
it) works only in a process's main thread, but cells also run in Dask worker threads; the
`stopit` package that used the same technique is unmaintained. When the limit passes, a timer
thread asks the interpreter to raise `CellTimeout` in the cell's thread
(`PyThreadState_SetAsyncExc`). The exception arrives at the next Python bytecode the thread runs:
Keras steps, scikit-learn's Python loops and NumPy calls return to Python often, but one long
call into native code (a single huge BLAS call) finishes before the cell stops.
"""

import ctypes
import threading
from contextlib import contextmanager


class CellTimeout(Exception):
    """A cell ran longer than its time limit."""


def _raise_in(thread_id, exception):
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception) if exception else None)


@contextmanager
def time_limit(seconds):
    """Raise CellTimeout in this thread if the block runs longer than `seconds` (None: no limit)."""
    if not seconds:
        yield
        return
    thread_id, lock, state = threading.get_ident(), threading.Lock(), {"done": False, "fired": False}

    def fire():
        with lock:
            if not state["done"]:
                state["fired"] = True
                _raise_in(thread_id, CellTimeout)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except CellTimeout:
        raise CellTimeout(f"the cell ran longer than its time limit of {seconds:g} s (--cell-timeout)") from None
    finally:
        with lock:
            state["done"] = True
            timer.cancel()
            if state["fired"]:  # fired just as the block ended: drop the pending exception
                _raise_in(thread_id, None)
