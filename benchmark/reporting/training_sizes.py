"""Learning curves over the training-set size (`run --train-sizes`): when does a CNN win?

Every estimator is fitted on nested, stratified samples of at most N training images per class
of each split and scored on the same test rows (benchmark.data.protocols), so the scores at
one size are paired across estimators like any leaderboard's. This module turns those cells into
the report's per-dataset part: a table and a plot of macro-F1 (with its corrected interval)
and fit time against the training images per class, and the **crossover**: the smallest size
at which the best CNN is significantly better than the best classical estimator, by the same
corrected resampled t-test (Nadeau & Bengio) the leaderboards use.
"""

import numpy as np
import pandas as pd

from benchmark.reporting.markdown import MARK
from benchmark.reporting.markdown import escape_markdown as esc
from benchmark.reporting.markdown import table
from benchmark.reporting.stats import ALPHA, MIN_FOLDS, corrected_ttest, fold_interval

ALL = "all"  # the label of the whole training part ("max")


SIZE_COLUMNS = ["dataset", "estimator", "family", "size", "order", "per_class", "f1_macro_mean",
                "f1_macro_low", "f1_macro_high", "fit_seconds", "folds", "fold_scores", "flagged",
                "flag_reasons", "n_train", "n_test"]


def size_frame(stored, dataset=None):
    """One row per (dataset, estimator, training size) of a run with --train-sizes: the size
    asked ("all" for max), the mean training images per class actually used, mean macro-F1
    with its corrected 95% interval, mean fit seconds, folds and the per-fold scores."""
    cells = [c for c in (stored.sized_cells or stored.cells) if c.status == "ok"
             and (dataset is None or c.dataset == dataset)]
    planned = stored.meta.get("plan") or {}
    rows = []
    groups = {}
    for c in cells:
        groups.setdefault((c.dataset, c.estimator, c.train_size), []).append(c)
    for (name, estimator, size), group in groups.items():
        if len((planned.get(name) or {}).get("train_sizes") or []) < 2:
            continue  # not a learning-curve run for this dataset
        group.sort(key=lambda c: c.fold)
        classes = len((stored.meta.get("datasets") or {}).get(name, {}).get("classes") or {}) or 1
        f1 = [c.scores["f1_macro"] for c in group]
        n_train = [c.n_train for c in group]
        interval = fold_interval(f1, n_train, [c.n_test for c in group])
        rows.append({
            "dataset": name, "estimator": estimator, "family": stored.family(estimator),
            "size": ALL if size is None else size, "order": np.inf if size is None else size,
            "per_class": float(np.mean(n_train)) / classes,
            # the interval clipped to the scores' range: with few images per class the folds
            # differ so much that the t interval runs past 0 or 1, which no score can
            "f1_macro_mean": interval.mean, "f1_macro_low": max(interval.low, 0.0),
            "f1_macro_high": min(interval.high, 1.0),
            "fit_seconds": float(np.mean([c.fit_seconds or 0.0 for c in group])),
            "folds": len(group), "fold_scores": dict(zip([c.fold for c in group], f1)),
            # folds whose training check failed (a CNN diverged, stopped undertrained, ...) and
            # the kinds of failure: the text of each reason before its colon
            "flagged": sum(bool((c.diagnostics or {}).get("undertrained")) for c in group),
            "flag_reasons": sorted({r.split(":")[0] for c in group for r in (c.diagnostics or {}).get("reasons") or []}),
            "n_train": float(np.mean(n_train)), "n_test": float(np.mean([c.n_test for c in group])),
        })
    if not rows:  # not a learning-curve run: no rows, the columns all the same
        return pd.DataFrame(columns=SIZE_COLUMNS)
    frame = pd.DataFrame(rows)
    return frame.sort_values(["dataset", "order", "estimator"]).reset_index(drop=True)


def crossover(frame, alpha=ALPHA):
    """For one dataset's size_frame: {"size", "cnn", "classical", "difference", "p_value"} at
    the smallest size where the best CNN (by mean macro-F1 at that size) is significantly
    better than the best classical estimator on the same folds, or {"reason": ...} when it
    never is within the sizes run (with, per size, the comparison that was made)."""
    if frame.empty or not {"cnn", "classical"} <= set(frame["family"]):
        return {"reason": "needs both a CNN and a classical estimator"}
    tried = []
    for order in sorted(frame["order"].unique()):
        at = frame[frame["order"] == order]
        cnn = at[at["family"] == "cnn"].sort_values("f1_macro_mean", ascending=False)
        classical = at[at["family"] == "classical"].sort_values("f1_macro_mean", ascending=False)
        if cnn.empty or classical.empty:
            continue
        a, b = cnn.iloc[0], classical.iloc[0]
        test = _paired(a, b)
        found = {"size": a["size"], "per_class": a["per_class"], "cnn": a["estimator"],
                 "classical": b["estimator"], "difference": test.mean_difference, "p_value": test.p_value}
        tried.append(found)
        if test.mean_difference > 0 and test.p_value < alpha:
            return found
    if tried and all(np.isnan(t["p_value"]) for t in tried):
        folds = min(len(scores) for scores in frame["fold_scores"])
        return {"reason": f"cannot be tested: the corrected paired t-test needs at least {MIN_FOLDS} "
                          f"folds or repeats, and this run has {folds}", "tried": tried, "untested": True}
    return {"reason": "not reached within the sizes run", "tried": tried}


def _paired(a, b):
    """The corrected paired t-test of two size_frame rows (a minus b) on their common folds."""
    folds = sorted(set(a["fold_scores"]) & set(b["fold_scores"]))
    return corrected_ttest([a["fold_scores"][f] for f in folds], [b["fold_scores"][f] for f in folds],
                           a["n_train"], a["n_test"])


def pretrained_gaps(frame):
    """For one dataset's size_frame: per size, the best pretrained estimator (by mean macro-F1)
    against the best from-scratch CNN and the best classical estimator, [{"size", "per_class",
    "pretrained", and for "cnn" and "classical": (estimator, difference, p)}]; [] without a
    pretrained estimator. The crossover itself stays CNN against classical."""
    rows = []
    for order in sorted(frame["order"].unique()) if len(frame) else []:
        at = frame[frame["order"] == order].sort_values("f1_macro_mean", ascending=False)
        pretrained = at[at["family"] == "pretrained"]
        if pretrained.empty:
            continue
        best = pretrained.iloc[0]
        row = {"size": best["size"], "per_class": best["per_class"], "pretrained": best["estimator"]}
        for family in ("cnn", "classical"):
            others = at[at["family"] == family]
            if len(others):
                test = _paired(best, others.iloc[0])
                row[family] = (others.iloc[0]["estimator"], test.mean_difference, test.p_value)
        rows.append(row)
    return rows


def crossovers(frame, alpha=ALPHA):
    """{dataset: crossover(its rows of the size_frame `frame`)} for every dataset it has."""
    if frame.empty:
        return {}
    return {dataset: crossover(dataset_sizes(frame, dataset), alpha)
            for dataset in frame["dataset"].drop_duplicates()}


def dataset_sizes(frame, dataset):
    """The rows of `dataset` in the size_frame `frame` (an empty frame when it has none)."""
    if frame.empty:
        return frame
    return frame[frame["dataset"] == dataset].reset_index(drop=True)


def size_section(dataset, analysis, plot=None):
    """The report's Markdown part on `dataset`'s learning curve ([] without --train-sizes),
    rendered from `analysis.sizes` (size_frame) and `analysis.crossovers` (crossovers)."""
    frame = dataset_sizes(analysis.sizes, dataset)
    if frame.empty:
        return []
    sizes = list(dict.fromkeys(frame.sort_values("order")["size"]))
    lines = ["### Learning curve: training images per class", "",
             "Every estimator trained on nested, stratified samples of at most N images per class "
             "of each split's training part, all scored on the same test rows. Macro-F1: mean "
             "[95% CI] over folds; fit: mean seconds per fold.", ""]
    rows = []
    for estimator, group in frame.groupby("estimator", sort=False):
        by_size = {r["size"]: r for _, r in group.iterrows()}
        cells = [_size_cell(by_size[s]) if s in by_size else "-" for s in sizes]
        rows.append([esc(estimator), esc(group.iloc[0]["family"])] + cells)
    per_class = frame.groupby("size")["per_class"].mean()
    headers = ["estimator", "family"] + [f"{s} (~{per_class[s]:.0f}/class)" if s == ALL else str(s) for s in sizes]
    lines += [table(rows, headers), ""]
    flagged = frame[frame["flagged"] > 0]
    if len(flagged):
        listed = "; ".join(f"{esc(r['estimator'])} at {r['size']} ({r['flagged']}/{r['folds']} folds: "
                           f"{esc(', '.join(r['flag_reasons']))})" for _, r in flagged.iterrows())
        lines += [f"{MARK} k/n: the training of k of the n folds failed its checks (see Training "
                  f"diagnostics for what each check means), so that point measures the training, not "
                  f"what the model can learn from that many images: {listed}.", ""]
    capped = (((analysis.meta.get("datasets") or {}).get(dataset) or {}).get("sampling") or {}).get(
        "train_sizes", {}).get("capped") or {}
    for size, classes in capped.items():
        listed = ", ".join(f"{c} ({n})" for c, n in list(classes.items())[:8])
        more = f" and {len(classes) - 8} more" if len(classes) > 8 else ""
        lines += [f"At {size} per class, class(es) {esc(listed)}{more} had fewer training images "
                  "(the fewest in any split, in brackets) and used all of them.", ""]
    found = analysis.crossovers[dataset]
    if "reason" not in found:
        lines += [f"**Crossover:** from {found['size']} training images per class (~{found['per_class']:.0f} "
                  f"used), {esc(found['cnn'])} is significantly better than {esc(found['classical'])}, "
                  f"the best classical estimator there (macro-F1 {found['difference']:+.3f}, corrected "
                  f"paired t-test p = {found['p_value']:.3g}).", ""]
    elif found.get("untested"):
        differences = ", ".join(f"{t['difference']:+.3f} at {t['size']}" for t in found["tried"])
        lines += [f"**Crossover:** {found['reason']} (use more folds, or --repeats 3 or more). The best "
                  f"CNN minus the best classical estimator, in macro-F1: {differences}.", ""]
    elif found.get("tried"):
        last = found["tried"][-1]
        lines += [f"**Crossover:** not reached within the sizes run: at {last['size']} per class the best "
                  f"CNN, {esc(last['cnn'])}, is {last['difference']:+.3f} macro-F1 from "
                  f"{esc(last['classical'])} (p = {last['p_value']:.3g}).", ""]
    else:
        lines += [f"**Crossover:** {found['reason']}.", ""]
    lines += _pretrained_lines(pretrained_gaps(frame))
    doubt = _crossover_doubt(flagged, found)
    if doubt:
        lines += [f"{MARK} {doubt}", ""]
    if plot is not None:
        lines += [f"![{esc(dataset)}: macro-F1 and fit time against training images per class]"
                  f"({plot.as_posix()})", ""]
    return lines


def _pretrained_lines(gaps):
    """The pretrained family against both from-scratch families, size by size (a table)."""
    if not gaps:
        return []

    def versus(pair):
        if pair is None:
            return "-"
        name, difference, p = pair
        return f"{difference:+.3f} vs {esc(name)} (p = {p:.2g})"

    rows = [[f"{g['size']} (~{g['per_class']:.0f}/class)" if g["size"] == ALL else str(g["size"]),
             esc(g["pretrained"]), versus(g.get("cnn")), versus(g.get("classical"))] for g in gaps]
    return ["The pretrained family (networks trained on external data) against both from-scratch "
            "families: its best estimator's macro-F1 minus the best CNN's and the best classical "
            "estimator's on the same folds (corrected paired t-test).", "",
            table(rows, ["size", "best pretrained", "minus best CNN", "minus best classical"]), ""]


def _crossover_doubt(flagged, found):
    """What the flagged trainings (rows of a size_frame with flagged folds) can do to the
    crossover, or None when they cannot move it: a CNN that trained badly below the crossover
    (or anywhere, when none was found) might win from a smaller size; a classical estimator
    that trained badly from the crossover on might keep up to a larger one."""
    at = np.inf if "reason" in found or found["size"] == ALL else found["size"]
    cnn = flagged[(flagged["family"] == "cnn") & (flagged["order"] < at)]
    classical = flagged[(flagged["family"] == "classical") & (flagged["order"] >= at)]
    if "reason" in found and len(cnn):
        return ("A CNN's training failed its checks (listed above): with fuller training it might "
                "win within the sizes run.")
    parts = []
    if len(cnn):
        parts.append("a CNN's training failed its checks below it, so with fuller training the CNN "
                     "might win from a smaller size")
    if len(classical):
        parts.append("a classical estimator's training failed its checks from it on, so with fuller "
                     "training it might keep up to a larger size")
    return f"The crossover is not settled: {' and '.join(parts)} (listed above)." if parts else None


def _size_cell(row):
    """One learning-curve table cell: mean [CI]; fit seconds; and the flagged folds."""
    text = (f"{row['f1_macro_mean']:.3f} [{row['f1_macro_low']:.3f}, {row['f1_macro_high']:.3f}]; "
            f"fit {row['fit_seconds']:.2g} s")
    return text + (f" {MARK} {row['flagged']}/{row['folds']}" if row["flagged"] else "")


def plot_args(frame):
    """The plain data `benchmark.reporting.plots.training_size_plot` draws from a size_frame."""
    return [(estimator, group.iloc[0]["family"], list(group["per_class"]), list(group["f1_macro_mean"]),
             list(group["f1_macro_low"]), list(group["f1_macro_high"]), list(group["fit_seconds"]))
            for estimator, group in frame.groupby("estimator", sort=False)]
