"""Compare two stored runs: per (dataset, estimator), the change in score and whether it is real.

When both runs scored the same dataset (same fingerprint) on the same test folds, the folds are
paired and the corrected resampled t-test of Nadeau and Bengio applies (as for the per-dataset
comparison with the best estimator). Otherwise the folds are independent samples and Welch's
t-test is used, which says nothing about split-to-split variation the two runs share.
"""

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from benchmark.reporting.stats import ALPHA, MIN_FOLDS, corrected_ttest


def _folds(stored, metric):
    """{(dataset, estimator): DataFrame[fold, score, n_train, n_test, test_key]} of ok cells."""
    groups = {}
    for c in stored.cells:
        if c.status != "ok" or metric not in c.scores:
            continue
        key = hash(tuple(c.test_index)) if c.test_index is not None else None
        groups.setdefault((c.dataset, c.estimator), []).append(
            (c.fold, c.scores[metric], c.n_train, c.n_test, key))
    return {k: pd.DataFrame(v, columns=["fold", "score", "n_train", "n_test", "test_key"]).set_index("fold")
            for k, v in groups.items()}


def _fingerprint(stored, dataset):
    return ((stored.meta.get("datasets") or {}).get(dataset) or {}).get("fingerprint")


def _train_size(stored, dataset):
    """The most training images per class of the cells `stored` ranks on `dataset` (None: the
    whole training part; see results.ranked_size)."""
    from benchmark.reporting.results import ranked_size

    return ranked_size(((stored.meta.get("plan") or {}).get(dataset)) or {})


def _size_note(run_a, run_b, dataset):
    """"trained on at most 10 vs all images per class" when the runs' ranked cells of `dataset`
    were fitted on different training sizes (`run --train-sizes`), else ""."""
    sizes = [_train_size(run, dataset) for run in (run_a, run_b)]
    if sizes[0] == sizes[1]:
        return ""
    shown = ["all" if size is None else f"at most {size}" for size in sizes]
    return f"trained on {shown[0]} vs {shown[1]} images per class"


def compare_runs(run_a, run_b, metric="f1_macro", alpha=ALPHA):
    """One row per (dataset, estimator) in either run: means, difference (B - A), test, p.
    Each run's leaderboard cells are compared (for `run --train-sizes`, its ranked size); the
    note says when the two were trained on different numbers of images per class."""
    a, b = _folds(run_a, metric), _folds(run_b, metric)
    rows = []
    for key in list(a) + [k for k in b if k not in a]:
        dataset, estimator = key
        row = {"dataset": dataset, "estimator": estimator, "mean_a": np.nan, "mean_b": np.nan,
               "difference": np.nan, "test": "", "p_value": np.nan, "significant": False, "note": ""}
        fa, fb = a.get(key), b.get(key)
        if fa is not None:
            row["mean_a"] = fa["score"].mean()
        if fb is not None:
            row["mean_b"] = fb["score"].mean()
        if fa is None or fb is None:
            row["note"] = f"only in run {'A' if fb is None else 'B'}"
            rows.append(row)
            continue
        row["difference"] = row["mean_b"] - row["mean_a"]
        joined = fa.add_suffix("_a").join(fb.add_suffix("_b"), how="inner")
        fingerprint = _fingerprint(run_a, dataset)
        same_data = fingerprint is not None and fingerprint == _fingerprint(run_b, dataset)
        paired = (same_data and len(joined) == len(fa) == len(fb)
                  and (joined["test_key_a"] == joined["test_key_b"]).all())
        if paired:
            test = corrected_ttest(joined["score_b"].to_numpy(), joined["score_a"].to_numpy(),
                                   joined["n_train_a"].mean(), joined["n_test_a"].mean())
            row.update(test="paired corrected t-test", p_value=test.p_value, note=test.note)
        elif min(len(fa), len(fb)) < MIN_FOLDS:
            row.update(test="none", note=f"too few folds for a test (need at least {MIN_FOLDS})")
        else:
            row["test"] = "Welch t-test (different splits or data)"
            if fa["score"].std() == 0 and fb["score"].std() == 0:
                row["p_value"] = 1.0 if row["difference"] == 0 else 0.0
            else:
                row["p_value"] = scipy_stats.ttest_ind(fb["score"], fa["score"], equal_var=False).pvalue
        row["significant"] = bool(row["p_value"] < alpha) if not pd.isna(row["p_value"]) else False
        row["note"] = "; ".join(part for part in (row["note"], _size_note(run_a, run_b, dataset)) if part)
        rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "estimator", "mean_a", "mean_b", "difference",
                                       "test", "p_value", "significant", "note"])


def comparison_table(frame, alpha=ALPHA):
    """Rows and headers for tabulate: one line per (dataset, estimator)."""
    def number(value, fmt):
        if pd.isna(value):
            return ""
        return format(0.0 if round(value, 3) == 0 else value, fmt)  # never "-0.000"

    rows = []
    for _, r in frame.iterrows():
        verdict = ""
        if not pd.isna(r["p_value"]):
            direction = "better" if r["difference"] > 0 else "worse"
            verdict = f"B {direction} (p {r['p_value']:.2g})" if r["significant"] else f"not sig. (p {r['p_value']:.2g})"
        rows.append([r["dataset"], r["estimator"], number(r["mean_a"], ".3f"), number(r["mean_b"], ".3f"),
                     number(r["difference"], "+.3f"), verdict, r["test"], r["note"]])
    return rows, ["dataset", "estimator", "A", "B", "B - A", f"alpha {alpha}", "test", "note"]
