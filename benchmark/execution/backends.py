"""Where cells run: local worker processes (joblib) or an existing Dask cluster.

A backend takes `(task, X, labels)` triples (benchmark.execution.cells.CellTask and the dataset's shared
arrays) and yields one finished Cell per task, in completion order; it never raises for a
cell's own failure. Both backends run the same `run_cell`, with the same thread count per cell,
so they give the same scores.
"""

import os
import tempfile
import threading
import warnings
from pathlib import Path

from benchmark.execution.cells import run_cell
from benchmark.errors import UsageError, failure_line
from benchmark.execution.worker_pool import parallel, retire_workers, start_fork_server

# joblib warns when a run stops reading the cells' generator early (a full disk, Ctrl-C) that
# the cells still running were cancelled: the run says what stopped it in its own line
warnings.filterwarnings("ignore", message=r"\d+ tasks (which were still being processed|have been "
                        r"successfully executed +but not used)", category=UserWarning)

WORKER_DIED = ("the worker process died while running this cell (killed, e.g. by the system "
               "when out of memory, or a crash in native code)")
SCHEDULER_TIMEOUT = 10  # seconds to reach a Dask scheduler before giving up


class LocalBackend:
    """`n_jobs` worker processes on this machine (joblib/loky; 1: in this process, unless
    `isolate`: then in one worker process, so a cell that kills its process fails alone).

    A worker that dies (kill -9, the out-of-memory killer, a segfault) breaks joblib's pool.
    The cells that were running then (each local cell keeps a marker file while it runs) are
    retried one at a time, each in a fresh single-worker pool, so the one that kills its worker
    again is marked failed and the others complete; every cell not started yet is resubmitted.

    With one worker and `isolate` (the command line's choice), the cells run one at a time in
    a single worker process: one that dies (os._exit, SIGKILL, a segfault) was running that
    cell alone, so the cell is marked failed at once and the next cell gets a fresh worker.
    Without `isolate` one worker means this process (the library's default: no pickling, a
    debugger reaches the cell), and a cell that kills its process ends the run.
    """

    name = "local"

    def __init__(self, n_jobs=1, scratch=None, isolate=False):
        """`scratch`: where the running cells' marker files and shared arrays go (the run
        directory's running/, see RunStore); None: a temporary directory of its own per run."""
        self.n_jobs = n_jobs
        self.scratch = scratch
        self.isolate = isolate
        self._warming = None

    @property
    def _in_process(self):
        return self.n_jobs == 1 and not self.isolate

    def __enter__(self):
        """Start the worker processes in the background, while the caller loads the data."""
        if not self._in_process:
            start_fork_server(cells_only=self.n_jobs == 1)
            self._warming = threading.Thread(target=_start_workers, args=(self.n_jobs,), daemon=True)
            self._warming.start()
        return self

    def __exit__(self, *exc):
        if self._warming is not None:
            self._warming.join()
        return False

    def _ready(self):
        """Wait for the workers started by __enter__ (if it was not called, the first parallel
        call starts them); replace them when code they may have imported changed since."""
        from features.code_identity import workers_outdated, workers_refreshed

        if not self._in_process:
            start_fork_server(cells_only=self.n_jobs == 1)  # idempotent; set before any call, so no
            # call restarts the workers
        if self._warming is not None:
            self._warming.join()
            self._warming = None
        if not self._in_process and workers_outdated():  # an edited or re-imported module
            retire_workers()
            start_fork_server(cells_only=self.n_jobs == 1)
            workers_refreshed()

    def run(self, work):
        """Yield each cell of `work` ([(CellTask, X, labels)]) as it finishes."""
        if self.scratch is not None:
            Path(self.scratch).mkdir(parents=True, exist_ok=True)
            yield from self._run(work, Path(self.scratch))
            return
        with tempfile.TemporaryDirectory(prefix="benchmark-cells-") as scratch:
            yield from self._run(work, Path(scratch))

    def _run(self, work, marker_dir):
        from joblib import delayed
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        self._ready()
        if not self._in_process:
            work = _memory_mapped(work, marker_dir / "arrays")
        if self.n_jobs == 1 and self.isolate:
            yield from _one_by_one(work)
            return
        pending = {task.key: (task, X, labels) for task, X, labels in work}
        for task, _, _ in pending.values():
            task.marker = str(marker_dir / f"{task.key}.running")
        blind = 0  # worker deaths in a row that no marker explains
        while pending:
            try:
                with parallel(self.n_jobs, return_as="generator_unordered") as cells:
                    for cell in cells(delayed(run_cell)(*item) for item in list(pending.values())):
                        del pending[cell.key]
                        blind = 0
                        yield cell
            except TerminatedWorkerError:
                suspects = [pending[p.stem] for p in marker_dir.glob("*.running") if p.stem in pending]
                if not suspects:  # a worker died before its cell's marker existed
                    blind += 1
                    if blind > MAX_BLIND_RETRIES:  # stop resubmitting: each cell alone, once
                        suspects = list(pending.values())
                for item in suspects:
                    yield self._alone(*item)
                    del pending[item[0].key]

    def map_here(self, calls):
        """An iterator over [f(*args) for f, args in calls], computed in the worker processes
        and already started (the caller can work meanwhile), or None with one worker (the
        caller then computes them itself, without pickling anything)."""
        from joblib import delayed

        if self.n_jobs == 1:  # (isolated or not: the datasets are prepared here)
            return None
        start_fork_server()  # as in _ready, without waiting for the warm-up
        return parallel(self.n_jobs, return_as="generator")(delayed(f)(*args) for f, args in calls)

    @staticmethod
    def _alone(task, X, labels):
        """Run one cell in its own fresh worker process: its death is then its own."""
        from joblib.externals.loky import get_reusable_executor
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        Path(task.marker).unlink(missing_ok=True)
        try:
            return get_reusable_executor(max_workers=1, reuse=False).submit(run_cell, task, X, labels).result()
        except TerminatedWorkerError:
            Path(task.marker).unlink(missing_ok=True)
            return task.failed(WORKER_DIED + "; it was retried alone and its worker died again")


MAX_BLIND_RETRIES = 2  # parallel retries after worker deaths no cell's marker explains
IDLE_WORKER_TIMEOUT = 300  # seconds an idle worker is kept (joblib's own default for loky)


def _one_by_one(work):
    """Run each cell of `work` in turn in one worker process (the local backend with one
    isolated worker). A cell whose worker dies is failed with WORKER_DIED and how it ended;
    the next cell gets a fresh worker. Interrupted (Ctrl-C, SIGTERM), the worker is killed."""
    from joblib.externals.loky.process_executor import BrokenProcessPool

    for task, X, labels in work:
        for attempt in (1, 2):
            executor = _single_worker()
            try:
                cell = executor.submit(run_cell, task, X, labels).result()
                break
            except BrokenProcessPool as exc:  # loky's TerminatedWorkerError among them
                # a pool broken before this cell (a worker an earlier run of this process left
                # dead) fails it too: a second try in a fresh worker tells that from a cell that
                # kills its worker itself, as the retry alone does with several workers
                cell = task.failed(f"{WORKER_DIED}{_how_it_ended(exc)}")
            except BaseException:
                executor.shutdown(wait=False, kill_workers=True)
                raise
        yield cell


def _single_worker():
    """The shared executor with one worker process (the same one from call to call, until it
    breaks or idles for IDLE_WORKER_TIMEOUT s), with the pool's memory-growth limit and no
    memory mapping, as benchmark.execution.worker_pool.parallel's. joblib's own factory, not
    loky's: joblib reuses the one shared executor, and failed on a plain loky one."""
    from joblib.executor import get_memmapping_executor

    from benchmark.execution.worker_pool import allow_memory_growth

    return get_memmapping_executor(1, timeout=IDLE_WORKER_TIMEOUT, initializer=allow_memory_growth,
                                   max_nbytes=None)


def _how_it_ended(exc):
    """", its exit: SIGKILL(-9)" from loky's message about a terminated worker, or ""."""
    import re

    found = re.search(r"exit codes of the workers are \{([^}]*)\}", str(exc))
    return f"; its exit: {found.group(1)}" if found else ""


def _memory_mapped(work, folder, min_bytes=1_000_000):
    """`work` with each array over `min_bytes` replaced by a read-only memory map of a copy in
    `folder`, made once per array: the workers then read the same pages instead of each cell
    receiving a pickled copy.

    Why not joblib's own memory mapping (max_nbytes): its clean-up counts references in a
    resource-tracker process that workers forked from the fork server do not share, which then
    prints KeyError tracebacks and leak warnings. A memory map made here is passed to the
    workers as a file name and offset, with no reference counting; the runner deletes `folder`.
    """
    import numpy as np

    mapped = {}

    def share(array):
        if isinstance(array, np.memmap) or array.nbytes <= min_bytes or array.dtype.hasobject:
            return array  # (an array of Python objects cannot be memory-mapped: it is pickled)
        if id(array) not in mapped:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{len(mapped)}.npy"
            np.save(path, array)
            mapped[id(array)] = (array, np.load(path, mmap_mode="r"))  # keeps `array` alive: ids stay unique
        return mapped[id(array)][1]

    return [(task, share(X), share(labels)) for task, X, labels in work]


def _warm_up(plots=True):
    """Import in a worker what every cell (and, locally, the report's plots) will need."""
    import sklearn.ensemble  # noqa: F401

    import estimators

    estimators.list_estimators()
    if plots:
        import matplotlib.figure  # noqa: F401
    return os.getpid()


def _start_workers(n_jobs):
    """Start joblib's worker processes and import the libraries in them (then kept for reuse).

    Best effort, in a background thread: a worker killed while warming up (a signal, the
    out-of-memory killer) is replaced when the cells start, so it is no error here; it
    printed a thread's traceback."""
    from joblib import delayed

    try:
        if n_jobs == 1:  # one isolated worker (joblib would run the warm-up in this process)
            _single_worker().submit(_warm_up, plots=False).result()
        else:
            parallel(n_jobs)(delayed(_warm_up)() for _ in range(max(1, n_jobs)))
    except Exception:  # the cells' own pool reports a failure that persists
        pass


class DaskBackend:
    """Cells as tasks on a Dask distributed cluster: `scheduler` ("tcp://host:port"), or a
    local cluster of `n_workers` single-threaded worker processes when it is None.

    Each distinct data array (a dataset's images or features, its labels) is scattered once,
    to every worker (broadcast: no worker is favoured for holding the data), and shared by all
    its cells; cells never carry the arrays themselves. Dask retries a task whose worker dies on another
    worker and gives up after `distributed.scheduler.allowed-failures` deaths (KilledWorker):
    that cell is then marked failed. The workers need this package installed (same version).
    """

    name = "dask"

    def __init__(self, scheduler=None, n_workers=1):
        self.scheduler, self.n_workers = scheduler, n_workers
        self._client = self._cluster = self._starting = self._error = None

    def __enter__(self):
        """Connect to the scheduler now (a wrong address fails before any data is loaded); start
        a local cluster, and import the libraries in the workers, in the background."""
        try:
            from dask.distributed import Client
        except ImportError:
            raise UsageError("--backend dask needs dask.distributed: pip install 'dask[distributed]'") from None
        if self.scheduler:
            try:
                self._client = Client(self.scheduler, timeout=SCHEDULER_TIMEOUT)
            except (OSError, TimeoutError, ValueError) as exc:
                raise UsageError(
                    f"no Dask scheduler answered at {self.scheduler} within {SCHEDULER_TIMEOUT} s "
                    f"({failure_line(exc)}); check the address, or start one with `dask scheduler`"
                ) from None
        self._starting = threading.Thread(target=self._start, daemon=True)
        self._starting.start()
        return self

    def _start(self):
        try:
            if self._client is None:
                import dask
                from dask.distributed import Client, LocalCluster

                # worker processes forked from the fork server, as the local backend's
                method = "forkserver" if start_fork_server(extra=["distributed"]) else "spawn"
                with dask.config.set({"distributed.worker.multiprocessing-method": method}):
                    self._cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1, processes=True,
                                                 dashboard_address=None, host="127.0.0.1")
                self._client = Client(self._cluster)
            self._client.run(_warm_up, plots=not self.scheduler)  # a local cluster draws the plots
        except Exception as exc:  # reported by the first use of the client
            self._error = exc

    @property
    def client(self):
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._error is not None:
            raise self._error
        return self._client

    def __exit__(self, *exc):
        if self._starting is not None:
            self._starting.join()
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        return False

    def map_here(self, calls):
        """An iterator over [f(*args) for f, args in calls], computed on the cluster and
        already started, if it runs on this machine (its workers then share this file
        system); else None: the caller computes them itself."""
        if self.scheduler:
            return None
        futures = [self.client.submit(f, *args, pure=False) for f, args in calls]
        return (future.result() for future in futures)

    def run(self, work):
        """Yield each cell of `work` ([(CellTask, X, labels)]) as it finishes."""
        from dask.distributed import as_completed

        scattered, futures, tasks = {}, [], {}
        for task, X, labels in work:
            for array in (X, labels):
                if id(array) not in scattered:  # once per array, not once per cell
                    scattered[id(array)] = (array, self.client.scatter(array, broadcast=True))
            future = self.client.submit(run_cell, task, scattered[id(X)][1], scattered[id(labels)][1],
                                        key=f"cell-{task.key}", pure=False)
            futures.append(future)
            tasks[future.key] = task
        try:
            for future in as_completed(futures):
                if future.status == "finished":
                    yield future.result()
                else:
                    exc = future.exception()
                    reason = WORKER_DIED if type(exc).__name__ == "KilledWorker" else failure_line(exc)
                    yield tasks[future.key].failed(reason)
        finally:
            self.client.cancel(futures)


def make_backend(name, n_jobs, scheduler=None, scratch=None, isolate=False):
    """The backend called `name`; `scheduler` is for Dask only (the command line checks that),
    `scratch` and `isolate` for the local one (see LocalBackend)."""
    if name == "dask":
        return DaskBackend(scheduler, n_workers=n_jobs)
    return LocalBackend(n_jobs, scratch, isolate)

