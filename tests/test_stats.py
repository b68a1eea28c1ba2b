import numpy as np
import pandas as pd
import pytest
import scikit_posthocs
from scipy import stats
from statsmodels.stats.multitest import multipletests

from benchmark.reporting.stats import (
    compare_to_best, corrected_ttest, critical_difference, fold_interval,
    friedman, holm, iman_davenport, indistinguishable_groups, nemenyi,
)


def test_a_test_needs_three_folds_and_significance_is_at_five_percent():
    assert np.isnan(corrected_ttest([0.9, 0.8], [0.7, 0.6], 80, 20).p_value)
    assert corrected_ttest([0.9, 0.8, 0.85], [0.7, 0.6, 0.7], 80, 20).p_value < 0.05
    # 3 datasets x 3 estimators ranked alike everywhere: p = 0.0498, under 0.05 but not 0.049
    matrix = pd.DataFrame([[0.9, 0.8, 0.7]] * 3, columns=list("abc"))
    assert friedman(matrix).reason is None and friedman(matrix).p_value < 0.05
    assert "would give p = 0.0498" in friedman(matrix, alpha=0.049).reason


# --- one dataset: folds -------------------------------------------------------------------

def test_fold_interval_uses_corrected_variance():
    values = [0.80, 0.82, 0.84, 0.86, 0.88]
    iv = fold_interval(values, n_train=800, n_test=200)
    s2 = np.var(values, ddof=1)  # 0.001
    half = stats.t.ppf(0.975, 4) * np.sqrt((1 / 5 + 200 / 800) * s2)
    assert iv.n == 5
    assert iv.mean == pytest.approx(0.84)
    assert iv.std == pytest.approx(np.sqrt(0.001))
    assert (iv.low, iv.high) == pytest.approx((0.84 - half, 0.84 + half))
    assert half == pytest.approx(0.058897, abs=1e-6)
    naive = stats.t.ppf(0.975, 4) * np.sqrt(s2 / 5)
    assert iv.high - iv.mean > naive  # wider than the naive t interval


def test_fold_interval_with_one_fold_has_no_width():
    iv = fold_interval([0.7], n_train=100, n_test=50)
    assert iv.mean == 0.7 and iv.n == 1
    assert np.isnan(iv.std) and np.isnan(iv.low) and np.isnan(iv.high)


def test_corrected_ttest_matches_hand_computation(rng):
    a = rng.uniform(0.7, 0.9, size=5)
    b = a - rng.normal(0.02, 0.01, size=5)
    d = a - b
    t = d.mean() / np.sqrt((1 / 5 + 250 / 1000) * d.var(ddof=1))
    result = corrected_ttest(a, b, n_train=1000, n_test=250)
    assert result.n == 5 and result.note == ""
    assert result.mean_difference == pytest.approx(d.mean())
    assert result.statistic == pytest.approx(t)
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(t), 4))


def test_corrected_ttest_known_value():
    # d = 0.01..0.05: mean 0.03, s^2 = 2.5e-4, corrected variance 0.45 * 2.5e-4 -> t = 2*sqrt(2)
    d = np.array([0.01, 0.02, 0.03, 0.04, 0.05])
    result = corrected_ttest(d, np.zeros(5), n_train=800, n_test=200)
    assert result.statistic == pytest.approx(2 * np.sqrt(2))
    assert result.p_value == pytest.approx(2 * stats.t.sf(2 * np.sqrt(2), 4))
    assert 0.04 < result.p_value < 0.05
    flipped = corrected_ttest(np.zeros(5), d, n_train=800, n_test=200)
    assert flipped.statistic == pytest.approx(-2 * np.sqrt(2))
    assert flipped.p_value == pytest.approx(result.p_value)


def test_corrected_ttest_edge_cases():
    few = corrected_ttest([0.9, 0.8], [0.7, 0.6], 100, 25)
    assert np.isnan(few.p_value) and few.n == 2
    assert few.note == "too few folds (2) for a test: need at least 3"
    assert few.mean_difference == pytest.approx(0.2)

    same = corrected_ttest([0.9, 0.8, 0.7], [0.9, 0.8, 0.7], 100, 25)
    assert same.p_value == 1.0 and same.mean_difference == 0.0
    assert same.note == "identical on every fold"

    shifted = corrected_ttest([0.75, 0.75, 0.75], [0.5, 0.5, 0.5], 100, 25)
    assert shifted.p_value == 0.0 and shifted.statistic == np.inf
    assert shifted.mean_difference == pytest.approx(0.25)
    assert shifted.note == "same difference on every fold"


def _fold_rows(estimator, values, statuses=None, n_train=(80, 80, 81, 81, 82)):
    statuses = statuses or ["ok"] * len(values)
    return [
        {"dataset": "d", "estimator": estimator, "fold": k, "status": s, "f1_macro": v,
         "accuracy": v, "n_train": n_train[k], "n_test": 100 - n_train[k]}
        for k, (v, s) in enumerate(zip(values, statuses))
    ]


def test_compare_to_best():
    a = [0.90, 0.92, 0.88, 0.91, 0.93]
    b = [0.89, 0.90, 0.88, 0.90, 0.70]  # fold 4 failed: paired on folds 0-3
    c = [0.60, 0.62, 0.58, 0.61, 0.65]
    scores = pd.DataFrame(
        _fold_rows("c", c) + _fold_rows("a", a)
        + _fold_rows("b", b, ["ok", "ok", "ok", "ok", "failed"])
        + _fold_rows("d", [0.5, 0.5])  # only 2 folds: no test
        + _fold_rows("e", [0.1, 0.1, 0.1], ["failed"] * 3)
    )
    out = compare_to_best(scores)
    assert list(out.columns) == ["estimator", "is_best", "mean_difference", "p_value", "p_holm",
                                 "significant", "note"]
    assert list(out["estimator"]) == ["c", "a", "b", "d", "e"]
    out = out.set_index("estimator")
    assert out["is_best"].tolist() == [False, True, False, False, False]
    assert out.loc["a", "mean_difference"] == 0 and np.isnan(out.loc["a", "p_value"])
    assert not out.loc["a", "significant"] and out.loc["a", "note"] == ""

    pb = corrected_ttest(b[:4], a[:4], n_train=np.mean([80, 80, 81, 81]), n_test=np.mean([20, 20, 19, 19]))
    pc = corrected_ttest(c, a, n_train=80.8, n_test=19.2)
    assert out.loc["b", "p_value"] == pytest.approx(pb.p_value)
    assert out.loc["b", "mean_difference"] == pytest.approx(np.mean(np.subtract(b[:4], a[:4])))
    assert out.loc["c", "p_value"] == pytest.approx(pc.p_value)
    holm = multipletests([pc.p_value, pb.p_value], method="holm")[1]
    assert out.loc[["c", "b"], "p_holm"].tolist() == pytest.approx(list(holm))
    assert out.loc["c", "significant"] == (holm[0] < 0.05)
    assert out.loc["c", "significant"]  # 0.3 worse on every fold, a little noise
    assert not out.loc["b", "significant"]

    assert np.isnan(out.loc["d", "p_value"]) and np.isnan(out.loc["d", "p_holm"])
    assert not out.loc["d", "significant"]
    assert out.loc["d", "note"] == "too few folds (2) for a test: need at least 3"
    assert out.loc["e", "note"] == "no successful folds" and not out.loc["e", "significant"]


@pytest.mark.parametrize("p", [
    [0.01, 0.04, 0.03, 0.005], [0.5], [0.2, 0.2, 0.01, 0.9, 0.04], [0.6, 0.7, 0.8], [0.0, 1.0, 0.5],
    list(np.random.default_rng(0).uniform(0, 0.2, 25)),
])
def test_holm_equals_statsmodels(p):
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], abs=1e-15)


def test_compare_to_best_ties_go_to_first():
    scores = pd.DataFrame(_fold_rows("x", [0.8, 0.9, 0.7]) + _fold_rows("y", [0.9, 0.8, 0.7]))
    out = compare_to_best(scores)
    assert out["is_best"].tolist() == [True, False]


# --- several datasets: ranks ----------------------------------------------------------------

def _random_matrix(rng, n=10, k=4):
    return pd.DataFrame(rng.uniform(0.5, 1.0, size=(n, k)), index=[f"d{i}" for i in range(n)],
                        columns=[f"e{j}" for j in range(k)])


def test_friedman_matches_scipy_and_pandas(rng):
    m = _random_matrix(rng)
    result = friedman(m)
    chi2, p = stats.friedmanchisquare(*(m[c] for c in m.columns))
    assert result.reason is None
    assert (result.statistic, result.p_value) == pytest.approx((chi2, p))
    assert (result.n_datasets, result.n_estimators) == (10, 4)
    expected = m.rank(axis=1, ascending=False).mean().sort_values()
    pd.testing.assert_series_equal(result.mean_ranks, expected)
    assert result.mean_ranks.is_monotonic_increasing
    assert (result.iman_davenport, result.iman_davenport_p) == pytest.approx(iman_davenport(chi2, 10, 4))


def test_iman_davenport_on_demsar_example():
    f, p = iman_davenport(9.28, 14, 4)  # Demšar 2006, section 3.2.4
    assert f == pytest.approx(3.69, abs=0.005)
    assert f == pytest.approx(13 * 9.28 / (14 * 3 - 9.28))
    assert p == pytest.approx(stats.f.sf(f, 3, 39))
    assert p < 0.05  # F(3, 39) critical value 2.85 < 3.69


def test_friedman_reasons():
    two = friedman(pd.DataFrame({"a": [0.9, 0.8, 0.7], "b": [0.8, 0.7, 0.6]}))
    assert two.reason.startswith("the Friedman test needs at least 3 estimators")
    assert np.isnan(two.p_value)
    assert two.mean_ranks.to_dict() == {"a": 1.0, "b": 2.0}

    one = friedman(pd.DataFrame({"a": [0.9], "b": [0.8], "c": [0.7]}))
    assert "at least 2 datasets" in one.reason and np.isnan(one.p_value)
    assert one.mean_ranks.tolist() == [1.0, 2.0, 3.0]

    agree = pd.DataFrame({"a": [0.9, 0.8, 0.95], "b": [0.8, 0.7, 0.9], "c": [0.7, 0.6, 0.5]})
    three = friedman(agree)  # p_min = chi2.sf(6, 2) = 0.0498 < 0.05: the test runs
    assert three.reason is None
    assert three.statistic == pytest.approx(6.0)
    assert three.p_value == pytest.approx(stats.chi2.sf(6, 2)) and three.p_value < 0.05

    small = friedman(agree.iloc[:2])  # chi2.sf(4, 2) = 0.135 >= 0.05: no test
    assert np.isnan(small.p_value) and np.isnan(small.statistic)
    assert small.reason.startswith("with 2 datasets and 3 estimators even identical rankings")
    assert "p = 0.135 >= 0.05" in small.reason
    assert small.mean_ranks.tolist() == [1.0, 2.0, 3.0]

    tied = friedman(pd.DataFrame({"a": [0.5] * 5, "b": [0.5] * 5, "c": [0.5] * 5}))
    assert tied.reason == "all estimators tied on every dataset" and np.isnan(tied.p_value)
    assert tied.mean_ranks.tolist() == [2.0, 2.0, 2.0]


def test_nemenyi_matches_scikit_posthocs(rng):
    m = _random_matrix(rng, n=8, k=5)
    pd.testing.assert_frame_equal(nemenyi(m), scikit_posthocs.posthoc_nemenyi_friedman(m))


def test_nemenyi_separates_always_best_from_always_worst(rng):
    middle = rng.uniform(0.6, 0.8, size=(12, 2))
    m = pd.DataFrame({"best": 0.9, "mid1": middle[:, 0], "mid2": middle[:, 1], "worst": 0.5},
                     index=[f"d{i}" for i in range(12)])
    p = nemenyi(m)
    assert list(p.index) == list(p.columns) == ["best", "mid1", "mid2", "worst"]
    assert p.loc["best", "worst"] < 0.05 and p.loc["worst", "best"] == p.loc["best", "worst"]
    assert p.loc["mid1", "mid2"] > 0.05  # mean ranks differ by at most 1 < CD(4, 12) = 1.35
    assert np.allclose(np.diag(p), 1.0)


def test_critical_difference_matches_demsar():
    table = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]  # Table 5a, alpha 0.05
    for k, q in zip(range(2, 11), table):
        assert critical_difference(k, 6) / np.sqrt(k * (k + 1) / 36) == pytest.approx(q, abs=1e-3)
    assert critical_difference(4, 14) == pytest.approx(1.25, abs=0.005)  # section 3.2.4


def test_indistinguishable_groups():
    names = ["A", "B", "C", "D", "E"]
    p = pd.DataFrame(0.5, index=names, columns=names)
    for x, y in [("A", "C"), ("A", "D"), ("A", "E"), ("B", "E"), ("C", "E")]:
        p.loc[x, y] = p.loc[y, x] = 0.01
    p.loc["D", "E"] = p.loc["E", "D"] = 0.05  # p == alpha: not significant
    ranks = pd.Series([1.2, 2.0, 2.9, 3.5, 4.4], index=names)
    shuffled = p.loc[["E", "C", "A", "D", "B"], ["B", "D", "E", "A", "C"]]
    # [C, D] lies inside [B, C, D] and is dropped
    assert indistinguishable_groups(ranks, shuffled) == [["A", "B"], ["B", "C", "D"], ["D", "E"]]

    assert indistinguishable_groups(ranks, pd.DataFrame(0.9, index=names, columns=names)) == [names]
    all_different = pd.DataFrame(0.001, index=names, columns=names)
    assert indistinguishable_groups(ranks, all_different) == []
