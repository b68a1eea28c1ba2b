"""One owner of the run directory (issue 15): RunStore, and the runner writing run.json."""

import json
import re
from pathlib import Path

import pytest

from benchmark.execution.runner import RunConfig, run
from benchmark.execution.store import RunStore
from benchmark.reporting.report import write_report

ROOT = Path(__file__).resolve().parents[1]
CONFIG = dict(datasets=["faces"], estimators=["knn-pixels"], folds=2)


class Broken:
    """A backend whose pool dies after it has written to its scratch (as a crashed executor would)."""

    def __init__(self, scratch):
        self.scratch = Path(scratch)

    def run(self, work):
        self.scratch.mkdir(parents=True, exist_ok=True)
        (self.scratch / "shared-array.npy").write_bytes(b"x")
        raise RuntimeError("the pool broke")
        yield


class Interrupted(Broken):
    def run(self, work):
        self.scratch.mkdir(parents=True, exist_ok=True)
        (self.scratch / "shared-array.npy").write_bytes(b"x")
        raise KeyboardInterrupt
        yield


def test_the_runner_writes_run_json_itself(tmp_path):
    result = run(RunConfig(**CONFIG), tmp_path / "run", argv=["test"])
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["status"] == "finished" and meta["command"] == ["test"]
    assert meta["plan"] == {"faces": {"estimators": ["knn-pixels"], "folds": 2}}
    assert len(result.cells) == 2 and not (tmp_path / "run" / "running").exists()


def test_the_local_workers_scratch_is_the_runs_running_folder_or_their_own(tmp_path):
    from benchmark.execution.backends import LocalBackend, make_backend

    store = RunStore(tmp_path / "run")
    assert make_backend("local", 2, scratch=store.running_dir).scratch == store.running_dir
    seen = []
    backend = LocalBackend(1)  # no scratch given: a temporary folder of its own, removed after
    original = backend._run

    def spy(work, scratch):
        seen.append(scratch)
        assert scratch.is_dir()
        return original(work, scratch)

    backend._run = spy
    run(RunConfig(**CONFIG), store, backend=backend)
    assert seen and not seen[0].exists() and not str(seen[0]).startswith(str(store.path))


@pytest.mark.parametrize("backend, error, status", [(Broken, RuntimeError, "crashed"),
                                                    (Interrupted, KeyboardInterrupt, "interrupted")])
def test_a_run_that_stops_leaves_no_temporary_file_and_says_why(tmp_path, backend, error, status):
    out = tmp_path / "run"
    with pytest.raises(error):
        run(RunConfig(**CONFIG), out, backend=backend(out / "running"))
    assert json.loads((out / "run.json").read_text())["status"] == status
    assert not (out / "running").exists()


def test_a_killed_run_is_reported_stopped_not_running(tmp_path):
    out = tmp_path / "run"
    run(RunConfig(**CONFIG), out)
    meta = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps(dict(meta, status="running")))  # as SIGKILL leaves it
    (out / ".lock").write_text("")
    write_report(out)
    text = (out / "report.md").read_text()
    assert "**status: stopped**" in text and "--resume" in text
    import subprocess
    import sys
    import time

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom filelock import FileLock\n"
                               f"lock = FileLock({str(out / '.lock')!r}); lock.acquire()\n"
                               "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert RunStore(out).in_use()  # another process writes it: running it is
        write_report(out)
        assert "**status: running**" in (out / "report.md").read_text()
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert not RunStore(out).in_use()


def test_stale_temporary_files_are_removed(tmp_path):
    store = RunStore(tmp_path / "run").prepare()
    (store.cells_dir / "faces").mkdir(parents=True)
    stale = store.cells_dir / "faces" / ".fold-0.json.abc123.tmp"
    stale.write_text("half")
    keep = store.cells_dir / "faces" / "notes.txt"
    keep.write_text("mine")
    store.running_dir.mkdir()
    store.remove_temporary()
    assert not stale.exists() and not store.running_dir.exists() and keep.exists()


def test_only_the_store_knows_the_run_directorys_file_names():
    names = r'"(run\.json|run\.log|\.lock|replaced|cells|latest|report\.md|plots|\.write-test)"'
    offenders = []
    for path in (ROOT / "benchmark").rglob("*.py"):
        if path.name == "store.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(names, line.split("#")[0]):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
