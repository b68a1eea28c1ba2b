"""A run directory on disk: run.json, the cells, results/latest, and reading them back.

Layout of `results/<run-id>/`:
- `run.json`: what was run and where (configuration, plan of cells, datasets with their
  fingerprints and sample counts, library versions, machine, command line, project commit),
  written when the cells start (status "running") and again at the end;
- `cells/<dataset>/<estimator>/fold-<k>.json`: one file per finished cell, written atomically
  the moment it finishes, with its scores, timings and out-of-fold predictions;
- everything else (report.md, CSVs, plots) is derived from those by `benchmark.reporting.report` and can
  be regenerated at any time.
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from features.cache import atomic_write

from benchmark import __version__
from benchmark.errors import UsageError, failure_line
from benchmark.execution import order as cell_order

LIBRARIES = ("numpy", "scipy", "scikit-learn", "scikit-image", "pandas", "joblib", "pillow",
             "tabulate", "matplotlib", "scikit-posthocs", "tensorflow", "keras")
RUN_FILE = "run.json"


def new_run_id():
    return time.strftime("%Y%m%d-%H%M%S")


def new_run_dir(results_root="results"):
    """Create and return `results_root/<run id>`; a run started in the same second as another
    gets the id with a suffix (-2, -3, ...). The directory is created atomically, so two runs
    started at once never share it."""
    base = new_run_id()
    for n in range(1, 1000):
        path = Path(results_root) / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
        except OSError:
            return path  # unwritable: prepare_run_dir says so in one line
    raise UsageError(f"cannot find a free run directory under {results_root}; choose one with --out")


# What a run directory holds before its run.json is written (a run stopped at its start)
EARLY_RUN_FILES = {"run.log", ".lock", "cells", "running", ".write-test"}


def prepare_run_dir(path):
    """Create the run directory and check it can be written; UsageError if not, or if it is
    an existing folder of something else: a run writes only into a new or empty folder, or a
    run directory of its own (one with run.json, or one stopped before writing it), so it
    never overwrites or deletes a user's files (report.md, plots/*.png, ...)."""
    path = Path(path)
    if path.is_dir() and not (path / RUN_FILE).is_file():
        foreign = sorted(p.name for p in path.iterdir() if p.name not in EARLY_RUN_FILES)
        if foreign:
            raise UsageError(
                f"{str(path)!r} already holds files that are not a benchmark run (e.g. {foreign[0]!r}); "
                "choose a new or empty directory with --out"
            )
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"cannot write results to {str(path)!r} ({reason}); choose another directory with --out"
        ) from None
    return path


def library_versions():
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _command_output(command, cwd=None):
    """stdout of a short command, or None when it is missing, fails or hangs."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def project_commit():
    """{"commit", "dirty"} of the source checkout this package runs from, or None (installed)."""
    source = Path(__file__).resolve().parent.parent
    commit = _command_output(["git", "rev-parse", "HEAD"], cwd=source)
    if not commit:
        return None
    status = _command_output(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source)
    return {"commit": commit, "dirty": bool(status)}


def machine():
    """CPU model, cores and the GPUs the NVIDIA driver lists (without importing TensorFlow)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = _command_output(["nvidia-smi", "-L"])
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpus": gpus.splitlines() if gpus else [],
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }


def write_run_json(result_or_start, argv, status, backend=None):
    """Write run.json from a RunResult (or the same fields at the start of a run)."""
    r = result_or_start
    meta = {
        "run_id": Path(r.run_dir).name,
        "status": status,
        "version": __version__,
        "project": project_commit(),
        "command": list(argv) if argv is not None else sys.argv,
        "config": asdict(r.config),
        "threads": {"workers": r.config.n_jobs, "per_cell": r.config.threads_per_cell},
        "backend": backend,
        "plan": r.plan,
        "datasets": r.datasets,
        "skipped_datasets": r.skipped_datasets,
        "failed_cells": len(r.failed_cells),
        "libraries": library_versions(),
        "machine": machine(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = Path(r.run_dir) / RUN_FILE
    atomic_write(path, lambda f: f.write(json.dumps(meta, indent=2).encode()))
    return meta


def point_latest(run_dir, results_root="results"):
    """Make `<results root>/latest` a relative symlink to the newest run, when the run is in
    the results root (a run written elsewhere with --out leaves no link beside it).

    Only a missing `latest` or one that is already a symlink is (re)written: a file or folder
    of the user's that happens to be called `latest` is never replaced.
    """
    run_dir = Path(run_dir)
    latest = run_dir.parent / "latest"
    try:
        if run_dir.resolve().parent != Path(results_root).resolve():
            return
        if latest.is_symlink():
            latest.unlink()
        elif latest.exists():
            return
        latest.symlink_to(run_dir.name, target_is_directory=True)
    except OSError:  # e.g. a file system without symlinks: the run itself is complete
        pass


@dataclass
class StoredRun:
    """A run read back from disk: its metadata, its cells, and what could not be read."""

    run_dir: Path
    meta: dict
    cells: list
    unreadable: list = field(default_factory=list)  # (path, reason) of files that are corrupt

    def absent(self):
        """Cells the plan in run.json has but no readable file holds, as failed-like Cells
        with status "missing" (never written: not run yet, or the run was interrupted) or
        "unreadable" (a corrupt file), so tables count them and no average hides them."""
        from benchmark.execution.cells import Cell, cell_path

        have = {(c.dataset, c.estimator, c.fold) for c in self.cells}
        corrupt = dict(self.unreadable)
        absent = []
        for dataset, planned in (self.meta.get("plan") or {}).items():
            for estimator in planned["estimators"]:
                for fold in range(planned["folds"]):
                    if (dataset, estimator, fold) in have:
                        continue
                    path = str(cell_path(self.run_dir, dataset, estimator, fold))
                    status, error = (("unreadable", corrupt[path]) if path in corrupt
                                     else ("missing", "no result file"))
                    absent.append(Cell(dataset, estimator, fold, status, error=error))
        return absent


def resolve_run_dir(run, results_root="results"):
    """A run directory from a path or a run id under `results_root` (default: the latest run)."""
    candidates = [Path(run)] if run else []
    candidates += [Path(results_root) / (run or "latest")]
    for path in candidates:
        if (path / RUN_FILE).exists() or (path / "cells").is_dir():
            return path
    shown = run or f"{results_root}/latest"
    raise UsageError(f"{shown!r} is not a run directory (no {RUN_FILE} or cells/ in it); give a path "
                     f"like results/<run-id> or a run id from {results_root}/")


def load_run(run_dir):
    """Read run.json and every cell; corrupt files are listed in `unreadable`, never fatal."""
    from benchmark.execution.cells import read_cell

    run_dir = Path(run_dir)
    unreadable, meta = [], {}
    try:
        meta = json.loads((run_dir / RUN_FILE).read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        unreadable.append((str(run_dir / RUN_FILE), "missing: the run did not start writing it"))
    except (OSError, ValueError) as exc:
        meta = {}
        unreadable.append((str(run_dir / RUN_FILE), failure_line(exc)))
    cells = []
    for path in sorted((run_dir / "cells").glob("*/*/fold-*.json")):
        try:
            cells.append(read_cell(path))
        except (OSError, ValueError, TypeError) as exc:
            unreadable.append((str(path), failure_line(exc)))
    order = plan_order(meta)
    cells.sort(key=lambda c: (*order(c.dataset, c.estimator), c.fold))
    return StoredRun(run_dir, meta, cells, unreadable)


def plan_order(meta):
    """Sort key (dataset position, estimator position) following the run's configuration."""
    config = meta.get("config") or {}
    return cell_order.plan_order(config.get("datasets") or [], config.get("estimators") or [])
