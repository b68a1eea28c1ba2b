"""Benchmark: does `run --tune` ever lose to the defaults?

Claim checked (issue 16)
    `run --tune --datasets digits,faces,textures,shapes` finishes, and no tuned estimator
    scores below its untuned defaults by more than noise on any dataset: the paired test of
    the report's Tuning part (corrected resampled t-test over the 5 folds, alpha 0.05) finds
    no significant loss.

How it is measured
    The run is the command line's (`python -m benchmark run --datasets ... --tune
    --tune-budget B --out OUT`, default B = 8), here through the same code path; every cell
    stores the tuned scores and the defaults' scores on the same test fold, so the tuned and
    the untuned estimator are compared on identical folds without a second run. The script
    prints, per (dataset, estimator), the mean macro-F1 tuned and default, the difference,
    the p-value, the seconds the search took per fold and the parameters most often chosen,
    then one PASS/FAIL line. Default estimators: every classical one (`--estimators` to
    choose; CNNs cost budget x inner folds trainings per cell).

Run from the repository root:
    python benchmarks/tuning_gain.py [--estimators 'svm-*,knn-hog'] [--tune-budget 8] [--out DIR]
Exits 0 (a measurement).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,faces,textures,shapes")
    parser.add_argument("--estimators", help="names or patterns (default: every classical estimator)")
    parser.add_argument("--tune-budget", default="8")
    parser.add_argument("--out", type=Path, default=Path("results/tuning-gain"))
    args = parser.parse_args()

    from tabulate import tabulate

    from benchmark.cli import main as cli
    from benchmark.reporting.results import load_run
    from benchmark.reporting.stats import ALPHA
    from benchmark.reporting.tuning import tuned_cells, tuning_gain
    from estimators import list_estimators

    estimators = args.estimators or ",".join(list_estimators(family="classical"))
    start = time.perf_counter()
    code = cli(["run", "--datasets", args.datasets, "--estimators", estimators, "--tune",
                "--tune-budget", args.tune_budget, "--out", str(args.out), "--quiet"])
    seconds = time.perf_counter() - start
    stored = load_run(args.out)
    rows, losses = [], []
    for dataset in args.datasets.split(","):
        cells = tuned_cells(stored, dataset)
        for estimator, (tuned, default, test) in tuning_gain(cells).items():
            runs = [c for c in cells if c.estimator == estimator]
            chosen = collections.Counter(json.dumps(c.tuning["params"], sort_keys=True) for c in runs)
            common, n = chosen.most_common(1)[0]
            significant = test.p_value == test.p_value and test.p_value < ALPHA
            if significant and test.mean_difference < 0:
                losses.append(f"{dataset}/{estimator}")
            rows.append([dataset, estimator, f"{tuned:.3f}", f"{default:.3f}",
                         f"{test.mean_difference:+.3f}", f"{test.p_value:.2g}",
                         f"{sum(c.tuning['seconds'] for c in runs) / len(runs):.1f}",
                         f"{common} ({n}/{len(runs)})"])
    print(tabulate(rows, ["dataset", "estimator", "tuned F1", "default F1", "diff", "p",
                          "tuning s/fold", "most chosen"]))
    print(f"\nrun exit code {code}, {seconds:.0f} s wall; report: {args.out / 'report.md'}")
    if losses:
        print(f"FAIL: tuned significantly below the defaults (p < {ALPHA}): {', '.join(losses)}")
    else:
        print(f"PASS: no tuned estimator significantly below its defaults on any dataset "
              f"({len(rows)} pairs, p < {ALPHA})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
