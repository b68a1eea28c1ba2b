"""The Python API for notebooks (issue 15): run_benchmark and its results."""

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from benchmark import BenchmarkResults, run_benchmark
from benchmark.cli import main


@pytest.fixture(scope="module")
def results():
    return run_benchmark(datasets=["faces", "textures"], estimators=["knn-pixels", "logreg-pixels"], folds=3)


def test_results_hold_leaderboards_scores_and_statistics(results):
    assert isinstance(results, BenchmarkResults) and results.path is None  # nothing written
    assert results.datasets == ["faces", "textures"]
    board = results.leaderboard("faces")
    assert list(board["estimator"]) and set(board["estimator"]) == {"knn-pixels", "logreg-pixels"}
    assert board["f1_macro_mean"].is_monotonic_decreasing and board["f1_macro_mean"].iloc[0] > 0.7
    assert len(results.scores) == 2 * 2 * 3 and set(results.scores["fold"]) == {0, 1, 2}
    assert list(results.overall["estimator"]) == list(results.overall.sort_values("mean_rank")["estimator"])
    assert results.ranking.friedman is not None and results.ranking.matrix.shape == (2, 2)
    with pytest.raises(ValueError, match="name one dataset"):
        results.leaderboard()


def test_figures_are_matplotlib_figures_without_files(results, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    figures = results.figures()
    assert {("faces", "f1"), ("faces", "pareto"), ("faces", "confusion"), ("textures", "f1")} <= set(figures)
    assert all(isinstance(fig, Figure) for fig in figures.values())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_api_gives_the_command_lines_scores_and_saves_the_same_run(results, tmp_path):
    saved = results.save(tmp_path / "saved")
    assert (saved / "report.md").exists() and len(list(saved.glob("cells/*/*/fold-*.json"))) == 12
    cli = tmp_path / "cli"
    assert main(["run", "--datasets", "faces,textures", "--estimators", "knn-pixels,logreg-pixels",
                 "--folds", "3", "--out", str(cli), "--quiet", "--jobs", "1"]) == 0
    mine, theirs = pd.read_csv(saved / "scores.csv"), pd.read_csv(cli / "scores.csv")
    columns = ["dataset", "estimator", "fold", "accuracy", "f1_macro"]
    pd.testing.assert_frame_equal(mine[columns], theirs[columns])
    assert json.loads((saved / "run.json").read_text())["status"] == "finished"
    assert main(["report", str(saved)]) == 0  # the saved run is a run like any other


def test_bad_arguments_raise_value_errors_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        run_benchmark(datasets=["facez"], estimators=["knn-pixels"])
    with pytest.raises(ValueError, match="no parameter 'k'"):
        run_benchmark(datasets=["faces"], estimators=["knn-pixels"], settings={"knn-pixels": {"k": 3}})
    with pytest.raises(ValueError, match="folds"):
        run_benchmark(datasets=["faces"], estimators=["knn-pixels"], folds=1)


def test_a_run_with_out_writes_the_run_directory_and_reuses_it(tmp_path):
    out = tmp_path / "run"
    first = run_benchmark(datasets="faces", estimators="knn-pixels", folds=3, out=out,
                          settings={"knn-pixels": {"n_neighbors": 1}})
    assert first.path == out and (out / "report.md").exists()
    assert json.loads((out / "run.json").read_text())["config"]["params"] == {"knn-pixels": {"n_neighbors": 1}}
    again = run_benchmark(datasets="faces", estimators="knn-pixels", folds=3, out=out,
                          settings={"knn-pixels": {"n_neighbors": 1}})
    assert again.scores["f1_macro"].tolist() == first.scores["f1_macro"].tolist()


def test_the_documented_notebook_example_runs_verbatim(tmp_path, monkeypatch, capsys, documentation):
    blocks = [(page, code) for page, code in documentation("python") if "run_benchmark(" in code]
    assert len(blocks) == 1  # docs/tuning-and-settings.md's notebook example
    (page, code), = blocks
    monkeypatch.chdir(tmp_path)
    exec(compile(code, page, "exec"), {})
    out = capsys.readouterr().out
    assert "knn-pixels" in out and "f1_macro_mean" in out
    assert (tmp_path / "results" / "from-notebook" / "report.md").exists()


@pytest.mark.slow
def test_a_script_runs_cells_on_all_cores_with_n_jobs_minus_one_under_the_main_guard(tmp_path):
    import os
    import subprocess
    import sys

    import benchmark.api

    script = tmp_path / "script.py"
    script.write_text(
        "from benchmark import run_benchmark\n\n"
        'if __name__ == "__main__":  # the workers import this module again\n'
        f"    results = run_benchmark(['faces'], ['knn-pixels'], folds=2, n_jobs=-1, out={str(tmp_path / 'run')!r})\n"
        "    print(results.meta['threads'])\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str({"workers": os.cpu_count(), "per_cell": 1})
    assert 'if __name__ == "__main__":' in benchmark.api.run_benchmark.__doc__
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match=rf"n_jobs must be a positive number of worker processes, or -1 "
                                             rf"for all cores; got {bad}"):
            benchmark.run_benchmark(["faces"], ["knn-pixels"], n_jobs=bad)


# --- every section of the report as a DataFrame (issue 31, item 4) ----------------------------

def _pooled(results, dataset, estimator):
    cells = [c for c in results.cells if (c.dataset, c.estimator) == (dataset, estimator) and c.status == "ok"]
    return cells, [y for c in cells for y in c.y_true], [y for c in cells for y in c.y_pred]


def test_per_class_scores_are_the_pooled_out_of_fold_predictions_scored_by_scikit_learn(results):
    from sklearn.metrics import precision_recall_fscore_support

    table = results.per_class
    assert len(table) == 2 * 2 + 2 * 3  # two estimators; faces has 2 classes, textures 3
    for dataset in ("faces", "textures"):
        for estimator in ("knn-pixels", "logreg-pixels"):
            cells, y_true, y_pred = _pooled(results, dataset, estimator)
            classes = sorted(set(y_true))
            precision, recall, f1, support = precision_recall_fscore_support(
                y_true, y_pred, labels=classes, zero_division=0)
            rows = table[(table["dataset"] == dataset) & (table["estimator"] == estimator)].set_index("class")
            assert rows.loc[classes, "f1"].tolist() == pytest.approx(f1.tolist())
            assert rows.loc[classes, "recall"].tolist() == pytest.approx(recall.tolist())
            assert rows.loc[classes, "support"].tolist() == support.tolist()
            assert (rows["folds"] == len(cells)).all() and (rows["family"] == "classical").all()
    # the best of its family on each dataset is the one the report compares
    best = table[table["best_of_family"]].drop_duplicates(["dataset", "estimator"])
    for dataset, estimator in zip(best["dataset"], best["estimator"]):
        assert estimator == results.leaderboard(dataset)["estimator"].iloc[0]
        assert results.family_comparisons[dataset].best[0].estimator == estimator


def test_calibration_holds_each_estimators_probabilistic_scores_and_pooled_ece(results):
    from sklearn.metrics import log_loss

    table = results.calibration.set_index(["dataset", "estimator"])
    assert len(table) == 4 and set(table.columns) >= {"log_loss_mean", "brier_mean", "ece_mean", "pooled_ece"}
    for dataset in ("faces", "textures"):
        for estimator in ("knn-pixels", "logreg-pixels"):
            cells, y_true, _ = _pooled(results, dataset, estimator)
            losses = [log_loss(np.asarray(c.y_true).astype(str), _sorted_proba(c), labels=sorted(map(str, c.proba_classes)))
                      for c in cells]
            row = table.loc[(dataset, estimator)]
            assert row["log_loss_mean"] == pytest.approx(np.mean(losses), rel=1e-6)
            assert row["proba_folds"] == len(cells) == 3
            # the pooled ECE by hand: 15 equal-width bins of the top-label confidence
            proba = np.concatenate([_sorted_proba(c) for c in cells])
            labels = np.array(sorted(map(str, cells[0].proba_classes)))
            confidence, right = proba.max(axis=1), labels[proba.argmax(axis=1)] == np.asarray(y_true).astype(str)
            which = np.minimum((confidence * 15).astype(int), 14)
            ece = sum(abs(right[which == b].sum() - confidence[which == b].sum()) for b in range(15)) / len(proba)
            assert row["pooled_ece"] == pytest.approx(ece, abs=1e-9)
    # one curve per family in each dataset's reliability diagram: the best estimator's
    drawn = results.calibration[results.calibration["in_reliability_diagram"]]
    assert sorted(drawn["dataset"]) == ["faces", "textures"]
    assert all(e == results.leaderboard(d)["estimator"].iloc[0] for d, e in zip(drawn["dataset"], drawn["estimator"]))


def _sorted_proba(cell):
    order = np.argsort([str(c) for c in cell.proba_classes])
    proba = np.asarray(cell.probabilities, dtype=float)[:, order]
    return proba / proba.sum(axis=1, keepdims=True)


def test_diagnostics_hold_one_row_per_estimator_with_its_folds_and_warnings(results):
    table = results.diagnostics
    assert sorted(zip(table["dataset"], table["estimator"])) == [
        (d, e) for d in ("faces", "textures") for e in ("knn-pixels", "logreg-pixels")]
    for _, row in table.iterrows():
        cells, _, _ = _pooled(results, row["dataset"], row["estimator"])
        assert row["folds"] == len(cells) == 3
        assert row["budget_folds"] == 0 and row["epochs_run"] is None  # no CNN here
        assert row["unrecorded_folds"] == sum(c.diagnostics is None for c in cells) == 0
        warned = [f"warning: {w}" for c in cells for w in c.diagnostics.get("warnings") or []
                  if not w.startswith("ConvergenceWarning")]
        assert sum(len(folds) for _, folds in row["evidence"]) == len(warned)
        summary = results.summary[(results.summary["dataset"] == row["dataset"])
                                  & (results.summary["estimator"] == row["estimator"])].iloc[0]
        assert summary["warned_folds"] == sum(bool(c.diagnostics.get("warnings")) for c in cells)


def test_near_duplicates_count_the_test_images_of_each_dataset(results):
    table = results.near_duplicates.set_index("dataset")
    assert sorted(table.index) == ["faces", "textures"] and table["checked"].all()
    for dataset in ("faces", "textures"):
        tested = sum(c.n_test for c in results.cells if c.dataset == dataset and c.estimator == "knn-pixels")
        facts = results.meta["datasets"][dataset]["near_duplicates"]
        assert table.loc[dataset, "test_images"] == tested  # cross-validation tests each image once
        leaked = table.loc[dataset, "test_images_with_train_near_duplicate"]
        assert leaked == facts["test_images_with_train_near_duplicate"]
        assert table.loc[dataset, "share"] == pytest.approx(leaked / tested)
        assert pd.isna(table.loc[dataset, "dedupe_dropped_images"])  # no --dedupe
    # a run without --tune or --train-sizes has those tables empty, with their columns
    assert results.tuning.empty and "tuned_f1_macro" in results.tuning and results.sizes.empty


@pytest.fixture(scope="module")
def tuned_sizes():
    """knn-pixels on faces, tuned (2 candidates), at 5 images per class and the whole training part."""
    return run_benchmark(datasets=["faces"], estimators=["knn-pixels", "logreg-pixels"], folds=3,
                         tune=2, train_sizes=[5, "max"])


def test_tuning_holds_the_tuned_and_default_scores_on_the_same_folds(tuned_sizes):
    from scipy import stats

    table = tuned_sizes.tuning.set_index("estimator")
    assert list(tuned_sizes.tuning["dataset"]) == ["faces", "faces"]
    for estimator in ("knn-pixels", "logreg-pixels"):
        cells, _, _ = _pooled(tuned_sizes, "faces", estimator)
        tuned = np.array([c.scores["f1_macro"] for c in cells])
        default = np.array([c.default_scores["f1_macro"] for c in cells])
        row = table.loc[estimator]
        assert row["tuned_f1_macro"] == pytest.approx(tuned.mean())
        assert row["default_f1_macro"] == pytest.approx(default.mean())
        assert row["difference"] == pytest.approx((tuned - default).mean())
        d = tuned - default
        if np.ptp(d) > 1e-12:  # Nadeau & Bengio's corrected resampled t-test, by hand
            n_train, n_test = np.mean([c.n_train for c in cells]), np.mean([c.n_test for c in cells])
            t = d.mean() / np.sqrt((1 / 3 + n_test / n_train) * d.var(ddof=1))
            assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), 2))
        assert row["folds_keeping_defaults"] == sum(c.tuning["chose_default"] for c in cells)
        assert row["tuning_seconds"] == pytest.approx(np.mean([c.tuning["seconds"] for c in cells]))
        folds = tuned_sizes.tuning_folds[tuned_sizes.tuning_folds["estimator"] == estimator]
        assert list(folds["fold"]) == [0, 1, 2]
        assert list(folds["params"]) == [c.tuning["params"] for c in cells]


def test_sizes_hold_each_training_sizes_scores_and_the_crossover(tuned_sizes):
    table = tuned_sizes.sizes
    assert sorted(set(table["size"].astype(str))) == ["5", "all"]
    scores = tuned_sizes.scores
    for _, row in table.iterrows():
        size = 5 if row["size"] == 5 else None
        at = scores[(scores["estimator"] == row["estimator"]) & (scores["status"] == "ok")
                    & (scores["train_size"] == size if size else scores["train_size"].isna())]
        assert row["folds"] == len(at) == 3
        assert row["f1_macro_mean"] == pytest.approx(at["f1_macro"].mean())
        assert row["fit_seconds"] == pytest.approx(at["fit_seconds"].mean())
        assert row["f1_macro_low"] <= row["f1_macro_mean"] <= row["f1_macro_high"]
    # at 5 images per class each fold trains on at most 5 per class (2 classes)
    assert table[table["size"] == 5]["per_class"].max() <= 5
    assert tuned_sizes.crossovers == {"faces": {"reason": "needs both a CNN and a classical estimator"}}


def test_benchmark_results_is_importable_from_the_api_and_the_package():
    from benchmark import api
    import benchmark

    assert api.BenchmarkResults is benchmark.BenchmarkResults is BenchmarkResults
    for table in ("per_class", "tuning", "diagnostics", "sizes", "calibration", "near_duplicates"):
        assert f"`{table}`" in BenchmarkResults.__doc__  # each documented
