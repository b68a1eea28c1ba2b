"""The runner at scale: parallel and Dask cells, resume after a kill, stale results, isolation,
progress and locking."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

import estimators.registry as registry
from benchmark.execution.backends import WORKER_DIED, DaskBackend, LocalBackend
from benchmark.cli import main
from benchmark.execution.runner import RunConfig, run
from benchmark.execution.store import RunStore

pytestmark = pytest.mark.slow  # every test here trains a CNN or starts processes

ROOT = Path(__file__).resolve().parents[1]
CLASSICAL = ["knn-pixels", "logreg-hog-color", "bagged-trees-color-moments"]


def outcome(result):
    return [(c.dataset, c.estimator, c.fold, c.status, c.scores, c.y_pred, c.feature_source)
            for c in result.cells]


def test_jobs_2_gives_the_same_scores_as_jobs_1(tmp_path):
    config = RunConfig(["faces", "textures"], CLASSICAL, folds=3, seed=2)
    one = run(config, tmp_path / "one", backend=LocalBackend(1))
    two = run(config, tmp_path / "two", backend=LocalBackend(2))
    assert len(one.cells) == 18 and not one.failed_cells
    assert outcome(one) == outcome(two)


def test_datasets_prepared_in_workers_or_here_give_the_same_cells(tmp_path):
    """The workers prepare every dataset but the first; if they fail (a worker killed while
    loading), this process prepares them itself."""

    class WorkersFail(LocalBackend):
        def map_here(self, calls):
            raise RuntimeError("a worker died")

    config = RunConfig(["faces", "textures", "shapes"], CLASSICAL, folds=3, seed=2)
    here = run(config, tmp_path / "here", backend=LocalBackend(1))
    fallback = run(config, tmp_path / "fallback", backend=WorkersFail(1))
    workers = run(config, tmp_path / "workers", backend=LocalBackend(2))
    assert len(here.cells) == 27 and not here.failed_cells
    assert outcome(fallback) == outcome(here) == outcome(workers)
    assert here.datasets == fallback.datasets == workers.datasets


def test_local_workers_share_each_large_array_through_one_memory_map(tmp_path):
    from benchmark.execution.backends import _memory_mapped

    big, small = np.arange(300_000, dtype=np.float64), np.arange(10)
    objects = np.array([object()] * 200_000)  # cannot be memory-mapped: passed as it is
    out = _memory_mapped([("a", big, small), ("b", big, objects)], tmp_path / "arrays")
    assert isinstance(out[0][1], np.memmap) and out[1][1] is out[0][1]
    np.testing.assert_array_equal(out[0][1], big)
    assert out[0][2] is small and out[1][2] is objects
    assert [p.name for p in (tmp_path / "arrays").iterdir()] == ["0.npy"]


def test_dask_local_cluster_gives_the_local_scores_and_scatters_each_array_once(tmp_path, monkeypatch):
    pytest.importorskip("dask.distributed")
    config = RunConfig(["faces", "textures"], CLASSICAL, folds=3, seed=2)
    local = run(config, tmp_path / "local", backend=LocalBackend(1))
    with DaskBackend(n_workers=2) as backend:
        assert backend.client.scheduler.address.startswith("tcp://127.0.0.1:")
        scattered = []
        real_scatter = backend.client.scatter
        monkeypatch.setattr(backend.client, "scatter", lambda data, **kw: scattered.append(data.shape) or real_scatter(data, **kw))
        distributed = run(config, tmp_path / "dask", backend=backend)
    assert outcome(distributed) == outcome(local)
    # per dataset: its labels and one feature matrix per extractor (pixels, HOG+colour, moments)
    assert len(scattered) == 2 * (1 + 3)


def test_an_unreachable_scheduler_is_a_clear_error_within_bounded_time(tmp_path, capsys, monkeypatch):
    pytest.importorskip("dask.distributed")
    import benchmark.execution.backends

    monkeypatch.setattr(benchmark.execution.backends, "SCHEDULER_TIMEOUT", 2)
    start = time.monotonic()
    code = main(["run", "--datasets", "faces", "--estimators", "knn-pixels", "--out", str(tmp_path / "r"),
                 "--backend", "dask", "--scheduler", "tcp://127.0.0.1:9", "--quiet"])
    assert code == 2 and time.monotonic() - start < 20
    err = capsys.readouterr().err
    assert "no Dask scheduler answered at tcp://127.0.0.1:9 within 2 s" in err and "Traceback" not in err


def run_command(out):
    return [sys.executable, "-m", "benchmark", "run", "--datasets", "faces,textures,shapes", "--estimators",
            "logreg-pixels,knn-hog,bagged-trees-color-moments", "--folds", "3", "--jobs", "1",
            "--no-cache", "--quiet", "--out", str(out)]


def test_a_run_killed_part_way_resumes_to_the_uninterrupted_scores(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = tmp_path / "killed"
    process = subprocess.Popen(run_command(killed), env=env, cwd=tmp_path, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(killed.glob("cells/*/*/*.json"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # kill -9, workers included
    process.wait()
    done_before = list(killed.glob("cells/*/*/*.json"))
    assert 5 <= len(done_before) < 27, "the run should be killed part-way"
    for path in done_before:
        json.loads(path.read_text())  # every result file is complete
    assert main(["run", "--resume", str(killed), "--quiet"]) == 0
    log = (killed / "run.log").read_text()
    assert f"{len(done_before)} reused" in log
    whole = tmp_path / "whole"
    subprocess.run(run_command(whole), env=env, cwd=tmp_path, check=True, capture_output=True)
    columns = ["dataset", "estimator", "fold", "status", "accuracy", "f1_macro", "f1_weighted", "balanced_accuracy"]
    resumed = pd.read_csv(killed / "scores.csv")[columns]
    uninterrupted = pd.read_csv(whole / "scores.csv")[columns]
    pd.testing.assert_frame_equal(resumed, uninterrupted)


def test_resuming_reuses_matching_cells_and_recomputes_stale_ones(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["run", "--datasets", "faces", "--estimators", "knn-pixels,logreg-pixels", "--folds", "3",
            "--out", str(out), "--no-cache", "--quiet"]
    assert main(base) == 0
    first = pd.read_csv(out / "scores.csv")
    assert main(base) == 0
    assert "6 cell(s) reused" in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_csv(out / "scores.csv").drop(columns=["fit_seconds", "predict_seconds"]),
                                  first.drop(columns=["fit_seconds", "predict_seconds"]))
    # another seed: other splits, so every cell is recomputed and the old ones set aside
    assert main(base + ["--seed", "5"]) == 0
    err = capsys.readouterr().err
    assert "0 cell(s) reused" in err and "6 stored cell(s) no longer matched" in err
    assert len(list(out.glob("replaced/*/cells/faces/*/fold-*.json"))) == 6
    # a different estimator set: the dropped estimator's cells leave the report
    assert main(base[:4] + ["knn-pixels"] + base[5:] + ["--seed", "5"]) == 0
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores["estimator"]) == {"knn-pixels"} and len(scores) == 3
    # a failed cell is retried by a resume
    cell = out / "cells" / "faces" / "knn-pixels" / "fold-1.json"
    data = json.loads(cell.read_text())
    cell.write_text(json.dumps({**data, "status": "failed", "scores": {}, "error": "boom"}))
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert json.loads(cell.read_text())["status"] == "ok"
    assert "2 cell(s) reused" in capsys.readouterr().err


class Exploding(ClassifierMixin, BaseEstimator):
    """Fails in fit as asked: "error", "memory", "slow" (a Python loop that never ends), "die"
    (SIGKILL, as the out-of-memory killer sends), "exit" (os._exit, as a crash in native code)."""

    def __init__(self, how="error"):
        self.how = how

    def fit(self, X, y):
        if self.how == "error":
            raise ValueError("bad estimator")
        if self.how == "memory":
            raise MemoryError("cannot allocate 80 GiB")
        if self.how == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.how == "exit":
            os._exit(3)
        while True:
            time.sleep(0.01)

    def predict(self, X):
        return np.zeros(len(X))


@pytest.fixture
def exploding(fresh_registry):
    for how in ("error", "memory", "slow", "die", "exit"):
        registry.register(f"explode-{how}", description=how)(lambda how=how: Exploding(how))


def test_an_exception_memory_error_or_timeout_fails_only_that_cell(tmp_path, exploding, capsys):
    out = tmp_path / "run"
    code = main(["run", "--datasets", "faces", "--estimators", "knn-pixels,explode-error,explode-memory,explode-slow",
                 "--folds", "2", "--jobs", "1", "--cell-timeout", "1", "--out", str(out), "--no-cache", "--quiet"])
    assert code == 1
    scores = pd.read_csv(out / "scores.csv").set_index(["estimator", "fold"])
    assert (scores.loc["knn-pixels", "status"] == "ok").all()
    assert scores.loc[("explode-error", 0), "error"] == "ValueError: bad estimator"
    assert scores.loc[("explode-memory", 1), "error"] == "MemoryError: cannot allocate 80 GiB"
    assert "longer than its time limit of 1 s" in scores.loc[("explode-slow", 0), "error"]
    report = (out / "report.md").read_text()
    assert "explode-slow / fold 1 failed" in report
    assert "6 failed cell(s)" in capsys.readouterr().err


def test_a_worker_that_dies_fails_its_cell_and_the_others_finish(tmp_path, exploding):
    config = RunConfig(["faces"], ["knn-pixels", "explode-die", "logreg-pixels"], folds=2)
    result = run(config, tmp_path, backend=LocalBackend(2))
    by = {(c.estimator, c.fold): c for c in result.cells}
    assert len(by) == 6
    assert all(by[(e, k)].status == "ok" for e in ("knn-pixels", "logreg-pixels") for k in (0, 1))
    assert all(WORKER_DIED in by[("explode-die", k)].error for k in (0, 1))


def test_a_cell_that_kills_its_process_at_jobs_1_fails_alone_and_the_run_ends_normally(tmp_path, exploding,
                                                                                      capsys):
    out = tmp_path / "run"
    code = main(["run", "--datasets", "faces", "--estimators", "knn-pixels,explode-die,explode-exit",
                 "--folds", "2", "--jobs", "1", "--out", str(out), "--no-cache", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert f"--resume {out}` retries the failed cells" in err
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    scores = pd.read_csv(out / "scores.csv").set_index(["estimator", "fold"])
    assert (scores.loc["knn-pixels", "status"] == "ok").all()
    for fold in (0, 1):
        assert scores.loc[("explode-die", fold), "error"] == f"{WORKER_DIED}; its exit: SIGKILL(-9)"
        assert scores.loc[("explode-exit", fold), "error"] == f"{WORKER_DIED}; its exit: EXIT(3)"
    assert (out / "report.md").is_file() and not (out / "running").exists()
    assert not RunStore(out).in_use()  # no stale lock


def test_progress_log_has_one_line_per_cell(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--datasets", "faces", "--estimators", "knn-pixels,logreg-pixels", "--folds", "3",
                 "--out", str(out), "--no-cache", "--quiet"]) == 0
    lines = [line for line in (out / "run.log").read_text().splitlines() if " / fold " in line]
    assert len(lines) == 6 and all("macro-F1" in line and line.endswith(" s") for line in lines)


def test_ctrl_c_keeps_finished_cells_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    from benchmark.cli.progress import Progress

    seen = []
    original = Progress.cell

    def interrupt_after_two(self, cell):
        original(self, cell)
        seen.append(cell)
        if len(seen) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Progress, "cell", interrupt_after_two)
    out = tmp_path / "run"
    code = main(["run", "--datasets", "faces", "--estimators", "knn-pixels,logreg-pixels", "--folds", "3",
                 "--jobs", "1", "--out", str(out), "--no-cache", "--quiet"])
    assert code == 130
    assert f"python -m benchmark run --resume {out}" in capsys.readouterr().err
    assert len(list(out.glob("cells/*/*/*.json"))) == 2
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert "4 planned cell(s) have no result" in (out / "report.md").read_text()


def test_two_runs_into_one_directory_at_once_are_refused(tmp_path, capsys):
    from filelock import FileLock

    out = tmp_path / "run"
    out.mkdir()
    with FileLock(str(out / ".lock")):
        code = main(["run", "--datasets", "faces", "--estimators", "knn-pixels", "--out", str(out), "--quiet"])
    assert code == 2
    assert "another run is writing to" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--jobs", str(os.cpu_count()), "--threads-per-cell", "2"], "threads exceed the"),
    (["--threads-per-cell", "4096"], "--threads-per-cell 4096 exceeds the"),
    (["--scheduler", "tcp://x:1"], "--scheduler needs --backend dask"),
    (["--cell-timeout", "0"], "--cell-timeout must be positive"),
    (["--resume", "nowhere"], "--resume takes the datasets"),
])
def test_bad_runner_options_are_usage_errors(args, message, capsys):
    assert main(["run", "--datasets", "faces", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores for 2 threads per cell")
def test_resume_keeps_the_runs_own_thread_count(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--datasets", "faces", "--estimators", "knn-pixels", "--folds", "2", "--jobs", "1",
                 "--threads-per-cell", "2", "--out", str(out), "--no-cache", "--quiet"]) == 0
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert "2 cell(s) reused" in capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["threads"] == {"workers": 1, "per_cell": 2}


class DiesWhenUnpickled(Exploding):
    """Kills the worker that unpickles it, before its cell's marker file can exist."""

    def __setstate__(self, state):
        super().__setstate__(state)
        if os.getpid() != state["creator"]:
            os.kill(os.getpid(), signal.SIGKILL)

    def __getstate__(self):
        return {**super().__getstate__(), "creator": getattr(self, "creator", os.getpid())}


def test_a_worker_that_dies_before_its_marker_is_not_resubmitted_forever(tmp_path, exploding):
    registry.register("dies-unpickled", description="dies")(lambda: DiesWhenUnpickled("die"))
    signal.alarm(240)  # a regression would loop for ever: fail the test instead
    try:
        config = RunConfig(["faces"], ["knn-pixels", "dies-unpickled"], folds=2)
        result = run(config, tmp_path, backend=LocalBackend(2))
    finally:
        signal.alarm(0)
    by = {(c.estimator, c.fold): c for c in result.cells}
    assert all(by[("knn-pixels", k)].status == "ok" for k in (0, 1))
    assert all(WORKER_DIED in by[("dies-unpickled", k)].error for k in (0, 1))
