"""Significance tests for the leaderboards: what is significantly better, and what is not.

Within one dataset, estimators are compared fold by fold with the corrected resampled t-test of
Nadeau & Bengio (2003), Holm-adjusted against the best estimator. Across datasets, estimators
are ranked and compared with the Friedman test, the Nemenyi post-hoc test and a
critical-difference diagram (Demšar 2006): `rank_estimators` computes that comparison once and
returns a `Ranking`, which the report and the plots render.

References:
  C. Nadeau, Y. Bengio (2003). Inference for the generalization error. Machine Learning 52, 239-281.
  R. Bouckaert, E. Frank (2004). Evaluating the replicability of significance tests for comparing
    learning algorithms. PAKDD 2004, LNCS 3056, 3-12.
  S. Holm (1979). A simple sequentially rejective multiple test procedure. Scand. J. Stat. 6, 65-70.
  J. Demšar (2006). Statistical comparisons of classifiers over multiple data sets. JMLR 7, 1-30.
  R. Iman, J. Davenport (1980). Approximations of the critical region of the Friedman statistic.
    Communications in Statistics A9(6), 571-595.
"""

from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
MIN_FOLDS = 3
_TOL = 1e-12  # score differences this small count as exact ties / a constant difference


class Interval(NamedTuple):
    mean: float
    std: float  # sample standard deviation over folds (ddof=1)
    low: float
    high: float
    n: int


class PairedTest(NamedTuple):
    statistic: float
    p_value: float
    mean_difference: float  # mean of a - b
    n: int
    note: str


@dataclass(frozen=True)
class FriedmanResult:
    statistic: float
    p_value: float
    n_datasets: int
    n_estimators: int
    mean_ranks: pd.Series  # rank 1 = best, averaged over datasets, ascending
    iman_davenport: float
    iman_davenport_p: float
    reason: Optional[str]  # None when the test ran, else why it did not (p_value is then NaN)


def _correction(n, n_train, n_test):
    """Nadeau & Bengio's variance factor 1/n + n_test/n_train (n_train, n_test: mean over folds)."""
    return 1.0 / n + float(np.mean(n_test)) / float(np.mean(n_train))


def fold_interval(values, n_train, n_test, confidence=0.95) -> Interval:
    """Confidence interval of the mean score over folds, with Nadeau & Bengio's (2003) correction.

    The folds share training images, so their scores are positively correlated and the naive
    t interval (variance s^2/n) is too narrow. The corrected variance is
    (1/n + n_test/n_train) * s^2, and the half width is t_{(1+confidence)/2, n-1} times its
    square root. (The correction was derived for repeated random train/test splits; for k-fold
    cross-validation it is the usual heuristic, Bouckaert & Frank 2004.) With fewer than 2
    folds, std, low and high are NaN.
    """
    x = np.asarray(values, dtype=float)
    n = x.size
    mean = float(x.mean()) if n else float("nan")
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), float("nan"), n)
    s = float(x.std(ddof=1))
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * np.sqrt(_correction(n, n_train, n_test) * s**2)
    return Interval(mean, s, mean - half, mean + half, n)


def corrected_ttest(a, b, n_train, n_test) -> PairedTest:
    """Nadeau & Bengio's (2003) corrected resampled t-test on paired per-fold scores, two-sided.

    t = mean(d) / sqrt((1/n + n_test/n_train) * var(d)), d = a - b over the same folds, with
    n - 1 degrees of freedom. With fewer than MIN_FOLDS folds there is no test (p NaN); when
    a and b are identical on every fold p = 1; when the difference is the same nonzero value
    on every fold (zero variance) p = 0.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = d.size
    mean = float(d.mean()) if n else float("nan")
    if n < MIN_FOLDS:
        note = f"too few folds ({n}) for a test: need at least {MIN_FOLDS}"
        return PairedTest(float("nan"), float("nan"), mean, n, note)
    if np.all(np.abs(d) <= _TOL):
        return PairedTest(0.0, 1.0, 0.0, n, "identical on every fold")
    if np.ptp(d) <= _TOL:
        return PairedTest(float(np.copysign(np.inf, mean)), 0.0, mean, n, "same difference on every fold")
    statistic = mean / np.sqrt(_correction(n, n_train, n_test) * d.var(ddof=1))
    return PairedTest(float(statistic), float(2 * stats.t.sf(abs(statistic), n - 1)), mean, n, "")


def compare_to_best(scores, metric="f1_macro", alpha=ALPHA) -> pd.DataFrame:
    """Test every estimator of ONE dataset against the best one (highest mean `metric`).

    Each estimator is paired with the best on the folds both completed (status "ok") and
    tested with `corrected_ttest`; the k-1 p-values are Holm-adjusted (Holm 1979), NaN
    p-values left out. Ties for best go to the first estimator in order of appearance.
    Columns: estimator, is_best, mean_difference (estimator minus best), p_value, p_holm,
    significant (p_holm < alpha), note. One row per estimator, in the input's order.
    """
    columns = ["estimator", "is_best", "mean_difference", "p_value", "p_holm", "significant", "note"]
    if scores["dataset"].nunique() > 1:
        raise ValueError("compare_to_best takes the rows of one dataset")
    estimators = list(pd.unique(scores["estimator"]))
    ok = scores[(scores["status"] == "ok") & scores[metric].notna()]
    means = ok.groupby("estimator", sort=False)[metric].mean()
    if means.empty:
        return pd.DataFrame(columns=columns)
    best = means.idxmax()
    best_rows = ok.loc[ok["estimator"] == best, ["fold", metric, "n_train", "n_test"]]
    rows = []
    for name in estimators:
        if name == best:
            rows.append((name, True, 0.0, np.nan, ""))
        elif name not in means.index:
            rows.append((name, False, np.nan, np.nan, "no successful folds"))
        else:
            pair = ok.loc[ok["estimator"] == name, ["fold", metric]].merge(best_rows, on="fold")
            test = corrected_ttest(pair[f"{metric}_x"], pair[f"{metric}_y"],
                                   pair["n_train"].mean(), pair["n_test"].mean())
            rows.append((name, False, test.mean_difference, test.p_value, test.note))
    out = pd.DataFrame(rows, columns=["estimator", "is_best", "mean_difference", "p_value", "note"])
    out["p_holm"] = np.nan
    tested = out["p_value"].notna()
    if tested.any():
        out.loc[tested, "p_holm"] = holm(out.loc[tested, "p_value"])
    out["significant"] = (out["p_holm"] < alpha) & ~out["is_best"]
    return out[columns]


def holm(p_values):
    """Holm's (1979) step-down adjusted p-values, in the input's order.

    Written here rather than taken from statsmodels' `multipletests(method="holm")`, which
    gives the same values (tests/test_stats.py checks it) but runs a full `gc.collect()` on
    every call: 35 ms each, once per dataset in every report. The adjusted p-value of the i-th
    smallest of m p-values is max over j <= i of min(1, (m - j + 1) p_(j)).
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1)))
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


def iman_davenport(chi2, n_datasets, n_estimators):
    """Iman & Davenport's (1980) F_F = (N-1) chi2 / (N(k-1) - chi2) and its p-value.

    F_F follows the F distribution with (k-1, (k-1)(N-1)) degrees of freedom (Demšar 2006,
    section 3.2.2); it is less conservative than the Friedman chi-square.
    """
    n, k = n_datasets, n_estimators
    denominator = n * (k - 1) - chi2
    if denominator <= 0:  # perfect agreement between datasets
        return float("inf"), 0.0
    f = (n - 1) * chi2 / denominator
    return float(f), float(stats.f.sf(f, k - 1, (k - 1) * (n - 1)))


def _mean_ranks(matrix) -> pd.Series:
    """Rank estimators within each dataset (1 = highest score, ties averaged), mean over datasets."""
    return matrix.rank(axis=1, ascending=False, method="average").mean().sort_values(kind="stable")


def friedman(matrix, alpha=ALPHA) -> FriedmanResult:
    """Friedman test on a datasets x estimators matrix of mean scores (Demšar 2006, 3.2.2).

    Null hypothesis: all estimators are equivalent, so their mean ranks are equal. Also gives
    the Iman-Davenport F statistic. Instead of a test, `reason` explains (p NaN) when there are
    fewer than 3 estimators or 2 datasets, when even identical rankings on every dataset could
    not reach p < alpha, or when all estimators tie on every dataset.
    """
    n, k = matrix.shape
    ranks = _mean_ranks(matrix) if n else pd.Series(dtype=float)
    reason = None
    if k < 3:
        reason = "the Friedman test needs at least 3 estimators; with 2 use the per-dataset comparison"
    elif n < 2:
        reason = f"the Friedman test needs at least 2 datasets, got {n}"
    elif (p_min := stats.chi2.sf(n * (k - 1), k - 1)) >= alpha:
        reason = (f"with {n} datasets and {k} estimators even identical rankings on every dataset "
                  f"would give p = {p_min:.3g} >= {alpha:g}")
    elif (matrix.nunique(axis=1) == 1).all():
        reason = "all estimators tied on every dataset"
    if reason is not None:
        nan = float("nan")
        return FriedmanResult(nan, nan, n, k, ranks, nan, nan, reason)
    chi2, p = stats.friedmanchisquare(*(matrix[c].to_numpy(dtype=float) for c in matrix.columns))
    f, f_p = iman_davenport(chi2, n, k)
    return FriedmanResult(float(chi2), float(p), n, k, ranks, f, f_p, None)


def nemenyi(matrix) -> pd.DataFrame:
    """Nemenyi post-hoc p-values for every pair of estimators (Demšar 2006, 3.2.2).

    `matrix` is datasets (blocks, rows) x estimators (columns); the p-values depend only on
    absolute differences of mean ranks, so the score direction does not matter.
    """
    import scikit_posthocs  # imported here: it imports pyplot and seaborn

    return scikit_posthocs.posthoc_nemenyi_friedman(matrix.astype(float))


def critical_difference(k, n, alpha=ALPHA) -> float:
    """Nemenyi critical difference of mean ranks, q_alpha * sqrt(k(k+1) / (6N)) (Demšar 2006).

    q_alpha is the studentized range quantile for k groups and infinite df, divided by sqrt(2).
    """
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    return float(q * np.sqrt(k * (k + 1) / (6 * n)))


def indistinguishable_groups(mean_ranks, pvalues, alpha=ALPHA) -> list:
    """Maximal runs of rank-consecutive estimators with no significant pair (p >= alpha).

    In the order of `mean_ranks` (best first), runs of length >= 2 not contained in another
    run: the bars of a critical-difference diagram (Demšar 2006, figure 1).
    """
    names = list(mean_ranks.index)
    groups, reach = [], 0
    for i in range(len(names)):
        end = i
        while end + 1 < len(names) and all(pvalues.loc[names[j], names[end + 1]] >= alpha
                                           for j in range(i, end + 1)):
            end += 1
        if end > i and end + 1 > reach:
            groups.append(names[i:end + 1])
            reach = end + 1
    return groups


# --- the cross-dataset comparison, computed once (autorank's shape: compute, then render) -----

@dataclass
class Ranking:
    """The cross-dataset comparison, as `rank_estimators` computes it: the score matrix, mean
    ranks and Friedman test (with the reason when it cannot apply), and after a rejection the
    Nemenyi p-values, groups and critical difference. report.md and the critical-difference
    diagram only render it."""

    matrix: pd.DataFrame  # datasets x estimators (complete ones only), mean macro-F1
    left_out: list  # estimators with failed or missing cells, not in the tests
    friedman: object = None  # FriedmanResult
    pvalues: pd.DataFrame = None  # Nemenyi pairwise p-values, when the Friedman test rejects
    groups: list = field(default_factory=list)  # estimators not significantly different
    cd: float = None  # Nemenyi critical difference in mean rank


def score_matrix(summary, metric="f1_macro_mean"):
    """Datasets x estimators of the estimators that ran every fold of every dataset.

    The input of the cross-dataset tests, which need a complete table; returns (matrix,
    [estimators left out because some of their cells failed or are missing]).
    """
    complete = summary[summary["folds_ok"] == summary["folds"]]
    matrix = complete.pivot(index="dataset", columns="estimator", values=metric)
    order = list(summary["estimator"].drop_duplicates())
    matrix = matrix.reindex(index=list(summary["dataset"].drop_duplicates()),
                            columns=[e for e in order if e in matrix.columns])
    full = matrix.dropna(axis=1)
    return full, [e for e in order if e not in full.columns]


def rank_estimators(summary, alpha=ALPHA):
    """Friedman test over datasets and, when it rejects, Nemenyi groups (Demšar 2006)."""
    if summary.empty:
        return Ranking(pd.DataFrame(), [])
    matrix, left_out = score_matrix(summary)
    ranking = Ranking(matrix, left_out)
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        return ranking
    ranking.friedman = friedman(matrix, alpha)
    k, n = matrix.shape[1], matrix.shape[0]
    if ranking.friedman.reason is not None:
        return ranking
    if ranking.friedman.p_value < alpha:  # post-hoc test only after a rejection (Demšar 2006)
        ranking.pvalues = nemenyi(matrix)
        ranking.cd = critical_difference(k, n, alpha)
        ranking.groups = indistinguishable_groups(ranking.friedman.mean_ranks, ranking.pvalues, alpha)
    return ranking
