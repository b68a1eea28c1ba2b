"""PNG plots for the Markdown report: plain data in, one small PNG written atomically out.

Figures are built with the object-oriented API (``matplotlib.figure.Figure``), so no pyplot
state or backend is touched. Every plotting function returns the written ``pathlib.Path``.
"""

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter

DPI = 100
MAX_INCHES = 10  # at DPI 100: at most 1000 px per side
EPSILON_SECONDS = 1e-3


# learning-curve lines by family: from-scratch CNNs dashed, pretrained networks dotted
FAMILY_STYLES = {"cnn": dict(linestyle="--", marker="s"), "pretrained": dict(linestyle=":", marker="^")}

def _text(s):
    """A title: '$' escaped so mathtext never parses it."""
    return str(s).replace("$", r"\$")


def _name(s):
    """An estimator/dataset/class name on one line, '$' escaped."""
    return _text(s).replace("\r", " ").replace("\n", " ")


def _figure(width, height):
    return Figure(figsize=(min(width, MAX_INCHES), min(height, MAX_INCHES)), dpi=DPI,
                  layout="constrained")


def _save(fig, path):
    """Write fig as PNG to path via a temp file in the same directory and os.replace; with
    `path` None, return the figure itself (a notebook shows it; see benchmark.api)."""
    if path is None:
        return fig
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(fig)}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=DPI)
        os.replace(tmp, path)
    except OSError as exc:  # (a full disk's error names no file)
        exc.filename, exc.filename2 = str(path), None
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path


def bar_chart(estimators, means, lows, highs, path, title, xlabel="macro-F1"):
    """Horizontal bars in the given order (first on top), error bars from lows..highs (NaN: none)."""
    means, lows, highs = (np.asarray(a, dtype=float) for a in (means, lows, highs))
    n = len(estimators)
    fig = _figure(7, 1.2 + 0.3 * n)
    ax = fig.add_subplot()
    y = np.arange(n)
    ax.barh(y, np.nan_to_num(means), color="tab:blue", alpha=0.8)
    has_err = np.isfinite(means) & np.isfinite(lows) & np.isfinite(highs)
    if has_err.any():
        err = [np.clip(means - lows, 0, None)[has_err], np.clip(highs - means, 0, None)[has_err]]
        ax.errorbar(means[has_err], y[has_err], xerr=err, fmt="none", ecolor="k", capsize=3)
    finite = np.concatenate([a[np.isfinite(a)] for a in (means, lows, highs)])
    right = 1.0 if finite.size == 0 or finite.max() <= 1 else finite.max() * 1.05
    left = min(0.0, finite.min() * 1.05) if finite.size else 0.0
    ax.set_xlim(left, right)
    for yi, m, hi in zip(y, means, np.where(has_err, highs, means)):
        ax.text(hi if math.isfinite(hi) else 0, yi, f" {m:.3f}" if math.isfinite(m) else " n/a",
                va="center", ha="left", fontsize=8)
    ax.set_yticks(y, [_name(e) for e in estimators], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(_text(xlabel))
    ax.set_title(_text(title))
    return _save(fig, path)


def confusion_matrix_plot(y_true, y_pred, labels, path, title):
    """Row-normalized confusion matrix (rows = true class); percentages annotated up to 20 classes."""
    from sklearn.metrics import confusion_matrix

    labels = list(labels)
    counts = confusion_matrix(y_true, y_pred, labels=labels).astype(float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    n = len(labels)
    side = max(4.0, 2.0 + 0.35 * n)
    fig = _figure(side + 1, side)
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02, format=PercentFormatter(1),
                 label="% of true class")
    fontsize = 8 if n <= 20 else max(3.0, 8 * 20 / n)
    names = [_name(c) for c in labels]
    ax.set_xticks(range(n), names, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(n), names, fontsize=fontsize)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for (i, j), v in np.ndenumerate(shares):
            if counts[i, j]:
                ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if v > 0.5 else "black")
    ax.set_title(_text(title))
    return _save(fig, path)


_PANELS = (("loss", "loss"), ("accuracy", "accuracy"))


def learning_curves(history, path, title):
    """Loss and accuracy vs epoch per estimator: mean over folds, min..max band; val_ dashed."""
    fig = _figure(10, 4.5)
    axes = fig.subplots(1, 2)
    estimators = list(dict.fromkeys(history["estimator"]))
    colors = [f"C{i % 10}" for i in range(len(estimators))]
    for ax, (metric, ylabel) in zip(axes, _PANELS):
        for est, color in zip(estimators, colors):
            for name, style in ((metric, "-"), (f"val_{metric}", "--")):
                rows = history[(history["estimator"] == est) & (history["metric"] == name)]
                if rows.empty:
                    continue
                stats = rows.groupby("epoch")["value"].agg(["mean", "min", "max"]).sort_index()
                ax.plot(stats.index, stats["mean"], style, color=color, linewidth=1.5)
                ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.15,
                                linewidth=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if not ax.lines:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    handles = [Line2D([], [], color=c, label=_name(e)) for e, c in zip(estimators, colors)]
    handles += [Line2D([], [], color="grey", linestyle="-", label="training"),
                Line2D([], [], color="grey", linestyle="--", label="inner validation")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(4, len(handles)), fontsize=8)
    fig.suptitle(_text(title))
    return _save(fig, path)


def pareto_front(fit_seconds, scores):
    """Indices of the points no other point dominates (faster-or-equal and better-or-equal, one
    strictly), ordered by fit time then score (best first); NaN points are never on the front."""
    t = np.asarray(fit_seconds, dtype=float)
    s = np.asarray(scores, dtype=float)
    ok = np.flatnonzero(np.isfinite(t) & np.isfinite(s))
    front = [
        i for i in ok
        if not any(t[j] <= t[i] and s[j] >= s[i] and (t[j] < t[i] or s[j] > s[i]) for j in ok)
    ]
    return sorted((int(i) for i in front), key=lambda i: (t[i], -s[i], i))


def pareto_plot(estimators, fit_seconds, scores, path, title, ylabel="macro-F1"):
    """Score vs fit time (log x) with the Pareto front; returns (path, front names by fit time)."""
    estimators = list(estimators)
    t = np.clip(np.asarray(fit_seconds, dtype=float), EPSILON_SECONDS, None)
    s = np.asarray(scores, dtype=float)
    front = pareto_front(t, s)
    fig = _figure(8, 5.5)
    ax = fig.add_subplot()
    ax.scatter(t, s, color="tab:grey", s=25, zorder=2)
    if front:
        ax.step(t[front], s[front], where="post", color="tab:red", linewidth=1.2, zorder=1)
        ax.scatter(t[front], s[front], color="tab:red", s=45, zorder=3, label="Pareto front")
        ax.legend(loc="lower right", fontsize=8)
    for name, x, y in zip(estimators, t, s):
        if math.isfinite(x) and math.isfinite(y):
            ax.annotate(_name(name), (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("fit seconds (log scale)")
    ax.set_ylabel(_text(ylabel))
    ax.grid(alpha=0.3)
    ax.set_title(_text(title))
    return _save(fig, path), [estimators[i] for i in front]


def cd_diagram(mean_ranks, pvalues, path, title, alpha=0.05):
    """Critical-difference diagram: mean ranks (pandas Series by estimator) and a symmetric
    p-value DataFrame; estimators joined by a bar do not differ significantly at alpha."""
    import pandas as pd
    import scikit_posthocs as sp

    ranks = pd.Series(mean_ranks, dtype=float)
    names = list(ranks.index)
    sig = pd.DataFrame(pvalues).reindex(index=names, columns=names).astype(float).fillna(1.0)
    shown = [_name(n) for n in names]
    ranks.index = shown
    sig.index = sig.columns = shown
    fig = _figure(8, 1.5 + 0.35 * len(names))
    ax = fig.add_subplot()
    sp.critical_difference_diagram(ranks=ranks, sig_matrix=sig, alpha=alpha, ax=ax,
                                   label_props={"fontsize": 8})
    ax.set_title(_text(title), pad=20)
    return _save(fig, path)


def training_size_plot(lines, path, title):
    """Macro-F1 (with its interval) and fit seconds against training images per class, log x,
    one line per estimator: `lines` = [(estimator, family, per_class, means, lows, highs,
    fit_seconds)]; CNNs dashed with square markers, other families solid with circles."""
    fig = _figure(10, 4.2)
    score, cost = fig.subplots(1, 2)
    for estimator, family, x, means, lows, highs, seconds in lines:
        x, means, lows, highs = (np.asarray(a, dtype=float) for a in (x, means, lows, highs))
        style = FAMILY_STYLES.get(family, dict(linestyle="-", marker="o"))
        drawn = score.plot(x, means, label=f"{_name(estimator)} ({_name(family)})", **style)[0]
        ok = np.isfinite(lows) & np.isfinite(highs)
        if ok.any():
            score.fill_between(x[ok], np.clip(lows[ok], 0, 1), np.clip(highs[ok], 0, 1), color=drawn.get_color(), alpha=0.12)
        cost.plot(x, np.maximum(np.asarray(seconds, dtype=float), EPSILON_SECONDS), color=drawn.get_color(), **style)
    score.set_xscale("log")
    score.set_xlabel("training images per class")
    score.set_ylabel("macro-F1 (mean, 95% CI)")
    score.set_title(_text(title), fontsize=10)
    score.legend(fontsize=7, loc="lower right")
    cost.set_xscale("log")
    cost.set_yscale("log")
    cost.set_xlabel("training images per class")
    cost.set_ylabel("fit seconds per fold")
    cost.set_title("cost of the gain", fontsize=10)
    return _save(fig, path)


def reliability_diagram(curves, n_bins, path, title):
    """Accuracy against top-label confidence in `n_bins` equal-width bins, one curve per
    (estimator, family, mean confidence of each non-empty bin, its accuracy, the counts of all
    `n_bins` bins, ECE) of `curves`, with the diagonal of perfect calibration; a lower panel
    shows each curve's share of test images per bin, so sparse bins (whose accuracy means
    little) are visible."""
    fig = _figure(6.5, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1, label="perfectly calibrated")
    edges = np.linspace(0, 1, n_bins + 1)
    for i, (estimator, family, confidence, accuracy, counts, ece) in enumerate(curves):
        color = f"C{i % 10}"
        counts = np.asarray(counts, dtype=float)
        top.plot(confidence, accuracy, "o-", color=color, markersize=4, linewidth=1.5,
                 label=f"{_name(estimator)} ({_name(family)}), ECE {ece:.3f}")
        bottom.stairs(counts / max(counts.sum(), 1), edges, color=color, linewidth=1.2)
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.grid(alpha=0.3)
    top.legend(loc="best", fontsize=8)
    bottom.set_xlabel(f"confidence of the top class ({n_bins} bins)")
    bottom.set_ylabel("share of images")
    bottom.yaxis.set_major_formatter(PercentFormatter(1))
    bottom.grid(alpha=0.3)
    top.set_title(_text(title))
    return _save(fig, path)
