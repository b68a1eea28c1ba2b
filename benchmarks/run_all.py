"""Benchmark: wall time of the whole command-line benchmark, `python -m benchmark run --all`.

Claim checked
    `python -m benchmark run --all` (every registered estimator - currently all classical -
    on every embedded dataset, 5 folds) finishes in under 2 minutes on 2 cores.

How it is measured
    * Hardware: whatever machine runs this script (the core count is printed); the target is
      stated for 2 cores. The command uses its default --jobs -1 (all cores).
    * Command: `[sys.executable, "-m", "benchmark", "run", "--all", "--quiet", "--no-cache",
      "--out", OUT]` as a subprocess with cwd = the repository root, so each repeat pays
      interpreter start-up, imports, dataset loading, feature extraction (no on-disk feature
      cache), worker start-up and writing the results - everything a user waits for.
    * OUT is a `run` folder inside a fresh tempfile.mkdtemp() directory per repeat (deleted
      afterwards): the command also writes a `latest` link beside OUT, in OUT's parent, and
      that must land in the temporary directory, not in /tmp itself.
    * Timing: 3 repeats, wall time with time.perf_counter around the subprocess; the median
      is reported. The number of rows (cells) in OUT/scores.csv and the exit code of each
      repeat are printed as a sanity check.

Run from the repository root: `python benchmarks/run_all.py`. Prints a table and one
PASS/FAIL line per target; always exits 0 (this is a measurement, not a test).
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import csv  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

REPEATS = 3
TARGET_SECONDS = 120.0
TIMEOUT_SECONDS = 600


def one_run():
    """(wall seconds, exit code, rows in scores.csv or None, last stderr line)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-run-all-"))
    out = tmp / "run"
    command = [sys.executable, "-m", "benchmark", "run", "--all", "--quiet", "--no-cache",
               "--out", str(out)]
    try:
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                              timeout=TIMEOUT_SECONDS)
        seconds = time.perf_counter() - start
        rows = None
        scores = out / "scores.csv"
        if scores.exists():
            with open(scores, newline="") as f:
                rows = sum(1 for _ in csv.DictReader(f))
        stderr = proc.stderr.strip().splitlines()
        return seconds, proc.returncode, rows, stderr[-1] if stderr else ""
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    print(f"command: python -m benchmark run --all --quiet --no-cache --out TMP/run "
          f"(cwd {REPO}); {REPEATS} repeats, median wall seconds\n")

    runs = []
    header = f"{'repeat':>6s} {'wall s':>8s} {'exit':>5s} {'scores.csv rows':>16s}"
    print(header)
    print("-" * len(header))
    for i in range(REPEATS):
        try:
            seconds, code, rows, last_err = one_run()
        except subprocess.TimeoutExpired:
            seconds, code, rows, last_err = float(TIMEOUT_SECONDS), "timeout", None, ""
        runs.append((seconds, code, rows))
        print(f"{i + 1:6d} {seconds:8.2f} {str(code):>5s} {str(rows):>16s}")
        if code != 0 and last_err:
            print(f"       stderr: {last_err}")

    times = [s for s, _, _ in runs]
    median = statistics.median(times)
    print("-" * len(header))
    print(f"{'median':>6s} {median:8.2f}   (min {min(times):.2f}, max {max(times):.2f})")
    print(f"rows in scores.csv: {', '.join(str(r) for _, _, r in runs)}")

    ok = all(code == 0 for _, code, _ in runs)
    verdict = "PASS" if median < TARGET_SECONDS and ok else "FAIL"
    note = "" if ok else " (some repeats did not exit 0)"
    print(f"\n{verdict}: run --all median {median:.1f} s vs target < {TARGET_SECONDS:.0f} s "
          f"(ratio {median / TARGET_SECONDS:.2f}) on {os.cpu_count()} cores{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
