"""Benchmark: wall time of the whole command-line benchmark, `python -m benchmark run --all`.

Claims checked
    * classical suite: `run --all` with every classical estimator (logistic regression, kNN,
      bagged trees on handcrafted features) on every embedded dataset, 5 folds, finishes in
      under 2 minutes on 2 cores;
    * full suite: `run --all` with every registered estimator, the CNNs included, finishes in
      at most 10 minutes on 2 cores; each CNN's mean accuracy on each embedded dataset is
      printed, with how many of its folds the convergence check flagged, against the targets
      of CNN_TARGETS (every CNN >= 0.99 on digits; cnn-fast >= 0.99 on faces and textures and
      >= 0.97 on shapes; cnn-vgg >= 0.90 on shapes and textures, or flagged as undertrained
      in the report).

How it is measured
    * Hardware: whatever machine runs this script (the core count is printed); the targets are
      stated for 2 cores. The command uses its default --jobs -1 (all cores).
    * Command: `[sys.executable, "-m", "benchmark", "run", "--all", "--quiet", "--no-cache",
      "--out", OUT, "--data-dir", EMPTY]` (plus `--estimators` with the classical names for
      the classical suite) as a subprocess with cwd = the repository root, so each repeat pays
      interpreter start-up, imports, dataset loading, feature extraction (no on-disk feature
      cache), worker start-up and writing the results - everything a user waits for. EMPTY is
      an empty directory and IMAGE_BENCHMARK_OFFLINE=1 / BENCHMARK_CACHE_DIR=TMP are set, so
      `--all` means exactly the embedded datasets, whatever named datasets this machine holds.
    * OUT is a `run` folder inside a fresh tempfile.mkdtemp() directory per repeat (deleted
      afterwards).
    * Timing: `--repeats` repeats per suite (default 3 for classical, 1 for full: a full run
      takes minutes), wall time with time.perf_counter around the subprocess; the median is
      reported. The number of rows (cells) in OUT/scores.csv and the exit code of each repeat
      are printed as a sanity check.

Side by side with earlier code (`--baseline DIR`, a checkout of an earlier commit, e.g. `git
worktree add /tmp/base <commit>`): each repeat runs this checkout's command, then the same
command with cwd = DIR (so `python -m benchmark` imports DIR's code), alternately; the table
gives both medians and their ratio, with the target that this code is at most 5% slower.
`--warm`: the on-disk caches are kept (no `--no-cache`; one cache folder per checkout, filled
by an untimed run first), as a user's rerun has them.

Run from the repository root: `python benchmarks/run_all.py` (`--suite classical` or
`--suite full` for one of them). Prints a table and one PASS/FAIL line per target; always
exits 0 (this is a measurement, not a test).
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import csv  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

SUITES = {  # name: (target seconds, default repeats)
    "classical": (120.0, 3),
    "full": (600.0, 1),
}
TIMEOUT_SECONDS = 1800
# (estimator, dataset): (mean accuracy target, whether a fit flagged undertrained also passes)
CNN_TARGETS = {
    ("cnn-fast", "digits"): (0.99, False), ("cnn-simple", "digits"): (0.99, False),
    ("cnn-vgg", "digits"): (0.99, False), ("cnn-fast", "faces"): (0.99, False),
    ("cnn-fast", "textures"): (0.99, False), ("cnn-fast", "shapes"): (0.97, False),
    ("cnn-vgg", "shapes"): (0.90, True), ("cnn-vgg", "textures"): (0.90, True),
}


def classical_names():
    from estimators import estimator_spec, list_estimators

    return [n for n in list_estimators() if estimator_spec(n).family == "classical"]


def one_run(suite, repo=REPO, cache=None):
    """(wall seconds, exit code, scores.csv rows as dicts, last stderr line) of the command run
    with the code of `repo`; `cache`: a cache folder kept between runs (None: --no-cache)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-run-all-"))
    out, empty = tmp / "run", tmp / "no-data"
    empty.mkdir()
    command = [sys.executable, "-m", "benchmark", "run", "--all", "--quiet",
               "--out", str(out), "--data-dir", str(empty)] + ([] if cache else ["--no-cache"])
    if suite == "classical":
        command += ["--estimators", ",".join(classical_names())]
    env = {**os.environ, "IMAGE_BENCHMARK_OFFLINE": "1", "BENCHMARK_CACHE_DIR": str(cache or tmp / "cache"),
           "PYTHONPATH": str(repo)}
    try:
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=repo, capture_output=True, text=True,
                              timeout=TIMEOUT_SECONDS, env=env)
        seconds = time.perf_counter() - start
        rows = []
        scores = out / "scores.csv"
        if scores.exists():
            with open(scores, newline="") as f:
                rows = list(csv.DictReader(f))
        stderr = proc.stderr.strip().splitlines()
        return seconds, proc.returncode, rows, stderr[-1] if stderr else ""
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def side_by_side(suite, repeats, baseline, warm):
    """This checkout against `baseline`'s code, alternately; print the medians and the ratio."""
    caches = {name: Path(tempfile.mkdtemp(prefix=f"bench-run-all-cache-{name}-")) if warm else None
              for name in ("this", "baseline")}
    repos = {"this": REPO, "baseline": Path(baseline).resolve()}
    print(f"\n== {suite} suite, this checkout vs {repos['baseline']}: {repeats} repeat(s) each, "
          f"alternating; caches {'warm (filled by an untimed run)' if warm else 'off (--no-cache)'}")
    if warm:
        for name in repos:
            one_run(suite, repos[name], caches[name])
    times = {"this": [], "baseline": []}
    for i in range(repeats):
        for name in ("this", "baseline") if i % 2 == 0 else ("baseline", "this"):
            seconds, code, rows, last_err = one_run(suite, repos[name], caches[name])
            times[name].append(seconds)
            print(f"repeat {i + 1} {name:8s} {seconds:8.2f} s  exit {code}  {len(rows)} scores.csv rows"
                  + (f"  stderr: {last_err}" if code != 0 and last_err else ""), flush=True)
    this, base = statistics.median(times["this"]), statistics.median(times["baseline"])
    ratio = this / base
    print(f"{'PASS' if ratio <= 1.05 else 'FAIL'}: {suite} run --all median {this:.1f} s vs the "
          f"baseline's {base:.1f} s: ratio {ratio:.3f} (target <= 1.05)")
    for cache in caches.values():
        if cache:
            shutil.rmtree(cache, ignore_errors=True)


def measure(suite, repeats):
    target, _ = SUITES[suite]
    print(f"\n== {suite} suite: {repeats} repeat(s), median wall seconds")
    header = f"{'repeat':>6s} {'wall s':>8s} {'exit':>5s} {'scores.csv rows':>16s}"
    print(header)
    print("-" * len(header))
    runs = []
    for i in range(repeats):
        try:
            seconds, code, rows, last_err = one_run(suite)
        except subprocess.TimeoutExpired:
            seconds, code, rows, last_err = float(TIMEOUT_SECONDS), "timeout", [], ""
        runs.append((seconds, code, rows))
        print(f"{i + 1:6d} {seconds:8.2f} {str(code):>5s} {len(rows):16d}")
        if code != 0 and last_err:
            print(f"       stderr: {last_err}")
    times = [s for s, _, _ in runs]
    median = statistics.median(times)
    print("-" * len(header))
    print(f"{'median':>6s} {median:8.2f}   (min {min(times):.2f}, max {max(times):.2f})")
    ok = all(code == 0 for _, code, _ in runs)
    verdict = "PASS" if median <= target and ok else "FAIL"
    note = "" if ok else " (some repeats did not exit 0)"
    print(f"{verdict}: {suite} run --all median {median:.1f} s vs target <= {target:.0f} s "
          f"(ratio {median / target:.2f}) on {os.cpu_count()} cores{note}")
    if suite == "full":
        cnn_report(runs[-1][2])


def cnn_report(rows):
    """Each CNN's mean accuracy per dataset and its flagged folds (the last repeat's
    scores.csv), against CNN_TARGETS."""
    from estimators import list_estimators

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    print(f"\n{'estimator':12s} {'dataset':10s} {'accuracy':>8s} {'min':>6s} {'flagged':>8s} {'fit s':>6s}  target")
    for name in list_estimators(family="cnn"):
        for dataset in datasets:
            cells = [r for r in rows if r["dataset"] == dataset and r["estimator"] == name and r["status"] == "ok"]
            if not cells:
                print(f"{name:12s} {dataset:10s} no scores")
                continue
            accuracies = [float(r["accuracy"]) for r in cells]
            flagged = sum(r.get("undertrained") == "True" for r in cells)
            mean = statistics.fmean(accuracies)
            fit = statistics.fmean(float(r["fit_seconds"]) for r in cells)
            line = f"{name:12s} {dataset:10s} {mean:8.4f} {min(accuracies):6.3f} {flagged:5d}/{len(cells)} {fit:6.1f}"
            target = CNN_TARGETS.get((name, dataset))
            if target:
                floor, flag_ok = target
                verdict = ("PASS" if mean >= floor else
                           "PASS (flagged undertrained)" if flag_ok and flagged else "FAIL")
                line += f"  {verdict}: >= {floor}{' or flagged' if flag_ok else ''}"
            print(line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=["both", *SUITES], default="both")
    parser.add_argument("--repeats", type=int, help="repeats per suite (default: 3 classical, 1 full)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="a checkout of earlier code to time side by side (ratio target <= 1.05)")
    parser.add_argument("--warm", action="store_true", help="keep the on-disk caches, filled by an untimed run")
    args = parser.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    print(f"command: python -m benchmark run --all --quiet{'' if args.warm else ' --no-cache'} --out TMP/run "
          f"--data-dir EMPTY (cwd {REPO})")
    for suite in SUITES if args.suite == "both" else [args.suite]:
        if args.baseline:
            side_by_side(suite, args.repeats or SUITES[suite][1], args.baseline, args.warm)
        else:
            measure(suite, args.repeats or SUITES[suite][1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
