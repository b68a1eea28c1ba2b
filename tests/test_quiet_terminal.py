"""A run's terminal: stderr holds the progress (dataset lines, the bar) and nothing else; what
the cells raise or print (TensorFlow's start-up log, scikit-learn's warnings, loky's notice
about retired workers) stays in the cell files and run.log."""

import json
import os
import subprocess
import sys

import pytest

from benchmark.cli import main
from estimators import create_estimator, register, registry


def run_subprocess(*options):
    return subprocess.run([sys.executable, "-m", "benchmark", "run", *options, "--no-cache"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_a_quiet_run_with_a_cnn_leaves_stderr_empty(tmp_path, tiny_folder):
    out = tmp_path / "run"
    done = run_subprocess("--dataset", f"folder:{tiny_folder}", "--estimators", "cnn-fast,knn-pixels",
                          "--folds", "2", "--jobs", "2", "--quiet", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    cnn = json.loads(next((out / "cells").glob("*/cnn-fast/fold-0.json")).read_text())
    assert cnn["status"] == "ok"  # the CNN did run: TensorFlow was imported in a worker
    assert "Report:" in done.stdout


def test_without_quiet_stderr_holds_only_the_progress(tmp_path):
    done = run_subprocess("--datasets", "faces", "--estimators", "knn-pixels,logreg-pixels", "--folds", "2",
                          "--jobs", "2", "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    # the bar draws itself on a terminal only; piped, the dataset line is all the progress
    assert done.stderr.splitlines() == [
        "faces: 200 images of 25x25x1, 2 classes; 2-fold cross-validation; 200 of 200 images used"]


@pytest.fixture
def one_iteration_logreg(monkeypatch):
    registry.list_estimators()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register("logreg-one-iteration")(lambda: create_estimator("logreg-pixels").set_params(max_iter=1))


def test_a_cells_warnings_land_in_its_cell_file_and_run_log_not_on_the_terminal(
        tmp_path, one_iteration_logreg, capfd):
    out = tmp_path / "run"
    assert main(["run", "--datasets", "faces", "--estimators", "logreg-one-iteration", "--folds", "2",
                 "--jobs", "1", "--out", str(out), "--no-cache", "--quiet"]) == 0
    assert capfd.readouterr().err == ""
    cell = json.loads((out / "cells" / "faces" / "logreg-one-iteration" / "fold-1.json").read_text())
    warned = cell["diagnostics"]["warnings"]
    assert len(warned) == 1 and warned[0].startswith("ConvergenceWarning: lbfgs failed to converge")
    log = (out / "run.log").read_text().splitlines()
    lines = [line.split(" ", 2)[2] for line in log if ": warning: " in line]
    assert sorted(lines)[1] == f"faces / logreg-one-iteration / fold 1: warning: {warned[0]}"
    assert len(lines) == 2


def test_an_unwritable_matplotlib_config_dir_is_not_warned_about_on_a_quiet_run(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "MPLCONFIGDIR": "/dev/null/matplotlib",
           "BENCHMARK_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "benchmark", "run", "--datasets", "faces", "--estimators",
                           "knn-pixels", "--folds", "2", "--jobs", "2", "--quiet", "--no-cache", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # was "Matplotlib created a temporary cache directory ..." per process
    assert (out / "plots" / "faces-confusion.png").is_file()
    assert (tmp_path / "cache" / "matplotlib").is_dir()  # where matplotlib was pointed instead


def test_matplotlib_keeps_a_writable_config_dir_and_gets_a_temporary_one_when_nothing_is_writable(
        tmp_path, monkeypatch):
    from benchmark.reporting import matplotlib_dir

    monkeypatch.delitem(sys.modules, "matplotlib", raising=False)  # as in a fresh process
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mine"))
    assert matplotlib_dir.use_writable_config_dir() is None and os.environ["MPLCONFIGDIR"] == str(tmp_path / "mine")
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "file" / "mpl"))
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(tmp_path / "file" / "cache"))
    chosen = matplotlib_dir.use_writable_config_dir()
    assert chosen.name.startswith("benchmark-matplotlib-") and chosen.is_dir()
    assert os.environ["MPLCONFIGDIR"] == str(chosen)
