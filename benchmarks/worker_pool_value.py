"""Benchmark: what the worker machinery still buys - the fork server with its preloaded
libraries and gc.freeze (benchmark.execution.worker_pool, preload_freeze), and the gc.freeze
before exit in benchmark/__main__.py.

Configurations (every one a `python -m benchmark run ... --jobs 2 --no-cache --quiet`
subprocess from the repository root: the wall time a user waits for)
    * `all`: as shipped;
    * `no fork server`: IMAGE_BENCHMARK_NO_FORK_SERVER=1, so joblib's workers are loky's own
      fresh interpreters that import scikit-learn and friends themselves (and the server's
      gc.freeze goes with the server);
    * `no exit freeze`: the same command through `python -c` calling benchmark.cli.main, which
      skips __main__.py's gc.freeze before exit;
    * `neither`: both of the above.

Workloads
    * `digits`: every classical estimator, 5 folds (1,797 8x8 images);
    * `trashnet`: a real folder of photographs, `folder:../shared/datasets/trashnet` with
      `--max-per-class 50` (300 images decoded and resized to 64x64 in the workers on every
      run, as --no-cache skips the folder cache), every classical estimator, 5 folds.

The configurations are interleaved (one repeat of each, then the next) so a slow period of a
shared machine hits them alike; `--repeats` (default 3) repeats each; medians, min-max and
each configuration's ratio to `all` are printed. A ratio above 1 is what that part buys.

Run from the repository root: `python benchmarks/worker_pool_value.py`. Exits 0 (a
measurement, not a test).
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

from benchmark.execution.worker_pool import NO_FORK_SERVER_VARIABLE  # noqa: E402

TRASHNET = REPO.parent / "shared" / "datasets" / "trashnet"
WITHOUT_EXIT_FREEZE = ["-c", "import sys; from benchmark.cli import main; sys.exit(main(sys.argv[1:]))"]
CONFIGURATIONS = {  # name: (interpreter arguments, environment)
    "all": (["-m", "benchmark"], {}),
    "no fork server": (["-m", "benchmark"], {NO_FORK_SERVER_VARIABLE: "1"}),
    "no exit freeze": (WITHOUT_EXIT_FREEZE, {}),
    "neither": (WITHOUT_EXIT_FREEZE, {NO_FORK_SERVER_VARIABLE: "1"}),
}


def classical_names():
    from estimators import estimator_spec, list_estimators

    return [n for n in list_estimators() if estimator_spec(n).family == "classical"]


def workloads():
    estimators = ",".join(classical_names())
    common = ["--estimators", estimators, "--folds", "5", "--jobs", "2", "--no-cache", "--quiet"]
    found = {"digits": ["--datasets", "digits", *common]}
    if TRASHNET.is_dir():
        found["trashnet"] = ["--dataset", f"folder:{TRASHNET}", "--max-per-class", "50", *common]
    else:
        print(f"(no {TRASHNET}: trashnet skipped)")
    return found


def timed(arguments, env, out):
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *arguments, "--out", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base_env = {**os.environ, "IMAGE_BENCHMARK_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workload, options in workloads().items():
            for repeat in range(args.repeats):
                for name, (interpreter, extra_env) in CONFIGURATIONS.items():
                    seconds = timed([*interpreter, "run", *options], {**base_env, **extra_env},
                                    Path(tmp) / "run")
                    times.setdefault((workload, name), []).append(seconds)
                    print(f"  {workload} / {name} / repeat {repeat + 1}: {seconds:.2f} s", flush=True)
    print(f"\nwall seconds, median (min-max) of {args.repeats}; ratio = median / median of 'all' "
          f"(cores: {os.cpu_count()})")
    for workload in dict.fromkeys(w for w, _ in times):
        reference = statistics.median(times[(workload, "all")])
        for name in CONFIGURATIONS:
            values = times[(workload, name)]
            print(f"{workload:10s} {name:16s} {statistics.median(values):7.2f} "
                  f"({min(values):.2f}-{max(values):.2f})  x{statistics.median(values) / reference:.2f}")


if __name__ == "__main__":
    main()
