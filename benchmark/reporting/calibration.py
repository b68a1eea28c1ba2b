"""Probabilistic scores and calibration, from the stored out-of-fold probabilities.

Per cell: log loss, the multiclass Brier score, top-5 accuracy (datasets with more than 5
classes) and the expected calibration error (ECE); per dataset, a reliability diagram of the
best estimator (by mean macro-F1) of each family. Everything is computed from the cells'
probability files (benchmark.execution.store.RunStore.load_probabilities), so `report`
regenerates it from a run directory alone. A cell without probabilities - an estimator with no
`predict_proba`, or a run stored before they were - scores "n/a"; so does one whose file is
missing or damaged, with a Problems line saying why.

Compute, then render (as benchmark.reporting.stats): `calibrate(stored)` returns a
`Calibration`; the leaderboards take its per-cell scores, `reliability_jobs` and
`calibration_section` draw and describe it.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.reporting.markdown import escape_markdown as esc
from benchmark.reporting.markdown import link_path

# name -> column title; all of them lower is better except top-5 accuracy
PROBABILISTIC = {"log_loss": "log loss", "brier": "Brier", "top5_accuracy": "top-5 accuracy",
                 "ece": "ECE"}
TERMINAL_PROBABILISTIC = ("log_loss", "ece")  # the terminal's leaderboard stays narrow
TOP_K = 5  # top-k accuracy is reported for datasets with more than TOP_K classes
N_BINS = 15  # equal-width confidence bins of the ECE and the reliability diagram (Guo et al. 2017)


# --- the scores of one cell -----------------------------------------------------------------

def probabilistic_scores(y_true, proba, classes):
    """({log_loss, brier, top5_accuracy, ece}, ReliabilityBins) of probabilities `proba` (rows:
    the samples of `y_true`, columns: `classes`); top5_accuracy is NaN with TOP_K classes or
    fewer.

    The Brier score is the multiclass one, the mean over samples of the sum over classes of
    (p - one-hot)^2, in [0, 2], for binary datasets too (scikit-learn's `scale_by_half=False`),
    so one definition holds across datasets."""
    from sklearn.metrics import brier_score_loss, log_loss, top_k_accuracy_score

    y_true = np.asarray(y_true).astype(str)
    proba, labels = _sorted_columns(proba, classes, y_true)
    scores = {
        "log_loss": float(log_loss(y_true, proba, labels=labels)),
        "brier": float(brier_score_loss(y_true, proba, labels=labels, scale_by_half=False)),
        "top5_accuracy": (float(top_k_accuracy_score(y_true, proba, k=TOP_K, labels=labels))
                          if len(labels) > TOP_K else np.nan),
    }
    bins = reliability_bins(proba, y_true, labels)
    scores["ece"] = bins.ece
    return scores, bins


def _sorted_columns(proba, classes, y_true):
    """(probabilities as float64 with columns in sorted label order, the sorted labels).

    scikit-learn's probabilistic metrics read the columns in lexicographic label order (they
    warn otherwise), while an estimator's `classes_` may sort differently as text ("10" < "2"
    only as text). A class of the test rows that the fit never saw (absent from its training
    fold) gets a column of zeros: the estimator gave it no probability."""
    classes = [str(c) for c in classes]
    labels = sorted(set(classes) | set(y_true.tolist()))
    position = {label: i for i, label in enumerate(labels)}
    out = np.zeros((len(proba), len(labels)))
    out[:, [position[c] for c in classes]] = proba
    out /= out.sum(axis=1, keepdims=True)  # float32 storage: rows sum to 1 within 1e-6
    return out, labels


@dataclass
class ReliabilityBins:
    """Top-label confidence in N_BINS equal-width bins: per bin the number of samples, the sum
    of their confidences and how many of them were right. Sums, not means, so the bins of
    several folds add up to those of their pooled predictions."""

    counts: np.ndarray
    confidence: np.ndarray
    correct: np.ndarray

    def __add__(self, other):
        return ReliabilityBins(self.counts + other.counts, self.confidence + other.confidence,
                               self.correct + other.correct)

    @property
    def ece(self):
        """Expected calibration error: sum over bins of (n_b / n) |accuracy_b - confidence_b|."""
        n = self.counts.sum()
        if n == 0:
            return np.nan
        return float(np.abs(self.correct - self.confidence).sum() / n)

    def curve(self):
        """(mean confidence, accuracy, count) of the non-empty bins."""
        full = self.counts > 0
        counts = self.counts[full]
        return self.confidence[full] / counts, self.correct[full] / counts, counts


def reliability_bins(proba, y_true, labels):
    """The ReliabilityBins of probabilities `proba` (columns: `labels`) for `y_true`.

    Hand-written: scikit-learn has no ECE, and its `calibration_curve` is binary only. The
    top label is the argmax (the first on ties); bins are [m/N_BINS, (m+1)/N_BINS), the last
    one closed, as `calibration_curve`'s uniform strategy bins."""
    proba = np.asarray(proba, dtype=float)
    top = proba.argmax(axis=1)
    confidence = proba[np.arange(len(proba)), top]
    correct = (np.asarray(labels)[top] == np.asarray(y_true).astype(str)).astype(float)
    edges = np.linspace(0.0, 1.0, N_BINS + 1)
    which = np.searchsorted(edges[1:-1], confidence, side="right")
    return ReliabilityBins(np.bincount(which, minlength=N_BINS).astype(float),
                           np.bincount(which, weights=confidence, minlength=N_BINS),
                           np.bincount(which, weights=correct, minlength=N_BINS))


# --- every cell of a run --------------------------------------------------------------------

@dataclass
class Calibration:
    """The probabilistic scores of a run's cells and what the reliability diagrams need."""

    scores: pd.DataFrame  # one row per cell with probabilities: dataset, estimator, fold, PROBABILISTIC
    bins: dict = field(default_factory=dict)  # {(dataset, estimator): ReliabilityBins pooled over folds}
    problems: list = field(default_factory=list)  # cells whose probabilities could not be used


def calibrate(stored):
    """The Calibration of a StoredRun (benchmark.reporting.results): each successful cell that
    stored probabilities is scored; one whose probabilities cannot be read or are invalid is
    left out (its scores n/a) with a Problems line."""
    rows, bins, problems = [], {}, []
    for cell in stored.cells:
        if cell.status != "ok":
            continue
        proba, problem = stored.probabilities(cell)
        if proba is not None:
            try:
                scores, cell_bins = probabilistic_scores(cell.y_true, proba, cell.proba_classes)
            except ValueError as exc:  # e.g. labels scikit-learn refuses
                problem = str(exc).splitlines()[0]
            else:
                rows.append({"dataset": cell.dataset, "estimator": cell.estimator, "fold": cell.fold,
                             "train_size": cell.train_size, **scores})
                key = (cell.dataset, cell.estimator)
                bins[key] = bins[key] + cell_bins if key in bins else cell_bins
        if problem:
            problems.append(f"{cell.dataset} / {cell.estimator} / fold {cell.fold}: its stored "
                            f"probabilities cannot be used ({problem}); its probabilistic scores are n/a")
    scores = pd.DataFrame(rows, columns=["dataset", "estimator", "fold", "train_size", *PROBABILISTIC])
    return Calibration(scores, bins, problems)


def shown_metrics(summary, dataset, metrics):
    """`metrics` less top-5 accuracy where the dataset has no value of it (TOP_K classes or
    fewer, or no probabilities at all): the column would say n/a in every row."""
    rows = summary[summary["dataset"] == dataset]
    return [m for m in metrics if m != "top5_accuracy"
            or (f"{m}_mean" in rows and rows[f"{m}_mean"].notna().any())]


def calibration_frame(summary, calibration):
    """One row per (dataset, estimator) of `summary` that scored: the fold means and standard
    deviations of the probabilistic scores (the leaderboard's), the folds with probabilities,
    the ECE of every fold's probabilities pooled (the reliability diagram's), and whether the
    estimator is its family's curve in the dataset's reliability diagram."""
    columns = ["dataset", "estimator", "family", "folds_ok", "proba_folds",
               *(f"{m}_{stat}" for m in PROBABILISTIC for stat in ("mean", "std")), "pooled_ece",
               "in_reliability_diagram"]
    if calibration is None or not len(summary):
        return pd.DataFrame(columns=columns)
    rows = summary[summary["f1_macro_mean"].notna()]
    frame = rows[[c for c in columns if c in rows]].copy()
    for name in columns:  # a summary without probabilistic columns (no cell stored any)
        if name not in frame:
            frame[name] = np.nan
    frame["pooled_ece"] = [calibration.bins[key].ece if key in calibration.bins else np.nan
                           for key in zip(frame["dataset"], frame["estimator"])]
    drawn = {(dataset, curve[0]) for dataset in frame["dataset"].drop_duplicates()
             for curve in reliability_curves(summary, calibration, dataset)}
    frame["in_reliability_diagram"] = [key in drawn for key in zip(frame["dataset"], frame["estimator"])]
    return frame[columns].reset_index(drop=True)


# --- reliability diagrams -------------------------------------------------------------------

def reliability_curves(summary, calibration, dataset):
    """[(estimator, family, mean confidences and accuracies of the non-empty bins, counts of
    all N_BINS bins, pooled ECE)] of the best estimator (by mean macro-F1) of each family among
    those with probabilities on `dataset`."""
    rows = summary[(summary["dataset"] == dataset) & summary["f1_macro_mean"].notna()]
    chosen = {}
    for _, row in rows.sort_values("f1_macro_mean", ascending=False, kind="stable").iterrows():
        pooled = calibration.bins.get((dataset, row["estimator"]))
        if pooled is not None:
            chosen.setdefault(row["family"], (row["estimator"], pooled))
    curves = []
    for family, (estimator, pooled) in chosen.items():
        confidence, accuracy, _ = pooled.curve()
        curves.append((estimator, family, confidence.tolist(), accuracy.tolist(),
                       pooled.counts.tolist(), pooled.ece))
    return curves


def reliability_jobs(summary, calibration, at):
    """The report's plot jobs (dataset, "reliability", plots function, args), one per dataset
    with probabilities; `at(file name)` is where each is written (None: returned as a figure)."""
    from benchmark.execution.cell_record import slug

    jobs = []
    if calibration is None or not len(summary):
        return jobs
    for dataset in summary["dataset"].drop_duplicates():
        curves = reliability_curves(summary, calibration, dataset)
        if curves:
            jobs.append((dataset, "reliability", "reliability_diagram", (
                curves, N_BINS, at(f"{slug(dataset)}-reliability.png"),
                f"{dataset}: reliability of the best estimator of each family")))
    return jobs


def calibration_section(dataset, summary, plot):
    """Markdown lines under a dataset's table: what the probabilistic columns mean and the
    reliability diagram (`plot`: its path relative to the run directory, or None)."""
    rows = summary[summary["dataset"] == dataset]
    ran = rows[rows["f1_macro_mean"].notna()]
    missing = [e for e, folds in zip(ran["estimator"], ran["proba_folds"]) if not folds]
    lines = ["Probabilistic scores, from the out-of-fold predicted probabilities (fold means ± "
             "std): *log loss* and *Brier* (the multiclass Brier score, sum over classes of the "
             "squared error, 0 to 2) are lower-better; *top-5 accuracy* (datasets with more than "
             f"{TOP_K} classes) is the share of test images whose class is among the 5 most "
             "probable; *ECE*, the expected calibration error, is the mean gap between the top "
             f"class's probability and how often it is right ({N_BINS} equal-width confidence bins, "
             "weighted by their size; 0 is perfectly calibrated)."]
    if missing:
        lines[0] += (f" n/a: no probabilities stored for {', '.join(map(esc, missing))} (no "
                     "`predict_proba`, a run stored before probabilities were, or an unusable "
                     "file; see Problems).")
    lines.append("")
    if plot is not None:
        lines += ["Reliability diagram of the best estimator (by mean macro-F1) of each family, "
                  "from the out-of-fold probabilities of every fold pooled: a calibrated model "
                  "follows the diagonal; below it, overconfident. The lower panel shows how many "
                  "test images fall in each confidence bin; the legend gives the pooled ECE.", "",
                  f"![{esc(f'{dataset}: reliability diagram')}]({link_path(plot)})", ""]
    return lines
