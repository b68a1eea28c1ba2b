"""Benchmark: the runner's classical suite vs a plain loop of sklearn cross_validate, on digits.

Claim checked
    On the `digits` dataset, `benchmark.runner.run` over every classical estimator (5 folds,
    seed 0, n_jobs=-1, in-memory feature cache) is at least 3x faster in wall time than the
    way notebooks did it: for each estimator, one after another,
    `cross_validate(Pipeline([("features", extractor), ("head", head)]), images, labels,
    cv=splits, scoring=["accuracy", "f1_macro"])` on the same splits - and it gives identical
    fold scores.

How it is measured
    * Hardware: whatever machine runs this script (the core count is printed); the target is
      stated for 2 cores. Neither side limits BLAS/OpenMP threads: both run as a user would.
    * Splits: `make_splits(labels, 5, 0)`, the list the runner uses (its fold k is splits[k]).
    * Warm-up: the first runner call starts the joblib (loky) worker processes, so one
      untimed warm-up call of the runner is made first; the timed runner calls reuse those
      workers, as the second and later runs in one session would.
    * Timing: 3 repeats of each side, interleaved (baseline, runner, baseline, runner, ...),
      wall time with time.perf_counter; medians reported, ratio = baseline / runner. Each
      runner call writes its cells into a fresh tempfile.mkdtemp() directory (deleted after).
    * Equality: for every (estimator, fold), the runner's accuracy and f1_macro are compared
      with cross_validate's test_accuracy and test_f1_macro of the same fold (from every
      repeat); the number of cells compared and the max absolute difference are printed.
      "Identical" means that difference is exactly 0.0.
    * Context (informational, not part of the target): the same baseline loop run under
      `threadpoolctl.threadpool_limits(1)` (one BLAS/OpenMP thread), also 3 repeats
      interleaved with the others. joblib's loky workers limit each worker to
      cores // n_jobs threads, so this row shows how much of the ratio comes from the
      baseline's multi-threaded BLAS/OpenMP on small matrices rather than from the runner.
    * Breakdown: per estimator, the baseline's wall seconds from one repeat (the repeat whose
      total is the median), next to the runner's summed per-fold fit+predict seconds
      (measured inside the workers, so CPU-ish time, not wall) and its one-off feature seconds.

Run from the repository root: `python benchmarks/runner_vs_cross_validate.py`. Prints tables
and one PASS/FAIL line per target; always exits 0 (this is a measurement, not a test).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import sklearn  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from sklearn.model_selection import cross_validate  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from benchmark.datasets import load_dataset  # noqa: E402
from benchmark.runner import RunConfig, make_splits, run  # noqa: E402
from estimators import create_estimator, list_estimators  # noqa: E402

DATASET = "digits"
FOLDS = 5
SEED = 0
REPEATS = 3
TARGET_SPEEDUP = 3.0
METRICS = ("accuracy", "f1_macro")


def baseline(dataset, splits, names):
    """{estimator: (seconds, {metric: [fold scores]})}, sequentially, as notebooks did."""
    out = {}
    for name in names:
        est = create_estimator(name)
        pipe = Pipeline([("features", est.feature_extractor()), ("head", est._make_head())])
        start = time.perf_counter()
        cv = cross_validate(pipe, dataset.images, dataset.labels, cv=splits, scoring=list(METRICS))
        seconds = time.perf_counter() - start
        out[name] = (seconds, {m: [float(s) for s in cv[f"test_{m}"]] for m in METRICS})
    return out


def runner(names):
    run_dir = tempfile.mkdtemp(prefix="bench-runner-")
    try:
        config = RunConfig(datasets=[DATASET], estimators=list(names), folds=FOLDS, seed=SEED,
                           n_jobs=-1, cache_dir=None)
        return run(config, run_dir=run_dir)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def compare(base_scores, result):
    """(cells compared, max abs difference, problems) between one baseline and one runner run."""
    compared, max_diff, problems = 0, 0.0, []
    seen = set()
    for cell in result.cells:
        seen.add((cell.estimator, cell.fold))
        if cell.status != "ok":
            problems.append(f"runner cell {cell.estimator} fold {cell.fold} {cell.status}: {cell.error}")
            continue
        if cell.estimator not in base_scores:
            problems.append(f"runner cell {cell.estimator} has no baseline")
            continue
        for m in METRICS:
            diff = abs(cell.scores[m] - base_scores[cell.estimator][1][m][cell.fold])
            max_diff = max(max_diff, diff)
        compared += 1
    for name in base_scores:
        for fold in range(FOLDS):
            if (name, fold) not in seen:
                problems.append(f"runner has no cell for {name} fold {fold}")
    return compared, max_diff, problems


def main():
    dataset = load_dataset(DATASET)
    splits = make_splits(dataset.labels, FOLDS, SEED)
    names = list_estimators(family="classical")
    n, h, w, c = dataset.images.shape

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, scikit-learn {sklearn.__version__}")
    print(f"dataset: {DATASET}, {n} images of {h}x{w}x{c}; {FOLDS} folds, seed {SEED}; "
          f"{len(names)} classical estimators: {', '.join(names)}")
    print(f"{REPEATS} repeats each, interleaved; median wall seconds; runner warmed up once (untimed)\n")

    runner(names)  # untimed warm-up: starts the joblib worker processes

    base_runs, runner_runs, single_thread_times = [], [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        scores = baseline(dataset, splits, names)
        base_runs.append((time.perf_counter() - start, scores))
        start = time.perf_counter()
        result = runner(names)
        runner_runs.append((time.perf_counter() - start, result))
        with threadpool_limits(1):  # informational only
            start = time.perf_counter()
            baseline(dataset, splits, names)
            single_thread_times.append(time.perf_counter() - start)

    base_times = [t for t, _ in base_runs]
    runner_times = [t for t, _ in runner_runs]
    base_median = statistics.median(base_times)
    runner_median = statistics.median(runner_times)
    speedup = base_median / runner_median

    header = f"{'method':40s} {'median s':>9s} {'min s':>8s} {'max s':>8s}"
    print(header)
    print("-" * len(header))
    print(f"{'baseline: cross_validate loop':40s} {base_median:9.2f} {min(base_times):8.2f} {max(base_times):8.2f}")
    print(f"{'runner: run(n_jobs=-1, memory cache)':40s} {runner_median:9.2f} {min(runner_times):8.2f} {max(runner_times):8.2f}")
    single_median = statistics.median(single_thread_times)
    print(f"{'(info) baseline, 1 BLAS/OpenMP thread':40s} {single_median:9.2f} "
          f"{min(single_thread_times):8.2f} {max(single_thread_times):8.2f}")
    print(f"ratio baseline / runner: {speedup:.2f}x  "
          f"(info: 1-thread baseline / runner: {single_median / runner_median:.2f}x)\n")

    # Per-estimator breakdown: the baseline repeat with the median total, and the runner
    # repeat with the median total.
    base_pick = sorted(base_runs, key=lambda r: r[0])[len(base_runs) // 2][1]
    run_pick = sorted(runner_runs, key=lambda r: r[0])[len(runner_runs) // 2][1]
    header = (f"{'estimator':26s} {'baseline wall s':>15s} {'runner fit+pred s':>17s} "
              f"{'runner feature s':>16s} {'feature source':>14s}")
    print(header)
    print("-" * len(header))
    for name in names:
        cells = [cell for cell in run_pick.cells if cell.estimator == name and cell.status == "ok"]
        fit_predict = sum((cell.fit_seconds or 0) + (cell.predict_seconds or 0) for cell in cells)
        feature = cells[0].feature_seconds if cells and cells[0].feature_seconds is not None else float("nan")
        source = cells[0].feature_source if cells else "-"
        print(f"{name:26s} {base_pick[name][0]:15.2f} {fit_predict:17.2f} {feature:16.3f} {source:>14s}")
    print("(runner fit+pred s: summed over folds inside the workers; feature s: the one-off cost "
          "of that estimator's features, shared between estimators with the same extractor)\n")

    compared_total, max_diff, problems = 0, 0.0, []
    for (_, base_scores), (_, result) in zip(base_runs, runner_runs):
        compared, diff, probs = compare(base_scores, result)
        compared_total += compared
        max_diff = max(max_diff, diff)
        problems += probs
    print(f"score comparison: {compared_total} (estimator, fold) cells compared over {REPEATS} "
          f"repeats ({compared_total // REPEATS} per repeat), metrics {', '.join(METRICS)}; "
          f"max abs difference {max_diff!r}")
    for problem in sorted(set(problems)):
        print(f"  problem: {problem}")

    expected = len(names) * FOLDS * REPEATS
    identical = max_diff == 0.0 and compared_total == expected and not problems
    speed_verdict = "PASS" if speedup >= TARGET_SPEEDUP else "FAIL"
    print(f"\n{speed_verdict}: runner {speedup:.2f}x faster than the cross_validate loop vs target "
          f">= {TARGET_SPEEDUP:.0f}x (ratio {speedup / TARGET_SPEEDUP:.2f}) on {os.cpu_count()} cores")
    print(f"{'PASS' if identical else 'FAIL'}: identical fold scores - {compared_total}/{expected} "
          f"cells compared, max abs difference {max_diff!r} vs target 0.0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
