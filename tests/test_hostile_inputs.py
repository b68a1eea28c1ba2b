"""Defects a hostile first hour found (issue 14): each test failed before its fix."""

import json
import os
import re
import signal
import stat

import pytest

from benchmark.cli import main
from benchmark.reporting.report import write_report
from features.cache import atomic_write

from test_report import fake_run  # noqa: E402 (tests/ is on sys.path)

RUN = ["run", "--datasets", "faces", "--estimators", "knn-pixels", "--quiet", "--jobs", "1", "--no-cache"]


def test_results_are_written_with_the_umask_not_private(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.txt", lambda f: f.write(b"x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_two_runs_in_the_same_second_get_their_own_directories(tmp_path, monkeypatch):
    from benchmark.execution import store

    monkeypatch.setattr(store, "new_run_id", lambda: "20260101-120000")
    first, second = store.RunStore.new(tmp_path).path, store.RunStore.new(tmp_path).path
    assert (first.name, second.name) == ("20260101-120000", "20260101-120000-2")
    assert first.is_dir() and second.is_dir()


def test_compare_with_a_corrupt_cell_exits_1_and_names_it(tmp_path, capsys):
    scores = {("d1", "e1"): [0.8, 0.7, 0.75], ("d1", "e2"): [0.5, 0.6, 0.55]}
    a, b = fake_run(tmp_path / "a", scores), fake_run(tmp_path / "b", scores)
    corrupt = b / "cells" / "d1" / "e1" / "fold-0.json"
    corrupt.write_text("{not json")
    assert main(["compare", str(a), str(b)]) == 1
    err = capsys.readouterr().err
    assert f"cannot read {corrupt}" in err and "Traceback" not in err


def test_report_exit_code_comes_from_the_unreadable_files_not_the_text(tmp_path):
    run = fake_run(tmp_path / "r", {("d1", "e1"): [0.8, 0.7, 0.75]})
    assert write_report(run).unreadable == []
    (run / "cells" / "d1" / "e1" / "fold-0.json").write_text("[]")
    report = write_report(run)
    assert [str(p) for p, _ in report.unreadable] == [str(run / "cells" / "d1" / "e1" / "fold-0.json")]
    assert main(["report", str(run)]) == 1


def test_an_unfinished_status_is_bold_once_and_the_command_is_shell_quoted(tmp_path):
    import json

    run = fake_run(tmp_path / "r", {("d1", "e1"): [0.8, 0.7, 0.75]})
    meta = json.loads((run / "run.json").read_text())
    meta.update(status="interrupted", command=["python -m benchmark", "run", "--out", "my results/x"])
    (run / "run.json").write_text(json.dumps(meta))
    text = write_report(run).path.read_text()
    assert "- **status: interrupted** (the run did not finish" in text
    assert "```\npython -m benchmark run --out 'my results/x'\n```" in text


def reported_command(text):
    """The command of a report.md, as the words a shell would pass."""
    import shlex

    block = re.search(r"Command:\n\n(`{3,})\n(.*?)\n\1\n", text, re.S)
    return shlex.split(block.group(2))


def test_the_reported_command_gives_back_exactly_the_arguments_that_ran(tmp_path):
    odd = "a b  `pwd` 'q' \"dq\" $HOME ${x} ``` \\ é✓ ; | & *\nsecond line"
    argv = ["run", "--datasets", "faces", "--estimators", "knn-pixels", "--folds", "2", "--no-cache",
            "--quiet", "--jobs", "1", "--out", str(tmp_path / odd)]
    assert main(argv) == 0
    text = (tmp_path / odd / "report.md").read_text()
    assert reported_command(text) == ["python", "-m", "benchmark", *argv]
    # a command of backticks alone: the fence outgrows them
    run = fake_run(tmp_path / "r", {("d1", "e1"): [0.8, 0.7, 0.75]})
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(dict(meta, command=["python -m benchmark", "run", "````"])))
    assert reported_command(write_report(run).path.read_text()) == ["python", "-m", "benchmark", "run", "````"]


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("image-benchmark ")


@pytest.mark.parametrize("option, message", [
    (["--seed", "-1"], "--seed must be an integer from 0 to 4294967295; got -1"),
    (["--seed", str(2**32)], "--seed must be an integer from 0 to 4294967295; got 4294967296"),
    (["--image-size", "100000"], "--image-size must be an integer from 1 to 1024; got 100000"),
    (["--backend", "dask", "--jobs", "99"], "--jobs 99 x --threads-per-cell 1 threads exceed the"),
])
def test_out_of_range_options_are_usage_errors_before_anything_runs(tmp_path, capsys, option, message):
    out = tmp_path / "run"
    assert main([*RUN, "--out", str(out), *option]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_cap_below_the_folds_points_at_the_cap(tmp_path, capsys):
    assert main([*RUN, "--out", str(tmp_path / "run"), "--max-per-class", "1"]) == 1
    err = capsys.readouterr().err
    assert "--max-per-class 1 leaves each class fewer images than the 5 folds need; use " \
           "--max-per-class 5 or more" in err
    assert "add images" not in err


def test_a_default_run_directory_is_made_only_once_the_options_pass(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*RUN, "--threads-per-cell", "999"]) == 2
    assert not (tmp_path / "results").exists()


def test_out_never_overwrites_a_folder_that_is_not_a_run(tmp_path, capsys):
    mine = tmp_path / "mine"
    (mine / "plots").mkdir(parents=True)
    (mine / "plots" / "mine.png").write_bytes(b"not a plot of ours")
    (mine / "report.md").write_text("my own report")
    assert main([*RUN, "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert "already holds files that are not a benchmark run" in err and "choose a new or empty" in err
    assert (mine / "plots" / "mine.png").read_bytes() == b"not a plot of ours"
    assert (mine / "report.md").read_text() == "my own report"
    # an empty folder, and a run directory of its own (run again into it), are fine
    (tmp_path / "empty").mkdir()
    assert main([*RUN, "--out", str(tmp_path / "empty")]) == 0
    assert main([*RUN, "--out", str(tmp_path / "empty")]) == 0


def test_latest_is_written_only_inside_results(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "home" / "x"
    assert main([*RUN, "--out", str(elsewhere)]) == 0
    assert not (tmp_path / "home" / "latest").exists()
    assert main(RUN) == 0  # the default: results/<run id>, and results/latest points at it
    latest = tmp_path / "results" / "latest"
    assert latest.is_symlink() and (latest / "run.json").is_file()


@pytest.mark.parametrize("edit", [
    {"scores": "high"}, {"fold": "zero"}, {"fold": True}, {"status": "great"},
    {"y_pred": ["a"]}, {"scores": {"accuracy": 2.0, "f1_macro": 0.5, "f1_weighted": 0.5,
                                   "balanced_accuracy": 0.5}},
    {"fit_seconds": "slow"}, {"history": [1, 2]}, {"test_index": ["x"] * 20},
])
@pytest.mark.slow
def test_a_cell_with_wrong_field_types_is_reported_and_recomputed_not_a_crash(tmp_path, capsys, edit):
    import json

    out = tmp_path / "run"
    assert main([*RUN, "--folds", "3", "--out", str(out)]) == 0
    cell = out / "cells" / "faces" / "knn-pixels" / "fold-1.json"
    good = json.loads(cell.read_text())
    cell.write_text(json.dumps({**good, **edit}))
    capsys.readouterr()
    assert main(["report", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"cannot read {cell}" in err and "not a valid cell record" in err and "Traceback" not in err
    # a resume recomputes it (and sets the bad file aside) rather than reusing it
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    again = json.loads(cell.read_text())
    assert again["scores"] == good["scores"] and again["y_pred"] == good["y_pred"]
    assert main(["report", str(out)]) == 0


def test_16_bit_images_are_scaled_to_8_bits_not_saturated(tmp_path):
    import numpy as np
    from PIL import Image

    from benchmark.data.image_folder import load_image_folder

    root = tmp_path / "wide"
    for label, level in (("dark", 10_000), ("bright", 50_000)):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), level + i, np.uint16)).save(root / label / f"{i}.png")
    assert Image.open(root / "dark" / "0.png").mode.startswith("I")
    data = load_image_folder(root, cache_dir=False)
    dark = data.images[data.labels == "dark"]
    bright = data.images[data.labels == "bright"]
    assert np.all(dark == round(10_000 / 257)) and np.all(bright == round(50_000 / 257))


def _folder(root, classes, n=8):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            pixels = rng.integers(0, 60, (8, 8, 3), dtype=np.uint8) + 60 * i
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{k}.png")


def test_one_class_spelled_nfc_and_nfd_is_one_class(tmp_path):
    import unicodedata

    from benchmark.data.image_folder import load_image_folder

    _folder(tmp_path / "d" / "train", [unicodedata.normalize("NFC", "café"), "tea"])
    _folder(tmp_path / "d" / "test", [unicodedata.normalize("NFD", "café"), "tea"])
    data = load_image_folder(tmp_path / "d", cache_dir=False)
    assert sorted(set(data.labels)) == ["café", "tea"] and data.class_counts["café"] == 16


def test_a_class_folder_named_in_invalid_utf8_is_read_and_reported(tmp_path, capsys):
    import os

    root = tmp_path / "odd"
    _folder(root, ["good"])
    bad = os.path.join(os.fsencode(root), b"caf\xe9")
    os.makedirs(bad)
    for k in range(8):
        with open(os.path.join(bad, b"%d.png" % k), "wb") as f, open(root / "good" / f"{k}.png", "rb") as g:
            f.write(g.read())
    out = tmp_path / "run"
    code = main(["run", "--datasets", f"folder:{root}", "--estimators", "knn-pixels", "--folds", "2",
                 "--out", str(out), "--quiet", "--no-cache", "--jobs", "1"])
    assert code == 0, capsys.readouterr().err
    classes = __import__("json").loads((out / "run.json").read_text())["datasets"][f"folder:{root}"]["classes"]
    assert sorted(classes) == ["caf\\xe9", "good"]
    assert "caf\\\\xe9" in (out / "report.md").read_text() or "caf\\xe9" in (out / "report.md").read_text()


def test_an_empty_class_folder_is_listed_in_the_report(tmp_path, capsys):
    root = tmp_path / "withempty"
    _folder(root, ["a", "b"])
    (root / "c").mkdir()
    out = tmp_path / "run"
    assert main(["run", "--datasets", f"folder:{root}", "--estimators", "knn-pixels", "--folds", "2",
                 "--out", str(out), "--quiet", "--no-cache", "--jobs", "1"]) == 0
    report = (out / "report.md").read_text()
    assert "empty class folder: no image files, so this class is not in the dataset" in report
    assert f"{root}/c" in report.replace("\\", "")


def test_the_same_folder_named_twice_runs_once_and_copies_run_apart(tmp_path, capsys):
    import shutil

    import pandas as pd

    root = tmp_path / "A"
    _folder(root, ["a", "b"])
    shutil.copytree(root, tmp_path / "A-copy")
    out = tmp_path / "run"
    names = f"folder:{root},folder:{root}/,folder:{tmp_path / 'A-copy'}"
    assert main(["run", "--datasets", names, "--estimators", "knn-pixels", "--folds", "2",
                 "--out", str(out), "--no-cache", "--jobs", "1"]) == 0
    assert f"folder:{root}/ is the same dataset as folder:{root}; it runs once" in capsys.readouterr().err
    scores = pd.read_csv(out / "scores.csv")
    assert sorted(scores["dataset"].unique()) == [f"folder:{root}", f"folder:{tmp_path / 'A-copy'}"]
    assert (scores["status"] == "ok").all() and len(scores) == 4


def test_a_data_dir_that_is_not_there_is_a_usage_error_for_run_as_for_datasets(tmp_path, capsys):
    for command in (["datasets"], RUN):
        assert main([*command, "--data-dir", str(tmp_path / "nowhere")]) == 2
        assert "is not an existing directory" in capsys.readouterr().err


def test_ctrl_c_before_the_first_cell_gives_no_resume_hint_that_cannot_work(tmp_path, monkeypatch, capsys):
    from benchmark.execution import preparation

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(preparation, "prepare_datasets", interrupted)
    out = tmp_path / "run"
    assert main([*RUN, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "nothing to resume" in err and "--resume" not in err


def test_ctrl_c_while_importing_is_one_line_not_a_traceback(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "benchmark", "run", "--all", "--out", str(tmp_path / "r")],
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    time.sleep(0.3)  # still importing
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("interrupted")


@pytest.mark.slow
def test_ctrl_c_swallowed_by_a_library_import_stops_the_run_before_any_cell(tmp_path):
    """An interrupt that a library caught while importing (on a loaded machine the test above
    once saw the run go on for minutes) ends the run once its setup is done: 130, one line."""
    import subprocess
    import sys

    script = ("import runpy, sys\n"
              "from benchmark.errors import received\n"
              "received.append(KeyboardInterrupt())  # as raise_interrupted leaves it\n"
              "sys.argv = ['benchmark', 'run', '--datasets', 'faces', '--estimators',\n"
              "            'logreg-pixels', '--out', 'r']\n"
              "runpy.run_module('benchmark', run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1].startswith("interrupted")
    assert not list(tmp_path.glob("r/cells/*"))


def test_a_worker_ignores_ctrl_c_so_only_the_run_handles_it(tmp_path):
    # a worker hit by SIGINT died with a KeyboardInterrupt traceback: the fork server reset
    # the SIG_IGN set in each child to the handler it had found at start. In a fresh process:
    # this one's joblib workers may come from an executor another test started
    import subprocess
    import sys

    script = ("import signal\n"
              "from joblib import delayed\n"
              "from benchmark.execution.worker_pool import parallel, start_fork_server\n"
              "if __name__ == '__main__':\n"
              "    assert start_fork_server()\n"
              "    print(parallel(2)(delayed(signal.getsignal)(signal.SIGINT) for _ in range(4)))\n")
    (tmp_path / "probe.py").write_text(script)
    done = subprocess.run([sys.executable, "probe.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([signal.SIG_IGN] * 4)


@pytest.mark.parametrize("option", [["--folds", "2"], ["--seed", "3"], ["--image-size", "16"],
                                    ["--max-per-class", "10"], ["--protocol", "cv"], ["--full"]])
@pytest.mark.slow
def test_resume_refuses_configuration_options_instead_of_ignoring_them(tmp_path, capsys, option):
    out = tmp_path / "run"
    assert main([*RUN, "--folds", "3", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["run", "--resume", str(out), *option]) == 2
    err = capsys.readouterr().err
    assert f"drop {option[0]}" in err and len(err.strip().splitlines()) == 1
    assert main(["run", "--resume", str(out), "--quiet"]) == 0  # without them it resumes


def test_holdout_repeats_that_cannot_differ_run_once_and_say_so():
    import numpy as np

    from benchmark.data import Dataset
    from benchmark.reporting.leaderboard import describe_sampling
    from benchmark.data.protocols import plan_splits

    labels = np.array(["a", "b"] * 20)
    split = np.array(["train"] * 30 + ["test"] * 10)
    toy = Dataset("toy", np.zeros((40, 4, 4, 1), np.uint8), labels, split=split)
    plan = plan_splits(toy, protocol="holdout", repeats=3, max_per_class=None, seed=0)
    assert len(plan.splits) == 1
    text = describe_sampling(plan.describe(labels))
    assert "1 repeat(s)" in text and "3 repeats asked" in text and "run once" in text
    capped = plan_splits(toy, protocol="holdout", repeats=3, max_per_class=10, seed=0)
    assert len(capped.splits) == 3 and capped.note == ""  # a cap below the class sizes: samples differ
    # --train-sizes draws each repeat's own training sample: the repeats are kept
    resampled = plan_splits(toy, protocol="holdout", repeats=3, max_per_class=None, seed=0, resampled=True)
    assert len(resampled.splits) == 3 and [s.seed for s in resampled.splits] == [0, 1, 2]
    assert "each with its own training samples for --train-sizes" in resampled.note


def test_resume_from_another_directory_finds_the_folder_and_a_missing_one_keeps_its_cells(
        tmp_path, monkeypatch, capsys):
    import json

    work = tmp_path / "work"
    _folder(work / "data" / "pets", ["cat", "dog"])
    monkeypatch.chdir(work)
    out = tmp_path / "run"
    argv = ["run", "--datasets", "folder:data/pets", "--estimators", "knn-pixels,logreg-pixels",
            "--folds", "2", "--out", str(out), "--quiet", "--no-cache", "--jobs", "1"]
    assert main(argv) == 0
    cells = sorted(p.relative_to(out) for p in out.glob("cells/*/*/fold-*.json"))
    assert len(cells) == 4
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["locations"] == {"folder:data/pets": str(work / "data" / "pets")}

    monkeypatch.chdir(tmp_path)  # elsewhere: the run still finds its folder
    capsys.readouterr()
    assert main(["run", "--resume", str(out)]) == 0
    assert "4 cell(s) reused" in capsys.readouterr().err
    assert not (out / "replaced").exists()

    (work / "data" / "pets").rename(work / "data" / "moved")  # gone: its cells must stay
    assert main(["run", "--resume", str(out), "--quiet"]) == 1
    assert sorted(p.relative_to(out) for p in out.glob("cells/*/*/fold-*.json")) == cells
    assert not (out / "replaced").exists()
    assert "skipped" in (out / "report.md").read_text()


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc to list the run's processes")
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGKILL"])
@pytest.mark.slow
def test_a_terminated_or_killed_run_leaves_no_process_and_sigterm_is_handled_like_ctrl_c(tmp_path, signame):
    import json
    import signal
    import subprocess
    import sys
    import time

    from benchmark.execution.processes import alive, descendants

    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmark", "run", "--datasets", "faces,textures", "--estimators",
         "cnn-fast,knn-pixels", "--jobs", "2", "--out", str(out), "--no-cache", "--quiet"],
        stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    deadline = time.time() + 120
    while not (out / "run.json").exists() and time.time() < deadline:  # the cells have started
        time.sleep(0.2)
    time.sleep(2)
    family = descendants(proc.pid)
    assert family, "the run should have started worker processes"
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=120)
    deadline = time.time() + 30
    while any(alive(p) for p in family) and time.time() < deadline:
        time.sleep(0.5)
    assert not [p for p in family if alive(p)], "processes outlived the run"
    if signame == "SIGTERM":
        assert proc.returncode == 143, err
        assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
        assert f"python -m benchmark run --resume {out}" in err and "Traceback" not in err
        assert not (out / "running").exists()
    else:
        assert proc.returncode == -signal.SIGKILL


def test_a_folder_whose_path_holds_a_comma_is_given_with_dataset(tmp_path, capsys):
    root = tmp_path / "cats,dogs"
    _folder(root, ["cat", "dog"])
    out = tmp_path / "run"
    assert main(["run", "--dataset", f"folder:{root}", "--estimators", "knn-pixels", "--folds", "2",
                 "--out", str(out), "--quiet", "--no-cache", "--jobs", "1"]) == 0
    assert f"folder:{root}" in (out / "run.json").read_text()


def test_a_worker_killed_while_warming_up_is_no_traceback(monkeypatch):
    # SIGTERM to a worker during the preparation printed "Exception in thread ... TerminatedWorkerError"
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    from benchmark.execution import backends

    def killed(n_jobs, **kwargs):
        def call(tasks):
            raise TerminatedWorkerError("A worker process managed by the executor was unexpectedly terminated.")
        return call

    monkeypatch.setattr(backends, "parallel", killed)
    assert backends._start_workers(2) is None


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="needs os.register_at_fork (POSIX)")
def test_workers_watch_the_run_process_named_by_the_run_even_once_the_server_is_orphaned(tmp_path):
    # SIGKILL while the fork server was still importing left it reparented to init: it took
    # init for the run's process, and the worker it forked next lived on with it
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    script = ("import os, sys, time\n"
              "import benchmark.execution.parent_death\n"
              "pid = os.fork()\n"
              "if pid == 0:\n"
              "    time.sleep(20)\n"
              "    os._exit(0)\n"
              "sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n")
    done = subprocess.run([sys.executable, "-c", script], timeout=60, cwd=tmp_path,
                          env={**os.environ, "BENCHMARK_RUN_PID": str(dead.pid),
                               "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 1  # the forked worker saw the run gone and exited at once


@pytest.mark.parametrize("ending", ["exit_after_interrupt(130)", "raise SystemExit(130)"])
def test_an_interrupt_that_passed_through_exec_still_exits_130(tmp_path, ending):
    # Ctrl-C while scipy imported numpy through exec() made `python -m benchmark` exit -2
    # (CPython 3.11 kills itself with SIGINT at the end), not the documented 130
    import subprocess
    import sys

    script = ("from benchmark.errors import exit_after_interrupt\n"
              "try:\n"
              "    exec('raise KeyboardInterrupt')\n"
              "except KeyboardInterrupt:\n"
              "    pass\n" + ending + "\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    if ending.startswith("raise") and done.returncode != 130:
        assert done.returncode == -2  # the CPython behaviour that exit_after_interrupt avoids
    elif not ending.startswith("raise"):
        assert done.returncode == 130


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="needs os.register_at_fork (POSIX)")
@pytest.mark.parametrize("run_alive", [True, False])
def test_a_worker_failing_to_start_after_the_run_ended_prints_nothing(tmp_path, run_alive):
    # Ctrl-C in the preparation: a worker still being started failed to unpickle the pool's
    # semaphores (the exiting run had removed them) and printed a traceback after "interrupted"
    import subprocess
    import sys

    if run_alive:
        run_pid = os.getpid()
    else:
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        run_pid = gone.pid
    script = "import benchmark.execution.parent_death\nraise FileNotFoundError(2, 'No such file or directory')\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={**os.environ, "BENCHMARK_RUN_PID": str(run_pid),
                                             "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 1
    assert ("FileNotFoundError" in done.stderr) is run_alive


def test_exiting_after_an_interrupt_stops_the_worker_pool_instead_of_waiting_on_it(tmp_path):
    # Ctrl-C during the preparation hung the run after "interrupted": the exit handlers joined
    # the pool's workers, which nothing had told to stop (threading's shutdown was skipped)
    import subprocess
    import sys

    script = ("from joblib import delayed\n"
              "from benchmark.errors import exit_after_interrupt\n"
              "from benchmark.execution.worker_pool import parallel, start_fork_server\n"
              "if __name__ == '__main__':\n"
              "    start_fork_server()\n"
              "    parallel(2)(delayed(abs)(i) for i in range(4))\n"
              "    exit_after_interrupt(130)\n")
    (tmp_path / "probe.py").write_text(script)
    done = subprocess.run([sys.executable, "probe.py"], cwd=tmp_path, timeout=60, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 130, done.stderr
