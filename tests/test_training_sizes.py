"""Learning curves over the training-set size: `run --train-sizes` (benchmark.data.protocols,
the runner, the store) and their part of the report (benchmark.reporting.training_sizes)."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmark import run_benchmark
from benchmark.cli import main
from benchmark.data.protocols import nested_training_samples, parse_train_sizes
from benchmark.reporting.training_sizes import crossover


def test_sizes_are_parsed_sorted_and_bad_ones_refused():
    assert parse_train_sizes("100, 10,max,30,10") == [10, 30, 100, "max"]
    assert parse_train_sizes("MAX") == ["max"]
    for bad, words in (("0", "at least 1"), ("ten", "'ten'"), ("10,-3", "at least 1"), ("", "''")):
        with pytest.raises(ValueError, match=words):
            parse_train_sizes(bad)


def test_samples_are_nested_stratified_seeded_and_capped():
    labels = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 8)
    train = np.arange(88)
    train = train[train % 5 != 0]  # a fold's training part: 40 a, 24 b, 6 c
    samples, capped = nested_training_samples(labels, train, [5, 10, 20, "max"], seed=(0, 1))
    counts = {s: dict(zip(*np.unique(labels[rows], return_counts=True))) for s, rows in samples.items()}
    available = dict(zip(*np.unique(labels[train], return_counts=True)))
    assert available == {"a": 40, "b": 24, "c": 6}
    assert counts[5] == {"a": 5, "b": 5, "c": 5}
    assert counts[10] == {"a": 10, "b": 10, "c": available["c"]}
    assert counts[20] == {"a": 20, "b": 20, "c": available["c"]}
    assert np.array_equal(samples["max"], np.sort(train))
    assert set(samples[5]) <= set(samples[10]) <= set(samples[20]) <= set(train)
    assert capped == {10: {"c": available["c"]}, 20: {"c": available["c"]}}
    again, _ = nested_training_samples(labels, train, [5, 10, 20, "max"], seed=(0, 1))
    other, _ = nested_training_samples(labels, train, [5, 10, 20, "max"], seed=(0, 2))
    assert all(np.array_equal(samples[s], again[s]) for s in samples)
    assert not np.array_equal(samples[10], other[10])


def test_a_run_fits_every_size_on_the_same_test_rows_and_ranks_the_whole_folds(tmp_path):
    from benchmark.api import run_benchmark

    out = tmp_path / "run"
    results = run_benchmark(["faces"], ["knn-pixels", "logreg-pixels"], folds=3, out=out, train_sizes="4,12,max")
    cells = [json.loads(p.read_text()) for p in sorted((out / "cells").rglob("fold-*.json"))]
    assert len(cells) == 2 * 3 * 3
    by = {(c["estimator"], c["fold"], c["train_size"]): c for c in cells}
    for estimator in ("knn-pixels", "logreg-pixels"):
        for fold in range(3):
            sized = [by[(estimator, fold, s)] for s in (4, 12, None)]
            assert sized[0]["test_index"] == sized[1]["test_index"] == sized[2]["test_index"]
            assert [c["n_train"] for c in sized[:2]] == [8, 24] and sized[2]["n_train"] > 24
    assert (out / "cells" / "faces" / "knn-pixels" / "size-4" / "fold-0.json").exists()
    assert (out / "cells" / "faces" / "knn-pixels" / "size-4" / "fold-0.proba.npy").exists()
    assert (out / "cells" / "faces" / "knn-pixels" / "fold-0.json").exists()
    # the leaderboard ranks the whole training folds: the same scores as a plain run
    plain = run_benchmark(["faces"], ["knn-pixels", "logreg-pixels"], folds=3, out=tmp_path / "plain")
    pd.testing.assert_series_equal(results.summary["f1_macro_mean"], plain.summary["f1_macro_mean"])
    report = (out / "report.md").read_text()
    assert "### Learning curve: training images per class" in report
    assert "| estimator     | family    | 4 " in report and "all (~" in report
    assert "**Crossover:** needs both a CNN and a classical estimator." in report
    assert (out / "plots" / "faces-training-sizes.png").stat().st_size > 10_000
    assert "(plots/faces-training-sizes.png)" in report


def test_resume_reuses_every_size_and_a_plain_run_reuses_the_max_cells(tmp_path):
    from benchmark.api import run_benchmark

    out = tmp_path / "run"
    run_benchmark(["faces"], ["knn-pixels"], folds=3, out=out)
    again = run_benchmark(["faces"], ["knn-pixels"], folds=3, out=out, train_sizes=[5, "max"])
    meta = json.loads((out / "run.json").read_text())
    assert meta["plan"]["faces"]["train_sizes"] == [5, None]
    assert again.summary.iloc[0]["folds_ok"] == 3
    code = main(["run", "--resume", str(out), "--quiet"])
    assert code == 0
    assert len(list((out / "cells").rglob("fold-*.json"))) == 6 and not (out / "replaced").exists()


def test_sizes_beyond_a_class_are_capped_and_said(tmp_path):
    from benchmark.api import run_benchmark

    out = tmp_path / "run"
    run_benchmark(["faces"], ["knn-pixels"], folds=3, out=out, train_sizes=[10, 1000])
    meta = json.loads((out / "run.json").read_text())
    capped = meta["datasets"]["faces"]["sampling"]["train_sizes"]["capped"]
    assert set(capped["1000"]) == {"face", "non-face"} and max(capped["1000"].values()) < 100
    report = (out / "report.md").read_text()
    assert "At 1000 per class, class(es) face (" in report and "used all of them" in report
    # without "max", the largest size is the one the leaderboards rank
    assert "knn-pixels" in report.split("## Dataset: faces")[1].split("###")[0]


def test_bad_sizes_are_usage_errors(tmp_path, capsys):
    for bad in ("0", "ten", "5,,x"):
        code = main(["run", "--datasets", "faces", "--estimators", "knn-pixels", "--train-sizes", bad,
                     "--out", str(tmp_path / "run")])
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--train-sizes" in err[0]
    assert not (tmp_path / "run").exists()


def test_sizes_too_small_for_the_tuning_inner_folds_are_refused(tmp_path, capsys):
    base = ["run", "--datasets", "faces", "--estimators", "logreg-pixels", "--tune", "--out", str(tmp_path / "run")]
    assert main(base + ["--train-sizes", "2,10"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --train-sizes 2 is fewer images per class than --tune's 3 inner folds need (one per "
        "fold), so that size could not be tuned like the others; use sizes of at least 3, or --tune-folds 2")
    assert main(base + ["--train-sizes", "1,max", "--tune-folds", "2"]) == 2
    assert capsys.readouterr().err.strip().endswith("use sizes of at least 2, or drop --tune")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="fewer images per class than --tune's 3 inner folds"):
        run_benchmark(["faces"], ["logreg-pixels"], tune=4, train_sizes=[2, 10])


def _frame(scores):
    """A size_frame-like table: {(estimator, family, size): [fold scores]}."""
    rows = []
    for (estimator, family, size), folds in scores.items():
        rows.append({"dataset": "d", "estimator": estimator, "family": family, "size": size,
                     "order": size, "per_class": size, "f1_macro_mean": float(np.mean(folds)),
                     "f1_macro_low": np.nan, "f1_macro_high": np.nan, "fit_seconds": 1.0,
                     "folds": len(folds), "fold_scores": dict(enumerate(folds)), "n_train": 800.0,
                     "n_test": 200.0})
    return pd.DataFrame(rows)


def test_the_crossover_is_the_first_size_where_the_best_cnn_wins_significantly():
    noise = np.array([0.01, -0.01, 0.005, -0.004, 0.0])
    scores = {}
    for size, cnn_gain in ((10, -0.10), (30, 0.002), (100, 0.08), (300, 0.15)):
        scores[("svm", "classical", size)] = list(0.6 + noise)
        scores[("knn", "classical", size)] = list(0.5 + noise)
        scores[("cnn-fast", "cnn", size)] = list(0.6 + cnn_gain + noise[::-1])
        scores[("cnn-simple", "cnn", size)] = list(0.4 + noise)
    found = crossover(_frame(scores))
    assert (found["size"], found["cnn"], found["classical"]) == (100, "cnn-fast", "svm")
    assert found["difference"] == pytest.approx(0.08) and found["p_value"] < 0.05
    never = crossover(_frame({k: v for k, v in scores.items() if k[2] <= 30}))
    assert never["reason"] == "not reached within the sizes run" and [t["size"] for t in never["tried"]] == [10, 30]
    assert crossover(_frame({k: v for k, v in scores.items() if k[1] == "classical"}))["reason"] == \
        "needs both a CNN and a classical estimator"


def test_an_experiment_file_gives_the_sizes(tmp_path):
    (tmp_path / "exp.toml").write_text('datasets = ["faces"]\nestimators = ["knn-pixels"]\nfolds = 3\n'
                                       'train_sizes = [8, "max"]\nout = "run"\n')
    assert main(["run", str(tmp_path / "exp.toml"), "--quiet", "--jobs", "1"]) == 0
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["config"]["train_sizes"] == [8, "max"] and meta["plan"]["faces"]["train_sizes"] == [8, None]
    (tmp_path / "bad.toml").write_text('datasets = ["faces"]\ntrain_sizes = 8\n')
    assert main(["run", str(tmp_path / "bad.toml")]) == 2


@pytest.mark.slow
def test_boosting_fits_at_the_smallest_sizes_and_says_when_it_cannot_early_stop():
    from benchmark.data import load_dataset
    from estimators import create_estimator

    digits = load_dataset("digits")
    for per_class, stopping, reason in ((3, False, "too few training images (30)"), (10, True, None)):
        rows = np.concatenate([np.flatnonzero(digits.labels == c)[:per_class] for c in digits.classes])
        model = create_estimator("gboost-hog-color-lbp").fit(digits.images[rows], digits.labels[rows])
        assert model._validation[0] is stopping
        assert model.score(digits.images[rows], digits.labels[rows]) > 0.9
        reasons = model.convergence_["reasons"]
        assert (reason in reasons[0]) if reason else True


def flagged_run(run_dir, flag):
    """The Analysis of a stored learning-curve run of cnn-fast and logreg-pixels at sizes 5 and 50 (3 folds),
    where cnn-fast loses at 5 and wins at 50; `flag(estimator, size, fold)`: whether that
    cell's training failed its checks."""
    from benchmark.execution.cell_record import Cell
    from benchmark.execution.metrics import score_predictions
    from benchmark.execution.store import RunStore
    from benchmark.reporting.analysis import analyse
    from benchmark.reporting.results import load_run

    y_true = ["a", "b"] * 10
    estimators = ["cnn-fast", "logreg-pixels"]
    meta = {"run_id": "flags", "status": "finished",
            "config": {"datasets": ["d"], "estimators": estimators, "folds": 3, "seed": 0, "train_sizes": [5, 50]},
            "plan": {"d": {"estimators": estimators, "folds": 3, "train_sizes": [5, 50]}},
            "datasets": {"d": {"classes": {"a": 60, "b": 60}}}}
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps(meta))
    store = RunStore(run_dir)
    diverged = {"undertrained": True, "reasons": ["lost ground: the training loss fell from 2.0 to 1.0, then ..."]}
    for size in (5, 50):
        for fold in range(3):
            for estimator in estimators:
                wrong = {("cnn-fast", 5): 8, ("logreg-pixels", 5): 4, ("cnn-fast", 50): 0}.get((estimator, size), 3)
                y_pred = list(y_true)
                for i in range(wrong + fold % 2):
                    y_pred[i] = "b" if y_true[i] == "a" else "a"
                store.save_cell(Cell("d", estimator, fold, "ok", scores=score_predictions(y_true, y_pred),
                                     fit_seconds=1.0, n_train=2 * size, n_test=20, train_size=size,
                                     diagnostics=diverged if flag(estimator, size, fold)
                                     else {"undertrained": False, "reasons": []}))
    return analyse(load_run(run_dir))  # the report renders the section from the run's Analysis


def test_sizes_whose_training_failed_its_checks_are_marked_and_doubt_the_crossover(tmp_path):
    from benchmark.reporting.training_sizes import size_section

    run = flagged_run(tmp_path / "below", lambda e, size, fold: e == "cnn-fast" and size == 5 and fold < 2)
    text = "\n".join(size_section("d", run))
    row = next(line for line in text.splitlines() if line.startswith("| cnn-fast"))
    assert row.count("⚠ 2/3") == 1  # at size 5 only
    assert ("⚠ k/n: the training of k of the n folds failed its checks" in text
            and "cnn-fast at 5 (2/3 folds: lost ground)" in text)
    # the crossover (at 50) comes after the CNN's flagged size 5, where it lost: it might come sooner
    assert "**Crossover:** from 50 training images per class" in text
    assert ("⚠ The crossover is not settled: a CNN's training failed its checks below it, so with fuller "
            "training the CNN might win from a smaller size (listed above).") in text
    # a CNN flagged only where it already wins, and the classical estimator flagged only where it
    # was already ahead, cannot move the crossover: marked, but no doubt
    run = flagged_run(tmp_path / "harmless", lambda e, size, fold: (e, size) in {("cnn-fast", 50), ("logreg-pixels", 5)})
    text = "\n".join(size_section("d", run))
    assert "cnn-fast at 50 (3/3 folds" in text and "logreg-pixels at 5 (3/3 folds" in text
    assert "not settled" not in text
    # the classical estimator flagged where the CNN wins: it might keep up longer
    run = flagged_run(tmp_path / "above", lambda e, size, fold: (e, size) == ("logreg-pixels", 50))
    assert ("a classical estimator's training failed its checks from it on, so with fuller training it "
            "might keep up to a larger size") in "\n".join(size_section("d", run))


def test_a_crossover_with_too_few_folds_for_a_test_says_so_instead_of_p_nan():
    scores = {("svm", "classical", size): [0.5, 0.52] for size in (10, 100)}
    scores.update({("cnn-fast", "cnn", 10): [0.4, 0.45], ("cnn-fast", "cnn", 100): [0.7, 0.71]})
    found = crossover(_frame(scores))
    assert found["untested"] and found["reason"] == ("cannot be tested: the corrected paired t-test needs at "
                                                     "least 3 folds or repeats, and this run has 2")
    assert [round(t["difference"], 3) for t in found["tried"]] == [-0.085, 0.195]


def test_one_size_is_said_in_every_leaderboard_and_csv(tmp_path, capsys):
    from benchmark.reporting.compare import compare_runs
    from benchmark.reporting.results import load_run

    out = tmp_path / "run"
    assert main(["run", "--datasets", "digits", "--estimators", "knn-pixels,logreg-pixels", "--folds", "2",
                 "--max-per-class", "30", "--train-sizes", "10", "--out", str(out), "--no-cache", "--quiet"]) == 0
    terminal = capsys.readouterr().out
    assert "Dataset: digits — trained on at most 10 images per class\n" in terminal
    assert ("Overall (mean rank by macro-F1 across datasets); models trained on at most 10 images per "
            "class (digits)\n") in terminal
    report = (out / "report.md").read_text()
    assert "## Dataset: digits — trained on at most 10 images per class\n" in report
    assert "Every estimator here was trained on at most 10 images per class" in report
    assert "over 1 dataset(s); models trained on at most 10 images per class (digits)." in report
    scores = pd.read_csv(out / "scores.csv")
    assert list(scores.columns[:5]) == ["dataset", "estimator", "fold", "train_size", "status"]
    assert scores["train_size"].tolist() == [10] * 4 and (scores["n_train"] == 100).all()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns[:4]) == ["dataset", "estimator", "family", "train_size"]
    assert summary["train_size"].tolist() == [10, 10]
    per_class = pd.read_csv(out / "per_class.csv")
    assert set(per_class["train_size"]) == {10} and len(per_class) == 2 * 10
    # comparing it with a run on the whole training part says the sizes differ
    plain = tmp_path / "plain"
    assert main(["run", "--datasets", "digits", "--estimators", "knn-pixels", "--folds", "2",
                 "--max-per-class", "30", "--out", str(plain), "--no-cache", "--quiet"]) == 0
    assert "trained on" not in capsys.readouterr().out
    assert pd.read_csv(plain / "scores.csv")["train_size"].isna().all()
    compared = compare_runs(load_run(out), load_run(plain)).set_index("estimator")
    assert compared.loc["knn-pixels", "note"] == ("too few folds (2) for a test: need at least 3; "
                                                  "trained on at most 10 vs all images per class")


def test_every_size_is_in_scores_and_summary_csv(tmp_path):
    from benchmark.api import run_benchmark

    out = tmp_path / "run"
    results = run_benchmark(["digits"], ["knn-pixels", "logreg-pixels"], folds=2, max_per_class=30, out=out,
                            train_sizes="5,10,max")
    scores = pd.read_csv(out / "scores.csv")
    sizes = scores["train_size"].astype("Int64").astype(object).where(scores["train_size"].notna(), None)
    assert list(zip(sizes, scores["estimator"], scores["fold"])) == [
        (size, estimator, fold) for size in (5, 10, None)
        for estimator in ("knn-pixels", "logreg-pixels") for fold in (0, 1)]
    assert scores.groupby(sizes.fillna("all"))["n_train"].first().to_dict() == {5: 50, 10: 100, "all": 150}
    assert scores["log_loss"].notna().all()  # the probabilistic scores of every size too
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 6 and summary.groupby(summary["train_size"].fillna(0)).size().to_dict() == {
        0: 2, 5: 2, 10: 2}
    assert summary["train_size"].fillna(0).tolist() == [5, 5, 10, 10, 0, 0]
    for size, rows in summary.groupby(summary["train_size"].fillna(0)):
        assert sorted(rows["rank"]) == [1.0, 2.0]  # ranked within each size
        by = scores[scores["train_size"].fillna(0) == size].groupby("estimator")["f1_macro"].mean()
        assert np.allclose(rows.set_index("estimator")["f1_macro_mean"].sort_index(), by.sort_index())
    # the leaderboards (and the API's summary) rank the whole training part alone
    assert len(results.summary) == 2 and results.summary["train_size"].isna().all()
    assert len(results.scores) == 12
    assert "## Dataset: digits\n" in (out / "report.md").read_text()


class NeedsSixtyImages:
    """A plug-in whose fit refuses fewer than 60 training images."""

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self

    def fit(self, X, y):
        if len(y) < 60:
            raise ValueError(f"only {len(y)} training images")
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.repeat(self.classes_[:1], len(X))


def test_a_cell_failing_at_a_size_the_leaderboard_does_not_rank_is_a_problem(tmp_path, fresh_registry):
    from benchmark.api import run_benchmark

    fresh_registry.register("needs-sixty")(NeedsSixtyImages)
    out = tmp_path / "run"
    run_benchmark(["digits"], ["needs-sixty"], folds=2, max_per_class=30, out=out, train_sizes="5,max")
    report = (out / "report.md").read_text()
    for fold in (0, 1):
        assert (f"- digits / needs-sixty / fold {fold} (at most 5 images per class) failed: ValueError: "
                "only 50 training images") in report
    scores = pd.read_csv(out / "scores.csv")
    assert scores.set_index("train_size", drop=False).loc[5, "status"].tolist() == ["failed", "failed"]
    assert (scores[scores["train_size"].isna()]["status"] == "ok").all()
