"""Fault injection: signals at every phase of a run, and what is left afterwards.

Claim checked
    Whatever signal ends a run, and wherever it lands, nothing is lost and nothing is silent:
    no process of the run survives it, run.json is valid JSON with a status that says what
    happened, every cell file on disk is a valid cell, the user's own file beside the run is
    untouched, and the resume command finishes the run (exit 0) with every cell's scores
    equal to an uninterrupted reference run. The cases that corrupt cell files are in
    tests/test_hostile_inputs.py (they are fast); this script holds the slow ones.

How it is measured
    * Data: two generated image folders (3 classes x 24 and x 12 images, 16x16 RGB, seeded; two,
      so that a worker prepares the second while the run's process prepares the first) in a
      temporary directory, with a file of the user's (`notes.txt`) beside the run directory.
    * Command: `python -m benchmark run --datasets folder:A,folder:B --estimators cnn-fast,knn-pixels,
      logreg-pixels --folds 3 --jobs 2 --no-cache --quiet --out RUN`, as a subprocess.
    * Faults: SIGINT, SIGTERM and SIGKILL, sent to the main process or to one worker process,
      in each phase: `imports` (0.3 s after start), `preparation` (run.log written, run.json
      not yet), `cells` (the first cell file written) and `report` (every cell file written,
      the report not yet). A worker exists from the preparation on, so 3 x (1 + 2 x 3) = 21
      cases; a phase the run passes through before the signal lands is reported as missed, and
      a worker signalled after its phase ended says where it landed.
    * After each: the run's processes (all descendants of the main process, listed from /proc
      just before the signal) are checked gone within 30 s; run.json, the cells and the user's
      file are checked; then `run --resume RUN` (or, when nothing was planned yet, the same
      command again) must exit 0 and leave cells equal to the reference run's.

Machine faults (`--suite machine`): a dying cell, a full disk, a file-size limit, a read-only cache
    * Data: the embedded `digits`, 20 per class, 2 folds, knn-pixels and logreg-pixels, and a
      plug-in estimator (an entry point of a generated distribution put on PYTHONPATH) whose
      fit ends its own process: die-exit (os._exit(3), as a crash in native code) and die-kill
      (SIGKILL, as the out-of-memory killer sends it).
    * Cases: each dying estimator at --jobs 1 and --jobs 2: exit 1, run.json "finished", the
      report written, the dying cells failed with the reason, every other cell equal to the
      reference run's. The disk full during the cells and during the report (a 4 MB tmpfs
      mounted for the case, --out inside it, a filler file leaving room for half the cells, or
      for the cells and not the report; skipped where no tmpfs can be mounted) and a file-size
      limit (RLIMIT_FSIZE between the largest cell file and the largest plot): exit 1, exactly
      one `error:` line and no traceback, run.json "crashed", every cell file valid; then, the
      filler removed or the limit gone, `run --resume` exits 0 with the reference's cells. A
      read-only cache directory (BENCHMARK_CACHE_DIR on a read-only tmpfs): one `note:` line,
      exit 0, the reference's cells.
    * Each fault counts once per kind of problem: lost data (a cell invalid or missing),
      exited wrongly (exit code, a traceback, not exactly the expected error line, run.json's
      status, a lock or a process left) or a stale result (a cell unlike the reference's).

Stale results (`--suite stale`): what changed between a run and its `run --resume`
    * Images rewritten with their old size and modification time (`cp -p`, `rsync -a`, a
      restored backup): a generated folder of 3 classes x 12 BMPs (a BMP's size depends only on
      its shape), each class bright in its own channel, is run with the decoded-folder cache on;
      every image is then rewritten as noise of a random channel, with its old times; the resume
      must recompute every cell, its cells must equal a fresh run's on the new images
      (--no-cache), and differ from the first run's.
    * An estimator's source edited: a plug-in (an entry point, as above) whose `_make_head`
      reads a module-level depth; the run, then the depth changed in the file, then the
      resume: every cell of the plug-in recomputed and equal to a fresh run of the edited code,
      the other estimators' cells reused.
    * Counted like the machine faults; "stale result" is a resumed cell unlike the fresh run's.

Run from the repository root (Linux): `python benchmarks/fault_injection.py` (about 15 minutes
on 2 cores; `--signals SIGKILL --phases cells` for part; `--suite machine` for the machine
faults only, a few minutes; `--suite stale` for the stale results, a minute). Prints one line per case and the number of faults that lost data,
left a process, exited wrongly or served a stale result (target 0). Exits 0.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from benchmark.execution.processes import alive, descendants  # noqa: E402

PHASES = ("imports", "preparation", "cells", "report")
SIGNALS = ("SIGINT", "SIGTERM", "SIGKILL")
ESTIMATORS = "cnn-fast,knn-pixels,logreg-pixels"


def make_folder(root, seed, per_class):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i, label in enumerate(("red", "green", "blue")):
        (root / label).mkdir(parents=True)
        for k in range(per_class):
            pixels = rng.integers(0, 90, (16, 16, 3))
            pixels[..., i] += 120
            Image.fromarray(pixels.astype(np.uint8)).save(root / label / f"{k}.png")


def command(data, out):
    datasets = ",".join(f"folder:{folder}" for folder in data)
    return [sys.executable, "-m", "benchmark", "run", "--datasets", datasets, "--estimators",
            ESTIMATORS, "--folds", "3", "--jobs", "2", "--no-cache", "--quiet", "--out", str(out)]


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def cells_of(out):
    """{relative cell path: scores} of every valid cell, and the invalid ones."""
    from benchmark.execution.cell_record import read_cell

    good, bad = {}, []
    for path in sorted(out.glob("cells/*/*/fold-*.json")):
        try:
            good[str(path.relative_to(out))] = read_cell(path).scores
        except (OSError, ValueError, TypeError) as exc:
            bad.append(f"{path.name}: {exc}")
    return good, bad


def wait_for(phase, out, proc, started, limit=120):
    """Block until the run reaches `phase`; False if it finished first (the phase was missed)."""
    while time.time() - started < limit:
        if proc.poll() is not None:
            return False
        planned = None
        if (out / "run.json").exists():
            try:
                meta = json.loads((out / "run.json").read_text())
                planned = sum(len(p["estimators"]) * p["folds"] for p in meta.get("plan", {}).values())
            except (OSError, ValueError):
                pass
        n_cells = len(list(out.glob("cells/*/*/fold-*.json")))
        if phase == "imports" and time.time() - started >= 0.3:
            return True
        if phase == "preparation" and (out / "run.log").exists() and not (out / "run.json").exists():
            return True
        if phase == "cells" and n_cells >= 1 and (planned is None or n_cells < planned):
            return True
        if phase == "report" and planned and n_cells >= planned and not (out / "report.md").exists():
            return True
        time.sleep(0.02)
    return False


def phase_now(out):
    """The phase the run is in, from its files (for the line of a case whose signal came late)."""
    if not (out / "run.json").exists():
        return "preparation"
    return "cells" if not (out / "report.md").exists() else "report"


def one_case(signame, target, phase, data, reference, tmp):
    out = tmp / f"{signame}-{target}-{phase}" / "run"
    out.parent.mkdir(parents=True)
    notes = out.parent / "notes.txt"
    notes.write_text("the user's own file")
    started = time.time()
    proc = subprocess.Popen(command(data, out), cwd=tmp, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    if not wait_for(phase, out, proc, started):
        proc.communicate()
        return "missed", f"the run passed {phase} before the signal"
    parents = {}
    family = descendants(proc.pid, parents)
    victim = proc.pid
    if target == "worker":  # a worker: a process the run's fork server forked (not a tracker)
        looked = time.time()
        while True:  # in the preparation the first worker appears a moment after run.log
            workers = [p for p in family if parents[p] != proc.pid and b"forkserver" in cmdline(parents[p])]
            if workers or time.time() - looked > 10 or proc.poll() is not None:
                break
            time.sleep(0.02)
            family = descendants(proc.pid, parents)
        if not workers:
            proc.communicate()
            return "missed", "no worker process yet"
        victim = workers[0]
    landed = phase_now(out)
    os.kill(victim, getattr(signal, signame))
    try:
        _, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return "FAULT", ("the run's stderr stayed open 180 s after the signal: a process of the run "
                         "lived on")
    (out.parent / "stderr.txt").write_text(err)  # kept for a FAULT's post-mortem
    problems = []
    deadline = time.time() + 30
    while any(alive(p) for p in family) and time.time() < deadline:
        time.sleep(0.3)
    left = [p for p in family if alive(p)]
    if left:
        problems.append(f"{len(left)} process(es) outlived the run")
        for p in left:
            os.kill(p, signal.SIGKILL)
    if "Traceback" in err:
        problems.append(f"a traceback on stderr ({out.parent / 'stderr.txt'})")
    code = proc.returncode
    if target == "main":
        expected = {"SIGINT": 130, "SIGTERM": 143, "SIGKILL": -9}[signame]
        if code != expected:
            problems.append(f"exit {code}, expected {expected}")
    elif code not in (0, 1):
        problems.append(f"exit {code} after a worker died (expected 0, or 1 with its cell failed)")
    if (out / "run.json").exists():
        try:
            status = json.loads((out / "run.json").read_text())["status"]
            wanted = {"main": "running" if signame == "SIGKILL" else "interrupted"}.get(target)
            if target == "main" and status != wanted and phase != "report":
                problems.append(f"run.json status {status!r}, expected {wanted!r}")
        except (OSError, ValueError, KeyError) as exc:
            problems.append(f"run.json unreadable: {exc}")
    _, bad = cells_of(out)
    if bad:
        problems.append(f"invalid cell files: {bad[:2]}")
    if notes.read_text() != "the user's own file":
        problems.append("the user's file changed")
    # finish the run: resume (or the same command when nothing was planned yet)
    again = (["run", "--resume", str(out), "--quiet"] if (out / "run.json").exists()
             else command(data, out)[3:])
    done = subprocess.run([sys.executable, "-m", "benchmark", *again], cwd=tmp, capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        problems.append(f"finishing it exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    good, bad = cells_of(out)
    if good != reference:
        differ = sorted(k for k in set(good) | set(reference) if good.get(k) != reference.get(k))
        problems.append(f"{len(differ)} cell(s) differ from the reference after finishing: {differ[:2]}")
    if notes.read_text() != "the user's own file":
        problems.append("the user's file changed")
    where = "" if landed == phase or phase in ("imports", "report") else f" (landed in {landed})"
    return ("FAULT", "; ".join(problems) + where) if problems else ("ok", f"exit {code}, finished by resume{where}")


# ---- machine faults: a dying cell, a full disk, a file-size limit, a read-only cache --------

MACHINE_ESTIMATORS = "knn-pixels,logreg-pixels"
PLUGIN = """import os, signal
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class Dies(ClassifierMixin, BaseEstimator):
    # ends its own process in fit: how="exit" (os._exit) or "kill" (SIGKILL)

    def __init__(self, how="exit"):
        self.how = how

    def fit(self, X, y):
        if self.how == "exit":
            os._exit(3)
        os.kill(os.getpid(), signal.SIGKILL)

    def predict(self, X):
        return np.zeros(len(X))


def dies_by_exit():
    return Dies("exit")


def dies_by_kill():
    return Dies("kill")
"""


def install_plugin(root):
    """A distribution in `root` whose entry points register die-exit and die-kill."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "fault_plugin.py").write_text(PLUGIN)
    dist = root / "fault_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fault-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[image_benchmark.estimators]\n"
                                           "die-exit = fault_plugin:dies_by_exit\n"
                                           "die-kill = fault_plugin:dies_by_kill\n")


def machine_command(out, jobs=2, extra=(), estimators=MACHINE_ESTIMATORS):
    return [sys.executable, "-m", "benchmark", "run", "--datasets", "digits", "--estimators", estimators,
            "--folds", "2", "--max-per-class", "20", "--jobs", str(jobs), "--no-cache", "--quiet",
            "--out", str(out), *extra]


def status_of(out):
    try:
        return json.loads((out / "run.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


def locked(out):
    from benchmark.execution.store import RunStore

    return RunStore(out).in_use()


def run_case(cmd, tmp, env, preexec_fn=None):
    """(exit code, stderr, processes left) of `cmd`."""
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, preexec_fn=preexec_fn)
    family = set()
    while proc.poll() is None:  # the processes the run started, to check that none outlives it
        family.update(descendants(proc.pid))
        time.sleep(0.1)
    err = proc.stderr.read()
    deadline = time.time() + 30
    while any(alive(p) for p in family) and time.time() < deadline:
        time.sleep(0.3)
    return proc.returncode, err, [p for p in family if alive(p)]


def new_problems():
    return {"lost data": [], "exited wrongly": [], "stale result": []}


def judge(problems, code, err, left, out, want_code, want_status, error_lines):
    """Add the 'exited wrongly' problems of a finished case to `problems`."""
    if code != want_code:
        problems["exited wrongly"].append(f"exit {code}, expected {want_code}")
    if "Traceback" in err:
        problems["exited wrongly"].append("a traceback on stderr")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if len(errors) != error_lines:
        problems["exited wrongly"].append(f"{len(errors)} error line(s), expected {error_lines}")
    if status_of(out) != want_status:
        problems["exited wrongly"].append(f"run.json {status_of(out)!r}, expected {want_status!r}")
    if locked(out):
        problems["exited wrongly"].append("its lock is still held")
    if left:
        problems["exited wrongly"].append(f"{len(left)} process(es) outlived the run")
        for p in left:
            os.kill(p, signal.SIGKILL)


def compare(problems, out, reference, allow_missing=False):
    """Lost data (invalid cells, or missing ones unless `allow_missing`) and stale results;
    return the valid cells."""
    good, bad = cells_of(out)
    if bad:
        problems["lost data"].append(f"invalid cell files: {bad[:2]}")
    missing = sorted(set(reference) - set(good))
    if missing and not allow_missing:
        problems["lost data"].append(f"{len(missing)} cell(s) missing: {missing[:2]}")
    differ = sorted(k for k in good if k in reference and good[k] != reference[k])
    if differ:
        problems["stale result"].append(f"{len(differ)} cell(s) differ from the reference: {differ[:2]}")
    return good


def resume(problems, out, tmp, env):
    done = subprocess.run([sys.executable, "-m", "benchmark", "run", "--resume", str(out), "--quiet"],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or status_of(out) != "finished":
        problems["exited wrongly"].append(f"the resume exited {done.returncode}, run.json {status_of(out)!r}")


def dying_cell_case(how, jobs, tmp, env, reference):
    from benchmark.execution.cell_record import read_cell

    out = tmp / f"die-{how}-jobs{jobs}" / "run"
    problems = new_problems()
    code, err, left = run_case(machine_command(out, jobs, estimators=f"{MACHINE_ESTIMATORS},die-{how}"), tmp, env)
    (out.parent / "stderr.txt").write_text(err)
    judge(problems, code, err, left, out, 1, "finished", 0)
    if not (out / "report.md").exists():
        problems["exited wrongly"].append("no report")
    good = compare(problems, out, reference)
    dying = [read_cell(p) for p in sorted(out.glob(f"cells/digits/die-{how}/fold-*.json"))]
    if len(dying) != 2 or any(c.status != "failed" or "worker process died" not in (c.error or "") for c in dying):
        problems["lost data"].append(f"the dying cells are not both failed with the reason: {[c.error for c in dying]}")
    reason = dying[0].error.split(";")[-1].strip() if dying else "-"
    same = sum(good.get(k) == v for k, v in reference.items())
    return problems, f"exit {code}, report written, {same} cells equal the reference's, die-{how} failed ({reason})"


def mount_tmpfs(where, kilobytes, options=""):
    """Mount a tmpfs of `kilobytes` at `where`; False where this process may not."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k{options}", "tmpfs", str(where)],
                          capture_output=True)
    return done.returncode == 0


def free_kilobytes(where):
    stats = os.statvfs(where)
    return stats.f_bavail * stats.f_frsize // 1024


def disk_full_case(phase, tmp, env, reference, reference_dir):
    """The disk fills up while the cells (or the report) are written: a tmpfs with a filler
    that leaves room for about half the cells (or for the cells but not the report)."""
    mount = tmp / f"disk-full-{phase}"
    if not mount_tmpfs(mount, 4096):
        return None, "cannot mount a tmpfs here (not root?): skipped"
    try:
        out = mount / "run"
        def kilobytes(pattern):  # as a tmpfs counts them: whole 4 KB pages
            return sum(-(-p.stat().st_size // 4096) * 4 for p in reference_dir.glob(pattern) if p.is_file())

        cells_kb = kilobytes("cells/**/*")
        # run.json (twice: it is rewritten through a temporary), run.log, near-duplicates/
        base_kb = 2 * kilobytes("run.json") + kilobytes("run.log") + kilobytes("near-duplicates/*")
        room = base_kb + (cells_kb // 2 if phase == "cells" else cells_kb + 8)
        filler = mount / "filler"
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, free_kilobytes(mount) - room) * 1024)
        problems = new_problems()
        code, err, left = run_case(machine_command(out), tmp, env)
        (tmp / f"disk-full-{phase}.stderr.txt").write_text(err)
        judge(problems, code, err, left, out, 1, "crashed", 1)
        if "disk full writing" not in err:
            problems["exited wrongly"].append("no 'disk full writing' line")
        kept = compare(problems, out, reference, allow_missing=True)
        landed = "report" if len(kept) == len(reference) else "cells"
        filler.unlink()
        resume(problems, out, tmp, env)
        compare(problems, out, reference)
        line = next((x for x in err.splitlines() if x.startswith("error:")), "no error line")
        return problems, f"{len(kept)} cells kept, landed in the {landed}: {line[:90]}..."
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def file_size_case(tmp, env, reference, reference_dir):
    """A file-size limit (ulimit -f) over every cell file but under the largest plot."""
    import resource

    largest_cell = max(p.stat().st_size for p in reference_dir.glob("cells/**/*") if p.is_file())
    largest_plot = max(p.stat().st_size for p in reference_dir.glob("plots/*") if p.is_file())
    if largest_plot <= largest_cell:
        return None, "no plot is larger than every cell file: skipped"
    limit = (largest_cell + largest_plot) // 2
    out = tmp / "file-size" / "run"

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    problems = new_problems()
    code, err, left = run_case(machine_command(out), tmp, env, preexec_fn=limited)
    (out.parent / "stderr.txt").write_text(err)
    judge(problems, code, err, left, out, 1, "crashed", 1)
    if "file-size limit reached writing" not in err:
        problems["exited wrongly"].append("no 'file-size limit reached writing' line")
    compare(problems, out, reference)
    resume(problems, out, tmp, env)
    line = next((x for x in err.splitlines() if x.startswith("error:")), "no error line")
    return problems, f"limit {limit:,} bytes: {line[:90]}..."


def read_only_cache_case(tmp, env, reference):
    """BENCHMARK_CACHE_DIR on a read-only tmpfs (or, where none can be mounted, under a file)."""
    mount = tmp / "read-only-cache"
    mounted = mount_tmpfs(mount, 64, ",ro")
    cache = mount / "cache"
    if not mounted:
        (mount / "file").write_text("")
        cache = mount / "file" / "cache"
    out = tmp / "read-only-cache-run" / "run"
    command = [a for a in machine_command(out) if a != "--no-cache"]
    try:
        problems = new_problems()
        code, err, left = run_case(command, tmp, {**env, "BENCHMARK_CACHE_DIR": str(cache)})
        (out.parent / "stderr.txt").write_text(err)
        judge(problems, code, err, left, out, 0, "finished", 0)
        notes = [line for line in err.splitlines() if line.startswith("note:")]
        if len(notes) != 1 or "caching is off for this run" not in notes[0]:
            problems["exited wrongly"].append(f"expected one note that caching is off, got {notes}")
        compare(problems, out, reference)
        return problems, f"{'read-only tmpfs' if mounted else 'under a file'}: {notes[0][:90] if notes else '-'}..."
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def machine_suite(tmp):
    """Run the machine faults; return {verdict: count} and {kind of problem: faults}."""
    plugin = tmp / "plugin"
    install_plugin(plugin)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(plugin), os.environ.get("PYTHONPATH", "")])}
    reference_dir = tmp / "machine-reference" / "run"
    subprocess.run(machine_command(reference_dir), cwd=tmp, env=env, check=True, capture_output=True)
    reference, _ = cells_of(reference_dir)
    print(f"machine faults: reference run {len(reference)} cells\n")
    cases = [(f"cell {how} --jobs {jobs}", lambda how=how, jobs=jobs: dying_cell_case(how, jobs, tmp, env, reference))
             for how in ("exit", "kill") for jobs in (1, 2)]
    cases += [(f"disk full in {phase}", lambda phase=phase: disk_full_case(phase, tmp, env, reference, reference_dir))
              for phase in ("cells", "report")]
    cases += [("file-size limit", lambda: file_size_case(tmp, env, reference, reference_dir)),
              ("read-only cache", lambda: read_only_cache_case(tmp, env, reference))]
    return judge_cases(cases)


# ---- stale results: images or code changed between a run and its resume ---------------------

TREE_PLUGIN = """import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.tree import DecisionTreeClassifier

DEPTH = 1


def _make_head():
    return DecisionTreeClassifier(max_depth=DEPTH, random_state=0)


class Tree(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.head_ = _make_head().fit(X.reshape(len(X), -1), y)
        self.classes_ = self.head_.classes_
        return self

    def predict(self, X):
        return self.head_.predict(X.reshape(len(X), -1))
"""


def write_bmps(root, coloured=True):
    """3 classes x 12 seeded 12x12 BMPs: each class bright in its own channel, or (not
    `coloured`) noise with nothing of its class, so that every score changes."""
    from PIL import Image

    rng = np.random.default_rng(5 if coloured else 6)
    for i, label in enumerate(("a", "b", "c")):
        (root / label).mkdir(parents=True, exist_ok=True)
        for k in range(12):
            pixels = rng.integers(0, 90, (12, 12, 3))
            pixels[..., i if coloured else rng.integers(3)] += 120
            Image.fromarray(pixels.astype(np.uint8)).save(root / label / f"{k}.bmp")


def stale_pixels_case(tmp, env):
    folder, out, fresh = tmp / "stale-pixels" / "images", tmp / "stale-pixels" / "run", tmp / "stale-pixels" / "fresh"
    write_bmps(folder)
    cmd = [sys.executable, "-m", "benchmark", "run", "--datasets", f"folder:{folder}", "--estimators",
           MACHINE_ESTIMATORS, "--folds", "3", "--quiet"]
    problems = new_problems()
    before = subprocess.run([*cmd, "--out", str(out)], cwd=tmp, env=env, capture_output=True, text=True)
    old, _ = cells_of(out)
    times = {p: p.stat() for p in folder.rglob("*.bmp")}
    write_bmps(folder, coloured=False)  # other pixels, the same sizes
    for path, stat in times.items():
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    kept = all(p.stat().st_size == st.st_size and p.stat().st_mtime_ns == st.st_mtime_ns for p, st in times.items())
    code, err, left = run_case([sys.executable, "-m", "benchmark", "run", "--resume", str(out), "--quiet"], tmp, env)
    (out.parent / "stderr.txt").write_text(err)
    judge(problems, code, err, left, out, 0, "finished", 0)
    subprocess.run([*cmd, "--out", str(fresh), "--no-cache"], cwd=tmp, env=env, capture_output=True, check=True)
    reference, _ = cells_of(fresh)
    good = compare(problems, out, reference)
    if sum(old[k] != good.get(k) for k in old) != len(old):
        problems["stale result"].append("a resumed cell kept the first run's scores")

    def fingerprint(run):
        return json.loads((run / "run.json").read_text())["datasets"][f"folder:{folder}"]["fingerprint"]

    if fingerprint(out) != fingerprint(fresh):
        problems["stale result"].append("the resumed run's dataset fingerprint is not the new images'")
    reused = [line for line in err.splitlines() if "reused" in line]
    if before.returncode != 0 or not kept:
        return None, f"could not set the case up (first run exit {before.returncode}, times kept {kept})"
    return problems, (f"{len(good)} cells recomputed on the rewritten images, equal to a fresh run's "
                      f"(the first run's differed in {sum(old[k] != good.get(k) for k in old)}); "
                      f"{reused[0].strip() if reused else ''}")


def stale_code_case(tmp, env):
    root = tmp / "stale-code"
    plugin = root / "plugin"
    plugin.mkdir(parents=True)
    (plugin / "tree_plugin.py").write_text(TREE_PLUGIN)
    dist = plugin / "tree_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tree-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[image_benchmark.estimators]\nmy-tree = tree_plugin:Tree\n")
    env = {**env, "PYTHONPATH": os.pathsep.join([str(plugin), env.get("PYTHONPATH", "")])}
    out, fresh = root / "run", root / "fresh"
    problems = new_problems()
    before = subprocess.run(machine_command(out, 1, estimators=f"{MACHINE_ESTIMATORS},my-tree"), cwd=tmp,
                            env=env, capture_output=True, text=True)
    old, _ = cells_of(out)
    (plugin / "tree_plugin.py").write_text(TREE_PLUGIN.replace("DEPTH = 1", "DEPTH = 8"))
    code, err, left = run_case([sys.executable, "-m", "benchmark", "run", "--resume", str(out), "--quiet"], tmp, env)
    (root / "stderr.txt").write_text(err)
    judge(problems, code, err, left, out, 0, "finished", 0)
    subprocess.run(machine_command(fresh, 1, estimators=f"{MACHINE_ESTIMATORS},my-tree"), cwd=tmp, env=env,
                   capture_output=True, check=True)
    reference, _ = cells_of(fresh)
    good = compare(problems, out, reference)
    changed = sorted(k for k in good if "my-tree" in k and good[k] != old.get(k))
    if len(changed) != sum("my-tree" in k for k in reference):
        problems["stale result"].append(f"only {len(changed)} my-tree cell(s) changed after the edit")
    recomputed = [line for line in err.splitlines() if "recomputed" in line]
    if not recomputed or "estimator code changed (my-tree: tree_plugin.py)" not in recomputed[0]:
        problems["exited wrongly"].append(f"the resume did not say why it recomputed: {recomputed}")
    if before.returncode != 0:
        return None, f"could not set the case up (first run exit {before.returncode})"
    return problems, f"{len(changed)} my-tree cells recomputed, others reused; {recomputed[0].strip() if recomputed else ''}"


def stale_suite(tmp):
    """Run the stale-result cases; return {verdict: count} and {kind of problem: faults}."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "BENCHMARK_CACHE_DIR": str(tmp / "stale-cache")}
    print("stale results: a change between a run and its resume\n")
    cases = [("images rewritten", lambda: stale_pixels_case(tmp, env)),
             ("estimator edited", lambda: stale_code_case(tmp, env))]
    return judge_cases(cases)


def judge_cases(cases):
    """Run `cases` [(name, () -> (problems or None, detail))], print a line each; return
    {verdict: count} and {kind of problem: faults}."""
    counts = {"ok": 0, "FAULT": 0, "skipped": 0}
    kinds = {"lost data": 0, "exited wrongly": 0, "stale result": 0}
    for name, case in cases:
        problems, detail = case()
        if problems is None:
            verdict = "skipped"
        else:
            found = {kind: text for kind, text in problems.items() if text}
            verdict = "FAULT" if found else "ok"
            for kind in found:
                kinds[kind] += 1
            if found:
                detail = "; ".join(f"{kind}: {', '.join(text)}" for kind, text in found.items())
        counts[verdict] += 1
        print(f"{name:20s} {verdict:7s} {detail}", flush=True)
    return counts, kinds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", default=",".join(SIGNALS))
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--targets", default="main,worker")
    parser.add_argument("--suite", default="signals,machine,stale",
                        help="signals (a signal at every phase), machine (dying cells, full disk, read-only "
                             "cache), stale (images or code changed before a resume)")
    args = parser.parse_args(argv)
    if not os.path.isdir("/proc"):
        print("this script needs Linux (/proc) to list a run's processes")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="fault-injection-"))
    print(f"working in {tmp} (each case's stderr is kept there)")
    suites = args.suite.split(",")
    faults = 0
    for suite, run_suite, what in (("machine", machine_suite, "machine faults injected"),
                                   ("stale", stale_suite, "changes injected between a run and its resume")):
        if suite in suites:
            counts, kinds = run_suite(tmp)
            faults += counts["FAULT"]
            print(f"\n{counts['ok'] + counts['FAULT']} {what} ({counts['skipped']} skipped): "
                  f"{kinds['lost data']} lost data, {kinds['exited wrongly']} exited wrongly, "
                  f"{kinds['stale result']} served a stale result (target 0 each)\n")
    if "signals" not in suites:
        print(f"{'PASS' if faults == 0 else 'FAIL'}: every injected fault left a consistent, resumable run")
        return 0
    # two datasets: the second is prepared by a worker while the run's process prepares the first
    data = [tmp / "colours", tmp / "more-colours"]
    make_folder(data[0], seed=0, per_class=24)
    make_folder(data[1], seed=1, per_class=12)
    ref = tmp / "reference" / "run"
    subprocess.run(command(data, ref), cwd=tmp, check=True, capture_output=True)
    reference, _ = cells_of(ref)
    print(f"reference run: {len(reference)} cells; cases: signal x target x phase\n")
    counts = {"ok": 0, "FAULT": 0, "missed": 0}
    for signame in args.signals.split(","):
        for target in args.targets.split(","):
            for phase in args.phases.split(","):
                if target == "worker" and phase == "imports":
                    continue  # no worker exists yet
                verdict, detail = one_case(signame, target, phase, data, reference, tmp)
                counts[verdict] += 1
                print(f"{signame:8s} {target:7s} {phase:12s} {verdict:6s} {detail}", flush=True)
    injected = counts["ok"] + counts["FAULT"]
    print(f"\n{injected} faults injected ({counts['missed']} missed their phase): {counts['FAULT']} lost "
          f"data, left a process or exited wrongly (target 0)")
    print(f"{'PASS' if counts['FAULT'] + faults == 0 else 'FAIL'}: every injected fault left a consistent, "
          "resumable run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
