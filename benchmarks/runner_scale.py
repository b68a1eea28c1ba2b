"""Benchmark: the runner at scale - parallel speed-up, the Dask backend's overhead, resume time.

Claims checked (on 2 cores)
    * `--jobs 2` runs the classical suite at least 1.7x faster than `--jobs 1`;
    * the Dask backend (a local cluster it starts itself) is within 20% of joblib's wall time
      on the same cells (`--backend dask --jobs 2` vs `--backend local --jobs 2`);
    * resuming a finished run (`run --resume RUN`: every cell reused, report rewritten) takes
      under 5 seconds.

How it is measured
    * The classical suite: `python -m benchmark run --all --estimators <every classical
      estimator> --quiet --no-cache --data-dir EMPTY --out OUT` on the embedded datasets (5
      folds, 140 cells), as a subprocess from the repository root, so every configuration pays
      the same interpreter start-up, imports, dataset loading, feature extraction, worker
      start-up and report writing - the wall time a user waits for. IMAGE_BENCHMARK_OFFLINE=1
      and an empty --data-dir make `--all` exactly the embedded datasets.
    * The configurations are interleaved (one repeat of each, then the next), so a slow
      period of the machine hits them alike; `--repeats` (default 3) repeats each; medians
      and their ratios are reported, with min and max.
    * Resume: one finished run of the suite, then `run --resume OUT --quiet` timed
      `--repeats` times.
    * The scores of every configuration are compared: they must be identical (the thread
      count per cell is 1 in all of them).

Run from the repository root: `python benchmarks/runner_scale.py`. Prints tables and one
PASS/FAIL line per claim; exits 0 (a measurement, not a test).
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import pandas as pd  # noqa: E402

CONFIGURATIONS = {  # name: extra options
    "local --jobs 1": ["--jobs", "1"],
    "local --jobs 2": ["--jobs", "2"],
    "dask --jobs 2": ["--backend", "dask", "--jobs", "2"],
}
SCORE_COLUMNS = ["dataset", "estimator", "fold", "status", "accuracy", "f1_macro"]


def classical_names():
    from estimators import estimator_spec, list_estimators

    return [n for n in list_estimators() if estimator_spec(n).family == "classical"]


def cells_phase(out):
    """Seconds from the run.log line announcing the cells to the last finished cell."""
    import datetime

    def stamp(line):
        return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()

    lines = (out / "run.log").read_text().splitlines()
    start = next(stamp(line) for line in lines if " start: " in line)
    return max(stamp(line) for line in lines if " / fold " in line) - start


def timed(command, env):
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=1800)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [""]
        print(f"  exit {proc.returncode}: {' '.join(command[3:6])}... {tail[0]}")
    return seconds, proc.returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    empty = tmp / "no-data"
    empty.mkdir()
    env = {**os.environ, "IMAGE_BENCHMARK_OFFLINE": "1", "BENCHMARK_CACHE_DIR": str(tmp / "cache")}
    base = [sys.executable, "-m", "benchmark", "run", "--all", "--estimators", ",".join(classical_names()),
            "--quiet", "--no-cache", "--data-dir", str(empty)]
    print(f"machine: {os.cpu_count()} cores; command: python -m benchmark run --all --estimators "
          f"<{len(classical_names())} classical> --quiet --no-cache --data-dir EMPTY --out OUT [options]")
    times = {name: [] for name in CONFIGURATIONS}
    phases = {name: [] for name in CONFIGURATIONS}
    scores = {}
    for repeat in range(args.repeats):
        for name, options in CONFIGURATIONS.items():
            out = tmp / f"{name.replace(' ', '_')}-{repeat}"
            seconds, code = timed(base + options + ["--out", str(out)], env)
            times[name].append(seconds if code == 0 else float("nan"))
            if code == 0:
                scores[name] = pd.read_csv(out / "scores.csv")[SCORE_COLUMNS]
                phases[name].append(cells_phase(out))
            if repeat < args.repeats - 1 or name != "local --jobs 2":
                shutil.rmtree(out, ignore_errors=True)
    finished = tmp / f"local_--jobs_2-{args.repeats - 1}"
    resume = [timed([sys.executable, "-m", "benchmark", "run", "--resume", str(finished), "--quiet"], env)[0]
              for _ in range(args.repeats)]
    print("\nwall time of the whole command, and (in brackets) of its cells phase: from the run.log line"
          "\nannouncing the cells to the last finished cell")
    print(f"{'configuration':16s} " + " ".join(f"{f'run {i + 1} s':>15s}" for i in range(args.repeats))
          + f" {'median s':>15s}")
    medians, phase_medians = {}, {}
    for name, values in times.items():
        medians[name], phase_medians[name] = statistics.median(values), statistics.median(phases[name])
        print(f"{name:16s} " + " ".join(f"{v:7.2f} [{p:5.2f}]" for v, p in zip(values, phases[name]))
              + f" {medians[name]:7.2f} [{phase_medians[name]:5.2f}]")
    print(f"{'resume finished':16s} " + " ".join(f"{v:15.2f}" for v in resume)
          + f" {statistics.median(resume):15.2f}")
    reference = scores.get("local --jobs 1")
    same = all(reference is not None and frame.equals(reference) for frame in scores.values())
    print(f"\nscores identical across configurations ({len(reference) if reference is not None else 0} "
          f"cells): {'yes' if same else 'NO'}")
    speedup = medians["local --jobs 1"] / medians["local --jobs 2"]
    phase_speedup = phase_medians["local --jobs 1"] / phase_medians["local --jobs 2"]
    serial = medians["local --jobs 1"] - phase_medians["local --jobs 1"]
    overhead = medians["dask --jobs 2"] / medians["local --jobs 2"]
    resume_median = statistics.median(resume)
    print(f"{'PASS' if speedup >= 1.7 else 'FAIL'}: --jobs 2 is {speedup:.2f}x faster than --jobs 1, whole command "
          f"(median {medians['local --jobs 2']:.2f} s vs {medians['local --jobs 1']:.2f} s; target >= 1.7x)")
    print(f"{'PASS' if phase_speedup >= 1.7 else 'FAIL'}: --jobs 2 is {phase_speedup:.2f}x faster than --jobs 1, "
          f"cells phase (median {phase_medians['local --jobs 2']:.2f} s vs {phase_medians['local --jobs 1']:.2f} s)")
    print(f"      outside the cells phase (start-up, imports, loading, features, report): "
          f"{serial:.2f} s of the {medians['local --jobs 1']:.2f} s with --jobs 1")
    print(f"{'PASS' if overhead <= 1.2 else 'FAIL'}: Dask local cluster / joblib wall time = {overhead:.2f} "
          f"(median {medians['dask --jobs 2']:.2f} s vs {medians['local --jobs 2']:.2f} s; target <= 1.20)")
    print(f"{'PASS' if resume_median < 5 else 'FAIL'}: resuming a finished run takes {resume_median:.2f} s "
          f"(median of {len(resume)}; target < 5 s)")
    print(f"{'PASS' if same else 'FAIL'}: identical scores with --jobs 1, --jobs 2 and Dask")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
