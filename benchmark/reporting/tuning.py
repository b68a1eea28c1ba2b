"""The report's account of `run --tune`: what each search chose, what it cost, and whether
tuning beat the defaults on the same test folds. `tuning_frames` computes it (per estimator
and per fold) for the run's Analysis; `tuning_section` renders a dataset's part of it."""

import numpy as np

from estimators.tuning import TuningBudget

from benchmark.reporting.markdown import escape_markdown as esc
from benchmark.reporting.markdown import table
from benchmark.reporting.stats import ALPHA, corrected_ttest


def tuning_fact(config):
    """One line for the run's facts: how the run was tuned, or that it was not."""
    tune = (config or {}).get("tune")
    if not tune:
        return ("not tuned: every estimator at its defaults (`run --tune` gives each estimator "
                "that declares a search space the same search budget)")
    return (f"tuned: {TuningBudget(**tune).describe()}, for every estimator that declares a "
            "search space; the outer test fold is never seen by the search")


def tuned_cells(stored, dataset):
    return [c for c in stored.cells
            if c.dataset == dataset and c.status == "ok" and c.tuning is not None]


def tuning_gain(cells, metric="f1_macro"):
    """{estimator: (tuned mean, default mean, PairedTest)} over the folds of `cells` that hold
    the defaults' scores on the same test fold."""
    by_estimator = {}
    for c in cells:
        if c.default_scores:
            by_estimator.setdefault(c.estimator, []).append(c)
    gains = {}
    for estimator, runs in by_estimator.items():
        tuned = [c.scores[metric] for c in runs]
        default = [c.default_scores[metric] for c in runs]
        n_train = np.mean([c.n_train or 0 for c in runs])
        n_test = np.mean([c.n_test or 0 for c in runs])
        gains[estimator] = (float(np.mean(tuned)), float(np.mean(default)),
                            corrected_ttest(tuned, default, max(n_train, 1), max(n_test, 1)))
    return gains


def _params(params):
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items())


TUNING_COLUMNS = ["dataset", "estimator", "folds", "tuned_f1_macro", "default_f1_macro",
                  "difference", "p_value", "tuning_seconds", "final_fit_seconds",
                  "folds_keeping_defaults"]
FOLD_COLUMNS = ["dataset", "estimator", "fold", "params", "fallback", "inner_f1",
                "default_inner_f1", "candidates", "tuning_seconds"]


def tuning_frames(stored, datasets):
    """(per estimator, per fold) DataFrames of the tuned cells of `datasets`, in that order.

    Per (dataset, estimator): its tuned folds; the mean macro-F1 of the tuned and of the default
    parameters on the folds that scored both, their difference and the corrected resampled
    t-test's p (NaN where no fold holds the defaults' scores); the mean seconds of the search and
    of the final fit; the folds whose search kept the defaults. Per fold: the parameters chosen
    (or why the search fell back to the defaults), the inner-CV macro-F1 of the choice and of
    the defaults, and the candidates tried (failed ones included)."""
    import pandas as pd

    rows, folds = [], []
    for dataset in datasets:
        cells = tuned_cells(stored, dataset)
        gains = tuning_gain(cells)
        for estimator in dict.fromkeys(c.estimator for c in cells):
            runs = [c for c in cells if c.estimator == estimator]
            tuned, default, test = gains.get(estimator, (np.nan, np.nan, None))
            rows.append({
                "dataset": dataset, "estimator": estimator, "folds": len(runs),
                "tuned_f1_macro": tuned, "default_f1_macro": default,
                "difference": np.nan if test is None else test.mean_difference,
                "p_value": np.nan if test is None else test.p_value,
                "tuning_seconds": float(np.mean([c.tuning.get("seconds", 0) for c in runs])),
                "final_fit_seconds": float(np.mean([c.fit_seconds or 0 for c in runs])),
                "folds_keeping_defaults": sum(bool(c.tuning.get("chose_default")) for c in runs),
            })
        for c in sorted(cells, key=lambda c: (c.estimator, c.fold)):
            t = c.tuning
            folds.append({
                "dataset": dataset, "estimator": c.estimator, "fold": c.fold,
                "params": t.get("params") or {}, "fallback": t.get("fallback"),
                "inner_f1": t.get("inner_f1"),
                "default_inner_f1": next((x["inner_f1"] for x in t.get("candidates", [])
                                          if x["params"] == t.get("default")), None),
                "candidates": len(t.get("candidates", [])) + t.get("failed", 0),
                "tuning_seconds": t.get("seconds"),
            })
    return pd.DataFrame(rows, columns=TUNING_COLUMNS), pd.DataFrame(folds, columns=FOLD_COLUMNS)


def _verdict_of(row, alpha):
    if row["p_value"] != row["p_value"]:  # NaN: too few folds
        return "no test (too few folds)"
    if row["p_value"] >= alpha:
        return f"no difference (p {row['p_value']:.2g})"
    return f"{'tuned' if row['difference'] > 0 else 'defaults'} better (p {row['p_value']:.2g})"


def _number(value, text):
    return "" if value is None or value != value else text.format(value)


def tuning_section(dataset, analysis, alpha=ALPHA):
    """The dataset's "Tuning" subsection (no lines when none of its cells was tuned), rendered
    from `analysis.tuning` and `analysis.tuning_folds` (tuning_frames)."""
    estimators = analysis.tuning[analysis.tuning["dataset"] == dataset]
    if estimators.empty:
        return []
    rows = []
    for _, r in estimators.iterrows():
        tested = r["difference"] == r["difference"]  # some fold held the defaults' scores
        rows.append([
            esc(r["estimator"]), f"{r['tuned_f1_macro']:.3f}" if tested else "",
            f"{r['default_f1_macro']:.3f}" if tested else "",
            f"{r['difference']:+.3f}" if tested else "", _verdict_of(r, alpha) if tested else "",
            f"{r['tuning_seconds']:.2f}", f"{r['final_fit_seconds']:.2f}",
            f"{r['folds_keeping_defaults']}/{r['folds']}",
        ])
    lines = ["### Tuning", "",
             "Each tuned estimator searched its declared space inside every training fold (inner "
             "stratified cross-validation, macro-F1; the defaults are always one candidate) and was "
             "then refitted on the whole training fold with the parameters chosen. *tuned* and "
             "*defaults* are macro-F1 on the same test folds; the paired test is the corrected "
             "resampled t-test. *tuning s* is the search alone, *final fit s* the refit (the "
             "leaderboard's fit s).", "",
             table(rows, ["estimator", "tuned", "defaults", "tuned - defaults", "paired test",
                          "tuning s", "final fit s", "folds keeping the defaults"]), ""]
    worse = estimators[(estimators["p_value"] < alpha) & (estimators["difference"] < 0)]["estimator"]
    if len(worse):
        lines += [f"Tuning lost to the defaults on this dataset for {', '.join(map(esc, worse))}: "
                  "the inner cross-validation of the training fold did not predict the test "
                  "fold (small folds make it noisy).", ""]
    fold_rows = []
    for _, f in analysis.tuning_folds[analysis.tuning_folds["dataset"] == dataset].iterrows():
        fold_rows.append([esc(f["estimator"]), f["fold"], esc(f["fallback"] or _params(f["params"])),
                          _number(f["inner_f1"], "{:.3f}"), _number(f["default_inner_f1"], "{:.3f}"),
                          f["candidates"]])
    lines += ["<details><summary>Parameters chosen in each fold</summary>", "",
              table(fold_rows, ["estimator", "fold", "chosen parameters", "inner F1 chosen",
                                "inner F1 defaults", "candidates"]), "", "</details>", ""]
    return lines


def tuning_problems(stored):
    """Problems-section lines for cells whose search fell back to the defaults, or lost
    candidates to failed fits."""
    lines = []
    for c in stored.cells:
        t = c.tuning if c.status == "ok" else None
        if not t:
            continue
        if t.get("fallback"):
            lines.append(f"{c.dataset} / {c.estimator} / fold {c.fold}: not tuned: {t['fallback']}")
        elif t.get("failed"):
            lines.append(f"{c.dataset} / {c.estimator} / fold {c.fold}: {t['failed']} tuning "
                         "candidate(s) failed to fit and were skipped")
    return lines
