"""Everything a report says about a run, computed once from its stored cells.

`analyse(stored)` turns a StoredRun (benchmark.reporting.results) into an `Analysis`: every
section's data as DataFrames or small dataclasses - the leaderboards, the statistics, the
training diagnostics, tuning, training sizes, per-class scores, calibration, near-duplicates and
the problems. report.md (benchmark.reporting.report), the terminal's leaderboards
(leaderboard.terminal_leaderboards) and a notebook's BenchmarkResults render from it and
compute nothing themselves.
"""

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from benchmark.execution.store import RunStore
from benchmark.reporting.calibration import Calibration, calibrate, calibration_frame
from benchmark.reporting.diagnostics import training_diagnostics
from benchmark.reporting.leaderboard import history_frame, overall_frame, scores_frame, summary_frame
from benchmark.reporting.near_duplicates import (
    dedupe_problems, near_duplicate_frame, near_duplicate_problems,
)
from benchmark.reporting.per_class import per_class_results
from benchmark.reporting.results import plan_order, ranked_size
from benchmark.reporting.stats import ALPHA, Ranking, rank_estimators
from benchmark.reporting.training_sizes import crossovers, size_frame
from benchmark.reporting.tuning import tuning_frames, tuning_problems


@dataclass
class Confusion:
    """The out-of-fold predictions of a dataset's best estimator, for its confusion matrix."""

    estimator: str
    y_true: list  # every ok fold's, pooled
    y_pred: list
    classes: list  # the dataset's class names in its own order (run.json), then any other label
    folds: int


@dataclass
class Analysis:
    """What a report says about a run, computed from its cells (no file written)."""

    scores: pd.DataFrame  # one row per (dataset, estimator, fold), absent cells included
    summary: pd.DataFrame  # one row per (dataset, estimator): means, intervals, ranks, tests
    overall: pd.DataFrame  # one row per estimator: mean rank across datasets
    history: pd.DataFrame  # the CNNs' per-epoch curves
    ranking: Ranking  # the cross-dataset statistics (Friedman, Nemenyi)
    problems: list  # one line each: failed, missing or unreadable cells, skipped datasets
    # calibration.Calibration: each cell's probabilistic scores, the reliability bins pooled
    # over folds, and the cells whose probabilities could not be used
    probabilistic: Calibration = None
    # `run --train-sizes`: summary rows (as `summary`'s) of the training sizes the leaderboards
    # do not rank, one per (dataset, estimator, size); empty otherwise. `scores` holds their folds
    size_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    # calibration.calibration_frame: one row per (dataset, estimator), probabilistic scores
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    # diagnostics.training_diagnostics: one row per (dataset, estimator) with ok cells
    diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)
    # tuning.tuning_frames: one row per tuned (dataset, estimator), and one per tuned fold
    tuning: pd.DataFrame = field(default_factory=pd.DataFrame)
    tuning_folds: pd.DataFrame = field(default_factory=pd.DataFrame)
    # training_sizes.size_frame: one row per (dataset, estimator, training size) of a
    # `run --train-sizes`, and training_sizes.crossover's result per dataset
    sizes: pd.DataFrame = field(default_factory=pd.DataFrame)
    crossovers: dict = field(default_factory=dict)
    # per_class.per_class_results: per_class.csv's rows, and {dataset: FamilyComparison or None}
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)
    family_comparisons: dict = field(default_factory=dict)
    near_duplicates: pd.DataFrame = field(default_factory=pd.DataFrame)  # near_duplicate_frame
    confusion: dict = field(default_factory=dict)  # {dataset: Confusion of its best estimator}
    meta: dict = field(default_factory=dict)  # run.json: configuration, plan, datasets, machine
    run_dir: Path = None  # where the run is stored (None: a notebook's run kept in memory)
    alpha: float = ALPHA  # the significance level of every test

    def every_summary(self):
        """`summary` and `size_summary` together, as summary.csv holds them: datasets in run
        order, then the training sizes (the whole training part last), then best first."""
        return _by_size(pd.concat([self.summary, self.size_summary], ignore_index=True), "rank")


def analyse(stored, alpha=ALPHA):
    """The Analysis of a StoredRun (benchmark.reporting.results)."""
    absent = stored.absent()
    order = plan_order(stored.meta)
    cells = sorted(stored.cells + absent, key=lambda c: (*order(c.dataset, c.estimator), c.fold))
    probabilistic = calibrate(stored)
    scores = scores_frame(cells, probabilistic.scores)
    summary = _described(summary_frame(scores, alpha), stored)
    overall = overall_frame(summary) if len(summary) else pd.DataFrame()
    size_scores, size_summary = _other_sizes(stored, alpha)
    if len(size_scores):
        scores = _by_size(pd.concat([scores, size_scores], ignore_index=True), "fold")
    datasets = list(summary["dataset"].drop_duplicates()) if len(summary) else []
    tuning, tuning_folds = tuning_frames(stored, datasets)
    sizes = size_frame(stored)
    per_class, comparisons = per_class_results(stored, summary)
    return Analysis(
        scores, summary, overall, history_frame(stored.cells), rank_estimators(summary, alpha),
        _problems(stored, absent) + probabilistic.problems, probabilistic, size_summary,
        calibration=calibration_frame(summary, probabilistic),
        diagnostics=training_diagnostics(stored), tuning=tuning, tuning_folds=tuning_folds,
        sizes=sizes, crossovers=crossovers(sizes, alpha), per_class=per_class,
        family_comparisons=comparisons, near_duplicates=near_duplicate_frame(stored.meta),
        confusion=_confusions(stored, summary), meta=stored.meta, run_dir=stored.run_dir, alpha=alpha)


def _confusions(stored, summary):
    """{dataset: Confusion} of the best estimator (highest mean macro-F1) of each dataset whose
    ok cells stored their predictions."""
    found = {}
    for dataset in summary["dataset"].drop_duplicates() if len(summary) else []:
        rows = summary[(summary["dataset"] == dataset) & summary["f1_macro_mean"].notna()]
        if rows.empty:
            continue
        best = rows.iloc[0]["estimator"]
        cells = [c for c in stored.cells if c.dataset == dataset and c.estimator == best
                 and c.status == "ok" and c.y_true is not None]
        if cells:
            y_true = [y for c in cells for y in c.y_true]
            y_pred = [y for c in cells for y in c.y_pred]
            found[dataset] = Confusion(best, y_true, y_pred,
                                       _class_order(stored, dataset, y_true, y_pred), len(cells))
    return found


def _class_order(stored, dataset, y_true, y_pred):
    """The dataset's class names in its own order (from run.json), else sorted."""
    classes = ((stored.meta.get("datasets") or {}).get(dataset) or {}).get("classes") or {}
    names = [str(c) for c in classes]
    extra = sorted((set(map(str, y_true)) | set(map(str, y_pred))) - set(names))
    return names + extra


def _described(summary, stored):
    """The summary with each estimator's family and the training size of each row's cells
    (`train_size`: at most that many images per class; NA: the whole training part)."""
    if not len(summary):
        return summary
    at = summary.columns.get_loc("estimator") + 1
    summary.insert(at, "family", summary["estimator"].map(stored.family))
    plan = stored.meta.get("plan") or {}
    sizes = summary["dataset"].map(lambda name: ranked_size(plan.get(name) or {}))
    summary.insert(at + 1, "train_size", pd.array(sizes.tolist(), dtype="Int64"))
    summary.insert(at + 2, "pretrained_on", summary["estimator"].map(stored.pretrained_on))
    return summary


def _other_sizes(stored, alpha):
    """(scores, summary) frames of the `run --train-sizes` cells whose size the leaderboards do
    not rank: each size summarised (ranked, tested against its best) on its own."""
    plan = stored.meta.get("plan") or {}
    others = {}
    for c in stored.sized_cells or []:
        if c.train_size != ranked_size(plan.get(c.dataset) or {}):
            others.setdefault(c.train_size, []).append(c)
    scores, summaries = [], []
    for size, cells in sorted(others.items(), key=lambda item: (item[0] is None, item[0] or 0)):
        frame = scores_frame(cells, calibrate(replace(stored, cells=cells)).scores)
        scores.append(frame)
        summary = summary_frame(frame, alpha)
        if len(summary):
            summaries.append(_described(summary, stored).assign(
                train_size=pd.array([size] * len(summary), dtype="Int64")))
    return (pd.concat(scores, ignore_index=True) if scores else pd.DataFrame(),
            pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame())


def _by_size(frame, then):
    """`frame` sorted by dataset (in the order it first appears), training size (the whole
    training part last), then by `then` ("fold": estimators in order; "rank": best first)."""
    if not len(frame):
        return frame
    position = {name: i for i, name in enumerate(frame["dataset"].drop_duplicates())}
    estimators = {name: i for i, name in enumerate(frame["estimator"].drop_duplicates())}
    keys = pd.DataFrame({"dataset": frame["dataset"].map(position),
                         "size": frame["train_size"].astype("Float64").fillna(float("inf")),
                         "estimator": frame["estimator"].map(estimators), "then": frame[then]})
    by = ["dataset", "size", "estimator", "then"] if then == "fold" else ["dataset", "size", "then"]
    order = keys.astype(float).sort_values(by, kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def _in_progress(stored):
    """Whether the run is being computed now: run.json says running and a process holds it."""
    return (stored.meta.get("status") == "running" and stored.run_dir is not None
            and RunStore(stored.run_dir).in_use())


def _problems(stored, absent):
    meta = stored.meta
    problems = [f"dataset {n} skipped: {r}" for n, r in (meta.get("skipped_datasets") or {}).items()]
    for name, s in (meta.get("datasets") or {}).items():
        for f in s.get("skipped_files", []):
            problems.append(f"{name}: skipped {f['path']}: {f['reason']}")
        for f in s.get("excluded_folders", []):
            problems.append(f"{name}: {f['path']}/ {f['reason']}")
        duplicates = s.get("duplicates") or {}
        for group in duplicates.get("label_conflicts", []):
            where = group.get("names") or [f"image {i}" for i in group["indices"]]
            problems.append(f"{name}: label conflict, one image under classes "
                            f"{', '.join(group['labels'])}: {', '.join(map(str, where))}")
        if duplicates.get("within_class_copies"):
            problems.append(f"{name}: {duplicates['within_class_copies']} duplicate image(s) within "
                            f"a class ({duplicates['within_class_groups']} group(s)); see run.json")
        identical = [g.get("names") or [] for g in duplicates.get("label_conflicts", [])]
        problems += near_duplicate_problems(name, s.get("near_duplicates"), identical)
        problems += dedupe_problems(name, (s.get("sampling") or {}).get("dedupe"))
    for cell in stored.sized_cells or stored.cells:  # every training size's (run --train-sizes)
        if cell.status != "ok":
            size = "" if cell.train_size is None else f" (at most {cell.train_size} images per class)"
            problems.append(f"{cell.dataset} / {cell.estimator} / fold {cell.fold}{size} failed: {cell.error}")
    problems += _unknown_prediction_problems(stored.sized_cells or stored.cells)
    problems += tuning_problems(stored)
    missing = [c for c in absent if c.status == "missing"]
    if missing:
        shown = ", ".join(f"{c.dataset} / {c.estimator} / fold {c.fold}" for c in missing[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        why = ("not run yet: the run is in progress" if _in_progress(stored)
               else "not run yet, or the run was interrupted")
        problems.append(f"{len(missing)} planned cell(s) have no result ({why}): {shown}{more}")
    for path, reason in stored.unreadable:
        problems.append(f"cannot read {path}: {reason}; the rest of the run is reported without it")
    return problems


def _unknown_prediction_problems(cells):
    """One line per cell whose estimator predicted labels that are not among its training
    classes (cells.run_cell records them): those predictions count as wrong in every score."""
    problems = []
    for cell in cells:
        unknown = (cell.diagnostics or {}).get("unknown_predictions") if cell.status == "ok" else None
        if not isinstance(unknown, dict):
            continue
        examples = ", ".join(repr(label) for label in unknown.get("labels") or [])
        size = "" if cell.train_size is None else f" (trained on at most {cell.train_size} images per class)"
        problems.append(f"estimator {cell.estimator} predicted labels not among the classes (e.g. "
                        f"{examples}) on dataset {cell.dataset} fold {cell.fold}{size}: "
                        f"{unknown.get('count')} of {cell.n_test} test images, scored as wrong")
    return problems
