"""A run's terminal: stderr holds the progress (dataset lines, the bar) and nothing else; what
the cells raise or print (TensorFlow's start-up log, scikit-learn's warnings, loky's notice
about retired workers) stays in the cell files and run.log."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from benchmark.cli import main
from estimators import create_estimator, register, registry


def run_subprocess(*options):
    return subprocess.run([sys.executable, "-m", "benchmark", "run", *options, "--no-cache"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


@pytest.mark.slow
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


class ZebraSpotter:
    """A plug-in that predicts a label no class has ("zebra") for every other test image."""

    def __init__(self):
        from sklearn.neighbors import KNeighborsClassifier

        self.inner = KNeighborsClassifier(1)

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self

    def fit(self, X, y):
        self.inner.fit(X.reshape(len(X), -1), y)
        self.classes_ = self.inner.classes_
        return self

    def predict(self, X):
        predicted = self.inner.predict(X.reshape(len(X), -1)).astype(object)
        predicted[::2] = "zebra"
        return predicted


def test_scoring_warnings_stay_in_the_cell_and_unknown_labels_are_a_problem(tmp_path, fresh_registry, capfd):
    fresh_registry.register("zebra-spotter")(ZebraSpotter)
    out = tmp_path / "run"
    # pytest records the warnings a test lets out instead of printing them: recorded here, every
    # one, any that escaped the cell would be on the terminal of a real run
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        assert main(["run", "--datasets", "faces", "--estimators", "zebra-spotter", "--folds", "2",
                     "--jobs", "1", "--out", str(out), "--no-cache", "--quiet"]) == 0
    assert [str(w.message) for w in escaped] == []
    captured = capfd.readouterr()
    assert captured.err == ""
    assert "y_pred contains classes not in y_true" not in captured.out and "Warning" not in captured.out
    for fold in (0, 1):
        cell = json.loads((out / "cells" / "faces" / "zebra-spotter" / f"fold-{fold}.json").read_text())
        assert cell["diagnostics"]["warnings"] == [
            "UserWarning: y_pred contains classes not in y_true"]
        assert cell["diagnostics"]["unknown_predictions"] == {"count": 50, "labels": ["zebra"]}
    report = (out / "report.md").read_text()
    problems = report.split("## Problems")[1]
    for fold in (0, 1):
        assert (f"- estimator zebra-spotter predicted labels not among the classes (e.g. 'zebra') on "
                f"dataset faces fold {fold}: 50 of 100 test images, scored as wrong") in problems


def test_unknown_predictions_counts_labels_outside_the_training_classes_nan_included():
    from benchmark.execution.metrics import unknown_predictions

    assert unknown_predictions(np.array(["cat", "dog", "cat"]), np.array(["cat", "dog"])) is None
    assert unknown_predictions(np.array([1.0, np.nan, 2.0, np.nan]), np.array([1, 2, 2])) == {
        "count": 2, "labels": ["nan"]}
    assert unknown_predictions(np.array(["cat", "zebra", "okapi", "zebra"], dtype=object),
                               np.array(["cat", "dog"])) == {"count": 3, "labels": ["zebra", "okapi"]}


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


def test_tensorflows_native_start_up_lines_are_dropped_and_other_stderr_kept(capfd):
    """TensorFlow 2.21 writes absl lines to descriptor 2 as it loads, whatever
    TF_CPP_MIN_LOG_LEVEL says; import_keras drops exactly those (a pretrained embedding loads
    its network in the main process, whose stderr is the user's terminal)."""
    from estimators.keras_backend import _without_native_startup_noise

    with _without_native_startup_noise():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                    b"I0000 00:00:1796683981.755134    2312 port.cc:153] oneDNN custom operations are on.\n"
                    b"I0000 00:00:1796683981.755462    2312 cudart_stub.cc:31] Could not find cuda drivers\n"
                    b"a real problem\n")
    assert capfd.readouterr().err == "a real problem\n"


@pytest.mark.slow
def test_loading_keras_in_this_process_writes_nothing_to_stderr():
    done = subprocess.run([sys.executable, "-c", "from estimators.keras_backend import import_keras; "
                           "print(import_keras(1).backend.backend())"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0 and done.stdout.strip() == "tensorflow", done.stderr
    assert done.stderr == ""
