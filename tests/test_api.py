"""The Python API for notebooks (issue 15): run_benchmark and its results."""

import json

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
