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

Run from the repository root (Linux): `python benchmarks/fault_injection.py` (about 15 minutes
on 2 cores; `--signals SIGKILL --phases cells` for part). Prints one line per case and the
number of faults that lost data, left a process or exited wrongly (target 0). Exits 0.
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
    from benchmark.execution.cells import read_cell

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", default=",".join(SIGNALS))
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--targets", default="main,worker")
    args = parser.parse_args(argv)
    if not os.path.isdir("/proc"):
        print("this script needs Linux (/proc) to list a run's processes")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="fault-injection-"))
    print(f"working in {tmp} (each case's stderr is kept there)")
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
    print(f"{'PASS' if counts['FAULT'] == 0 else 'FAIL'}: every injected fault left a consistent, "
          "resumable run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
