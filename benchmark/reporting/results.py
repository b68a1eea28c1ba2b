"""Reading a run directory back: run.json and every cell, with what could not be read.

The directory's layout belongs to benchmark.execution.store.RunStore; everything derived
(report.md, CSVs, plots) is rebuilt from what this reads by benchmark.reporting.report.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.errors import failure_line
from benchmark.execution import order as cell_order
from benchmark.execution.store import RunStore

@dataclass
class StoredRun:
    """A run read back from disk: its metadata, its cells, and what could not be read."""

    run_dir: Path
    meta: dict
    cells: list  # the cells the leaderboards rank: each dataset's largest training size
    unreadable: list = field(default_factory=list)  # (path, reason) of files that are corrupt
    # `run --train-sizes`: every cell of every size (the ranked ones included); else `cells`
    sized_cells: list = None

    def family(self, estimator):
        """The family ("cnn", "classical", ...) run.json recorded for `estimator`; for runs
        written before families were recorded, the registry's (UNKNOWN_FAMILY when the name
        is no longer registered)."""
        from estimators.registry import estimator_family

        recorded = (self.meta.get("families") or {}).get(estimator)
        return recorded if recorded else estimator_family(estimator)

    def pretrained_on(self, estimator):
        """The external data `estimator`'s network was trained on ("ImageNet-1k"), as run.json
        recorded it; None for the from-scratch families and runs from before it was recorded
        (whose estimators were all from scratch)."""
        return (self.meta.get("pretrained_on") or {}).get(estimator)

    def absent(self):
        """Cells the plan in run.json has but no readable file holds, as failed-like Cells
        with status "missing" (never written: not run yet, or the run was interrupted) or
        "unreadable" (a corrupt file), so tables count them and no average hides them."""
        from benchmark.execution.cell_record import Cell

        have = {(c.dataset, c.estimator, c.fold) for c in self.cells}
        corrupt = dict(self.unreadable)
        absent = []
        for dataset, planned in (self.meta.get("plan") or {}).items():
            size = ranked_size(planned)
            for estimator in planned["estimators"]:
                for fold in range(planned["folds"]):
                    if (dataset, estimator, fold) in have:
                        continue
                    path = str(RunStore(self.run_dir).cell_path(dataset, estimator, fold, size))
                    status, error = (("unreadable", corrupt[path]) if path in corrupt
                                     else ("missing", "no result file"))
                    absent.append(Cell(dataset, estimator, fold, status, error=error, train_size=size))
        return absent

    def probabilities(self, cell):
        """(the cell's probabilities as float64, or None; why they cannot be used, or None).

        Those the cell holds in memory (a notebook run's), else its file in the run directory
        (RunStore.load_probabilities), read now; (None, None) for a cell that has none."""
        from benchmark.execution.cell_record import probability_problem

        if cell.status != "ok" or cell.proba_classes is None:
            return None, None
        try:
            if cell.probabilities is not None:
                problem = probability_problem(np.asarray(cell.probabilities), cell)
                if problem:
                    raise ValueError(problem)
                return np.asarray(cell.probabilities, dtype=np.float64), None
            if self.run_dir is None:
                return None, "neither in memory nor in a run directory"
            return RunStore(self.run_dir).load_probabilities(cell), None
        except (OSError, ValueError, EOFError) as exc:  # np.load: EOFError on an empty file
            return None, failure_line(exc)


def ranked_size(planned):
    """The training size whose cells a dataset's leaderboard ranks: the whole training part
    (None) unless `run --train-sizes` left "max" out, then the largest size run."""
    sizes = planned.get("train_sizes") or [None]
    return None if None in sizes else max(sizes)


def resolve_run_dir(run, results_root="results"):
    """A run directory from a path or a run id under `results_root` (default: the latest run)."""
    return RunStore.find(run, results_root).path


def load_run(run_dir):
    """Read run.json and every cell; corrupt files are listed in `unreadable`, never fatal."""
    from benchmark.execution.cell_record import read_cell

    store = RunStore(run_dir)
    run_dir = store.path
    unreadable, meta = [], {}
    try:
        meta = store.read_meta()
    except FileNotFoundError:
        unreadable.append((str(store.run_file), "missing: the run did not start writing it"))
    except (OSError, ValueError) as exc:
        meta = {}
        unreadable.append((str(store.run_file), failure_line(exc)))
    cells = []
    for path in store.cell_files():
        try:
            cells.append(read_cell(path))
        except (OSError, ValueError, TypeError) as exc:
            unreadable.append((str(path), failure_line(exc)))
    order = plan_order(meta)
    cells.sort(key=lambda c: (*order(c.dataset, c.estimator), c.train_size or 0, c.fold))
    plan = meta.get("plan") or {}
    ranked = [c for c in cells if c.train_size == ranked_size(plan.get(c.dataset) or {})]
    return StoredRun(run_dir, meta, ranked, unreadable, cells)


def plan_order(meta):
    """Sort key (dataset position, estimator position) following the run's configuration."""
    config = meta.get("config") or {}
    return cell_order.plan_order(config.get("datasets") or [], config.get("estimators") or [])
