"""Imported last by the fork server (see benchmark.execution.worker_pool.PRELOAD), never by the main process.

Importing it freezes the garbage collector's view of everything the server has imported, as
the Python documentation advises before forking (`gc.freeze`): the worker processes forked
from the server then neither copy those pages by collecting them nor spend 0.25 s collecting
them again when they exit. The server itself exits as fast (the caller of `python -m
benchmark`, reading its output, waits for it to close that output).
"""

import gc

gc.freeze()
