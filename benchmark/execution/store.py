"""The one owner of a run directory's layout: every other module asks a `RunStore` for paths.

    results/
      latest -> <run id>          the newest run under results/ (never a user's own `latest`)
      <run id>/
        run.json                  what was run and where, and its status (written by the runner)
        run.log                   one line per finished cell (benchmark.cli.progress)
        .lock                     held by the one process writing the run
        cells/<dataset>/<estimator>/fold-<k>.json   each cell, written atomically as it finishes
        cells/<dataset>/<estimator>/size-<n>/fold-<k>.json   run --train-sizes: fitted on <= n per class
        cells/<dataset>/<estimator>/fold-<k>.proba.npy   its test rows' probabilities (float32,
                                  n_test x classes), when the estimator offers predict_proba;
                                  written before the JSON, so a JSON naming one implies it
        running/                  markers and shared arrays of the running cells (temporary)
        replaced/<time>/          stored cells of an earlier configuration, set aside
        report.md, scores.csv, summary.csv, history.csv, per_class.csv, plots/   derived from run.json and
                                  cells/ (benchmark.reporting.report), rewritten at will

A run writes only into a new or empty folder, or a run directory of its own, so it never
overwrites or deletes a user's files. Temporary files (running/, the write probe, half-written
files) are removed on every exit path: Ctrl-C, SIGTERM, an exception, a killed worker.
"""

import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from features.cache import atomic_write

from benchmark.errors import UsageError
from benchmark.execution.cell_record import cell_record, probability_problem, read_cell, slug

RUN_FILE = "run.json"
LOG_FILE = "run.log"
LOCK_FILE = ".lock"
CELLS = "cells"
RUNNING = "running"
REPLACED = "replaced"
LATEST = "latest"
REPORT_FILE = "report.md"
PLOTS = "plots"
PROBA_SUFFIX = ".proba.npy"  # fold-<k>.proba.npy beside fold-<k>.json
NEAR_DUPLICATES = "near-duplicates"  # one CSV per dataset: every near-duplicate pair
WRITE_PROBE = ".write-test"
# What a run directory holds before its run.json is written (a run stopped at its start)
EARLY_RUN_FILES = {LOG_FILE, LOCK_FILE, CELLS, RUNNING, WRITE_PROBE, NEAR_DUPLICATES}


def is_run_directory(path):
    """Whether `path` is a run directory of this tool: its run.json beside a cells/ folder (a
    dataset folder that holds one must not read its plots as images)."""
    path = Path(path)
    return (path / RUN_FILE).is_file() and (path / CELLS).is_dir()


def is_output(run_dir, folder):
    """Whether `folder` is output of this tool that an image folder must leave out: a run
    directory, or `run_dir` (this run's, before its run.json is written). The runner gives
    the loaders `functools.partial(is_output, run_dir)`."""
    return is_run_directory(folder) or (run_dir is not None and Path(folder).resolve() == Path(run_dir).resolve())


def new_run_id():
    return time.strftime("%Y%m%d-%H%M%S")


class RunStore:
    """A run directory at `path` (which need not exist yet)."""

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self):
        return f"RunStore({str(self.path)!r})"

    def __fspath__(self):
        return str(self.path)

    # ---- creating and checking -------------------------------------------------------------

    @classmethod
    def new(cls, results_root="results"):
        """A new directory `results_root/<run id>`; a run started in the same second as another
        gets the id with a suffix (-2, -3, ...). Made atomically, so two runs never share it."""
        base = new_run_id()
        for n in range(1, 1000):
            path = Path(results_root) / (base if n == 1 else f"{base}-{n}")
            try:
                path.mkdir(parents=True, exist_ok=False)
                return cls(path)
            except FileExistsError:
                continue
            except OSError:
                return cls(path)  # unwritable: prepare() says so in one line
        raise UsageError(f"cannot find a free run directory under {results_root}; choose one with --out")

    def prepare(self):
        """Create the directory and check it can be written; UsageError if not, or if it is an
        existing folder of something else (a run writes only into a new or empty folder, or a
        run directory of its own: one with run.json, or one stopped before writing it)."""
        if self.path.is_dir() and not self.run_file.is_file():
            foreign = sorted(p.name for p in self.path.iterdir() if p.name not in EARLY_RUN_FILES)
            if foreign:
                raise UsageError(
                    f"{str(self.path)!r} already holds files that are not a benchmark run (e.g. "
                    f"{foreign[0]!r}); choose a new or empty directory with --out")
        probe = self.path / WRITE_PROBE
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise UsageError(f"cannot write results to {str(self.path)!r} ({reason}); choose another "
                             "directory with --out") from None
        return self

    def refuse_other_run(self, doing):
        """UsageError when this directory already holds a run (run.json, or cells/ with cells):
        `doing` there would mix two runs' cells in one report."""
        cells = sorted(self.cells_dir.rglob("fold-*.json")) if self.cells_dir.is_dir() else []
        if not self.run_file.is_file() and not cells:
            return
        try:
            found = self.read_meta().get("run_id") or self.path.name
        except (OSError, ValueError):
            found = self.path.name
        raise UsageError(f"{str(self.path)!r} already holds run {found!r} ({len(cells)} cell(s)); "
                         f"{doing} in a new or empty directory, or remove that run first")

    @classmethod
    def find(cls, run, results_root="results"):
        """The run directory named by a path or a run id under `results_root` (default: the latest
        run); UsageError when there is none."""
        candidates = [Path(run)] if run else []
        candidates += [Path(results_root) / (run or LATEST)]
        for path in candidates:
            store = cls(path)
            if store.run_file.exists() or store.cells_dir.is_dir():
                return store
        shown = run or f"{results_root}/{LATEST}"
        raise UsageError(f"{shown!r} is not a run directory (no {RUN_FILE} or {CELLS}/ in it); give a "
                         f"path like results/<run-id> or a run id from {results_root}/")

    # ---- paths -----------------------------------------------------------------------------

    @property
    def run_file(self):
        return self.path / RUN_FILE

    @property
    def log_file(self):
        return self.path / LOG_FILE

    @property
    def cells_dir(self):
        return self.path / CELLS

    @property
    def running_dir(self):
        # absolute: worker processes forked from a server started in another working directory
        # (a notebook's os.chdir, a test's) would put a relative one elsewhere
        return self.path.absolute() / RUNNING

    @property
    def report_file(self):
        return self.path / REPORT_FILE

    @property
    def plots_dir(self):
        return self.path / PLOTS

    def output(self, name):
        """A derived file of the report (scores.csv, summary.csv, ...)."""
        return self.path / name

    def save_near_duplicates(self, dataset, rows, dropped=()):
        """Write `dataset`'s near-duplicate pairs (benchmark.data.near_duplicates.describe's rows,
        kind "pair": near-duplicates among the images the run used) and, with --dedupe, the
        images it dropped (`dropped`: describe_dedupe's rows, kind "dropped" or
        "dropped-conflict", image_a the dropped image, image_b the one kept) to
        near-duplicates/<dataset>.csv; return its path relative to the run directory."""
        import csv
        import io

        relative = Path(NEAR_DUPLICATES) / f"{slug(dataset)}.csv"
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["kind", "image_a", "image_b", "label_a", "label_b", "similarity", "action"])
        writer.writerows(("pair", *row, "") for row in rows)
        writer.writerows(dropped)
        (self.path / relative).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path / relative, lambda f: f.write(text.getvalue().encode()))
        return relative.as_posix()

    def cell_path(self, dataset, estimator, fold, train_size=None):
        """Where a cell lives: cells/<dataset>/<estimator>/fold-<k>.json, or, for a cell of
        `run --train-sizes` fitted on at most N images per class, .../size-<N>/fold-<k>.json."""
        folder = self.cells_dir / slug(dataset) / slug(estimator)
        if train_size is not None:
            folder = folder / f"size-{train_size}"
        return folder / f"fold-{fold}.json"

    def proba_path(self, dataset, estimator, fold, train_size=None):
        """Where the cell's probabilities are stored (whether or not it has any)."""
        return _proba_beside(self.cell_path(dataset, estimator, fold, train_size))

    def cell_files(self):
        return sorted(self.cells_dir.glob("*/*/fold-*.json")) + sorted(self.cells_dir.glob("*/*/size-*/fold-*.json"))

    # ---- run.json --------------------------------------------------------------------------

    def write_meta(self, meta):
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.run_file, lambda f: f.write(json.dumps(meta, indent=2).encode()))

    def set_status(self, status, meta=None):
        """Make run.json say `status` ("crashed", ...): `meta` (default: the run.json on disk)
        with that status, written anew; return whether run.json says it now. On a disk too full
        for a new file, the status written in place over the old one, when it is no longer
        ("running" and "finished" both take "crashed"): a run is never left "running", nor
        "finished" without its report, for want of room for a copy of run.json."""
        try:
            meta = dict(meta if meta is not None else self.read_meta(), status=status)
            self.write_meta(meta)
            return True
        except (OSError, ValueError):
            pass
        try:
            with open(self.run_file, "r+b") as f:
                text = f.read()
                old = json.loads(text)["status"]
                before, after = f'"status": {json.dumps(old)}'.encode(), f'"status": {json.dumps(status)}'.encode()
                at = text.find(before)
                if at < 0 or len(after) > len(before):
                    return False
                f.seek(at)
                f.write(after.ljust(len(before)))  # JSON allows the spaces after the value
                f.flush()
                os.fsync(f.fileno())
            return True
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def read_meta(self):
        """run.json as a dict; FileNotFoundError, or ValueError when it is not a JSON object."""
        meta = json.loads(self.run_file.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        return meta

    # ---- cells -----------------------------------------------------------------------------

    def save_cell(self, cell):
        """Write the cell: its probabilities first (when it holds them), then its JSON, each
        atomically, so a JSON that names a probabilities file is never without it.

        A cell read back from this store and saved again keeps its probabilities file; one
        without probabilities removes a stale file an earlier cell left in its place."""
        path = self.cell_path(cell.dataset, cell.estimator, cell.fold, cell.train_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = cell_record(cell)
        proba = _proba_beside(path)
        if cell.probabilities is not None:
            array = np.asarray(cell.probabilities, dtype=np.float32)
            atomic_write(proba, lambda f: np.save(f, array, allow_pickle=False))
            record["proba_file"] = proba.name
        elif cell.proba_file is not None and proba.is_file():
            record["proba_file"] = proba.name  # its own file, already here
        else:
            proba.unlink(missing_ok=True)
            record["proba_file"] = record["proba_classes"] = None
        atomic_write(path, lambda f: f.write(json.dumps(record).encode()))

    def load_probabilities(self, cell):
        """The probabilities of a stored cell as float64 (rows: its test rows, columns: its
        `proba_classes`), None when it has none; ValueError or OSError, with the reason, when
        the file is missing or holds something else (see cell_record.probability_problem). Read
        only when asked: reading the cells themselves never opens these files."""
        if cell.proba_file is None:
            return None
        path = self.cell_path(cell.dataset, cell.estimator, cell.fold, cell.train_size).parent / cell.proba_file
        array = np.load(path, allow_pickle=False)
        problem = probability_problem(array, cell)
        if problem:
            raise ValueError(problem)
        return array.astype(np.float64)

    def stored_cells(self):
        """({(dataset, estimator, fold, train_size): Cell} of the valid cells in their own place,
        [every cell file]); a corrupt file or one in the wrong place is only in the list."""
        by_cell, paths = {}, self.cell_files()
        for path in paths:
            try:
                cell = read_cell(path)
            except (OSError, ValueError, TypeError):
                continue  # corrupt: recomputed, and the file set aside
            where = (cell.dataset, cell.estimator, cell.fold, cell.train_size)
            if path == self.cell_path(*where):
                by_cell[where] = cell
        return by_cell, paths

    def set_aside(self, paths, kept):
        """Move every cell file of `paths` not in `kept` ((dataset, estimator, fold, train_size)) to
        `replaced/<time>/`, with its probabilities file; return how many cells. What an earlier
        configuration computed is kept for reference, but outside cells/, so the report never
        mixes it in."""
        kept_paths = {self.cell_path(*k) for k in kept}
        target = self.path / REPLACED / time.strftime("%Y%m%d-%H%M%S")
        moved = 0
        for source in paths:
            if source in kept_paths or not source.exists():
                continue
            destination = target / source.relative_to(self.path)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, destination)
            # after the JSON: a kill between the two leaves a stray .npy no JSON names (saving
            # the cell again replaces it), never a JSON naming a file moved away
            if _proba_beside(source).exists():
                os.replace(_proba_beside(source), _proba_beside(destination))
            moved += 1
        return moved

    # ---- process-level state ---------------------------------------------------------------

    @contextmanager
    def lock(self):
        """Refuse a second run writing into the same directory at the same time."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path / LOCK_FILE))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise UsageError(f"another run is writing to {self.path} right now; wait for it to finish "
                             "or choose another --out") from None
        try:
            yield self
        finally:
            lock.release()

    def in_use(self):
        """Whether a process holds the run's lock now (False for a run whose process ended)."""
        from filelock import FileLock, Timeout

        if not (self.path / LOCK_FILE).exists():
            return False
        lock = FileLock(str(self.path / LOCK_FILE))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        lock.release()
        return False

    @contextmanager
    def running(self):
        """The running/ folder for the cells' markers and shared arrays, emptied before and
        removed after, also when interrupted (Ctrl-C, SIGTERM) or failing."""
        shutil.rmtree(self.running_dir, ignore_errors=True)
        try:
            yield self.running_dir
        finally:
            self.remove_temporary()

    def remove_temporary(self):
        """Remove what only a running process needs: running/, the write probe, and files a
        killed writer left half-written (`.<name>.<...>.tmp` next to their target)."""
        shutil.rmtree(self.running_dir, ignore_errors=True)
        (self.path / WRITE_PROBE).unlink(missing_ok=True)
        for stale in self.path.glob("**/.*.tmp"):
            stale.unlink(missing_ok=True)

    def point_latest(self, results_root="results"):
        """Make `<results root>/latest` a relative symlink to this run, when the run is in the
        results root (a run written elsewhere with --out leaves no link beside it). Only a
        missing `latest` or one that is already a symlink is (re)written: a file or folder of
        the user's that happens to be called `latest` is never replaced."""
        latest = self.path.parent / LATEST
        try:
            if self.path.resolve().parent != Path(results_root).resolve():
                return
            if latest.is_symlink():
                latest.unlink()
            elif latest.exists():
                return
            latest.symlink_to(self.path.name, target_is_directory=True)
        except OSError:  # e.g. a file system without symlinks: the run itself is complete
            pass


def _proba_beside(cell_json):
    """fold-<k>.proba.npy for fold-<k>.json."""
    return cell_json.with_suffix(PROBA_SUFFIX)
