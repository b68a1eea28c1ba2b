"""Errors of the machine, not the user: a full disk, a file-size limit, a read-only cache.
Each is one line on stderr, the cells already written stay valid, and run.json never says
"running", nor "finished" for a run whose report was not written."""

import errno
import json
import os
import subprocess
import sys

import pytest

import features.cache
from benchmark.cli import main
from benchmark.execution.cell_record import read_cell
from benchmark.execution.store import RunStore

RUN = ["run", "--datasets", "digits", "--estimators", "knn-pixels,logreg-pixels", "--folds", "2",
       "--max-per-class", "20", "--jobs", "1", "--no-cache", "--quiet"]


@pytest.fixture
def full_disk(monkeypatch):
    """Make every write into a file whose name holds one of `state["names"]` fail with ENOSPC,
    once `state["after"]` such files were written (and, with `state["all"]`, every write
    after the first failure), as a full disk does."""
    state = {"names": (), "after": 0, "written": 0, "full": False, "all": False}

    class Writes(features.cache._PythonWrites):
        def __init__(self, file, path):
            super().__init__(file, path)
            self.fails = state["full"] and state["all"]
            if any(n in path.name for n in state["names"]):
                self.fails = self.fails or state["written"] >= state["after"]
                state["written"] += 1

        def write(self, data):
            if self.fails:
                state["full"] = True
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self._file.write(data)

    monkeypatch.setattr(features.cache, "_PythonWrites", Writes)
    return state


def error_lines(err):
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_a_full_disk_while_cells_are_written_ends_the_run_in_one_line_and_keeps_them(tmp_path, capsys,
                                                                                     full_disk):
    out = tmp_path / "run"
    full_disk.update(names=("fold-",), after=3)  # 3 files: fold 0's probabilities and JSON, fold 1's probabilities
    code = main(RUN + ["--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    [line] = error_lines(err)
    assert line == (f"error: disk full writing {out}/cells/digits/knn-pixels/fold-1.json: free space on "
                    f"{_mount(tmp_path)} or point --out elsewhere; 1 finished cell(s) are kept in "
                    f"{out}/cells; their report: {out}/report.md; resume with: python -m benchmark run "
                    f"--resume {out}")
    assert json.loads((out / "run.json").read_text())["status"] == "crashed"
    [cell] = RunStore(out).cell_files()
    assert read_cell(cell).status == "ok" and not list(out.glob("**/.*.tmp"))
    assert not RunStore(out).in_use() and not (out / "running").exists()
    full_disk.update(names=())  # space freed: the resume finishes the run
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert len(RunStore(out).cell_files()) == 4


def test_a_disk_too_full_for_run_json_still_marks_it_crashed_in_place(tmp_path, capsys, full_disk):
    out = tmp_path / "run"
    full_disk.update(names=("fold-",), after=2, all=True)  # then nothing more fits: run.json neither
    assert main(RUN + ["--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(error_lines(err)) == 1
    assert "1 finished cell(s) are kept" in err and "their report" not in err
    assert json.loads((out / "run.json").read_text())["status"] == "crashed"


def test_a_full_disk_while_the_report_is_written_is_no_finished_run(tmp_path, capsys, full_disk):
    out = tmp_path / "run"
    full_disk.update(names=("report.md",), all=True)
    assert main(RUN + ["--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = error_lines(err)
    assert line.startswith(f"error: disk full writing {out}/report.md: free space on ")
    assert "4 finished cell(s) are kept" in line
    assert json.loads((out / "run.json").read_text())["status"] == "crashed"
    assert len(RunStore(out).cell_files()) == 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
@pytest.mark.slow
def test_a_file_size_limit_is_one_line_not_a_silent_death(tmp_path):
    import resource

    out = tmp_path / "run"

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))

    done = subprocess.run([sys.executable, "-m", "benchmark", *RUN, "--out", str(out)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, preexec_fn=limit,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    [line] = error_lines(done.stderr)
    assert "file-size limit reached writing " in line and "(ulimit -f: 20,000 bytes)" in line
    assert json.loads((out / "run.json").read_text())["status"] == "crashed"
    assert all(read_cell(path).status == "ok" for path in RunStore(out).cell_files())


def test_an_unwritable_cache_directory_is_one_note_and_the_run_goes_on(tmp_path, capsys, monkeypatch):
    blocked = tmp_path / "a-file"  # a cache directory under a file cannot be made, even by root
    blocked.write_text("")
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(blocked / "cache"))
    out = tmp_path / "run"
    args = [a for a in RUN if a != "--no-cache"]
    assert main(args + ["--out", str(out)]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert notes == [f"note: cache directories {blocked}/cache/features and {blocked}/cache/folders are "
                     "not writable (Not a directory): caching is off for this run; point --cache-dir "
                     "(or BENCHMARK_CACHE_DIR) at a writable folder"]
    assert "Traceback" not in err


def _mount(path):
    from benchmark.errors import mount_point

    return mount_point(path)
