"""The report's account of `run --tune`: what each search chose, what it cost, and whether
tuning beat the defaults on the same test folds."""

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


def _verdict(test, alpha):
    if test.p_value != test.p_value:  # NaN: too few folds
        return "no test (too few folds)"
    if test.p_value >= alpha:
        return f"no difference (p {test.p_value:.2g})"
    return f"{'tuned' if test.mean_difference > 0 else 'defaults'} better (p {test.p_value:.2g})"


def _params(params):
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items())


def tuning_section(dataset, stored, alpha=ALPHA):
    """The dataset's "Tuning" subsection (no lines when none of its cells was tuned)."""
    cells = tuned_cells(stored, dataset)
    if not cells:
        return []
    gains = tuning_gain(cells)
    rows = []
    for estimator in dict.fromkeys(c.estimator for c in cells):
        runs = [c for c in cells if c.estimator == estimator]
        tuned, default, test = gains.get(estimator, (None, None, None))
        rows.append([
            esc(estimator),
            "" if tuned is None else f"{tuned:.3f}", "" if default is None else f"{default:.3f}",
            "" if test is None else f"{test.mean_difference:+.3f}",
            "" if test is None else _verdict(test, alpha),
            f"{np.mean([c.tuning.get('seconds', 0) for c in runs]):.2f}",
            f"{np.mean([c.fit_seconds or 0 for c in runs]):.2f}",
            f"{sum(bool(c.tuning.get('chose_default')) for c in runs)}/{len(runs)}",
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
    worse = [e for e, (_, _, t) in gains.items() if t.p_value == t.p_value
             and t.p_value < alpha and t.mean_difference < 0]
    if worse:
        lines += [f"Tuning lost to the defaults on this dataset for {', '.join(map(esc, worse))}: "
                  "the inner cross-validation of the training fold did not predict the test "
                  "fold (small folds make it noisy).", ""]
    fold_rows = []
    for c in sorted(cells, key=lambda c: (c.estimator, c.fold)):
        t = c.tuning
        default_inner = next((x["inner_f1"] for x in t.get("candidates", [])
                              if x["params"] == t.get("default")), None)
        chosen = t.get("fallback") or _params(t.get("params") or {})
        fold_rows.append([esc(c.estimator), c.fold, esc(chosen),
                          "" if t.get("inner_f1") is None else f"{t['inner_f1']:.3f}",
                          "" if default_inner is None else f"{default_inner:.3f}",
                          len(t.get("candidates", [])) + t.get("failed", 0)])
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
