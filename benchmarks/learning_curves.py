"""Benchmark: learning curves over training-set size - at how many images per class does a CNN
start to beat the classical models?

Claims checked (issue 18; issue 32 added ridge-random-features and the 120-minute target;
issue 33 the linear probe on ImageNet features, logreg-imagenet, where its weights are
installed)
    * CIFAR-10 (`../shared/datasets/cifar10`, holdout on the official test split, sizes 10,
      30, 100, 300, 1000 and 5000 (= all) per class, the strongest classical estimators and
      cnn-fast) finishes within 120 minutes on 2 cores and prints the crossover.
    * The same on TrashNet (5-fold cross-validation) and on the embedded `digits`.

What runs
    The strongest classical estimators of `benchmarks/classical_strength.py` and cnn-fast.
    CIFAR-10 leaves out `svm-hog-color`: an RBF SVC's fit grows between n^2 and n^3 and it
    fits 4 of them per cell (3-fold calibration + the final one), which at 5,000 images per
    class alone would take longer than the time target. It also leaves out
    `logreg-kmeans-patches`: on 2026-12-07 it was never ahead of `ridge-random-features` beyond
    noise at any size, and cost 68 of the curve's 241 cell-minutes. CIFAR-10 runs 3 holdout repeats (each
    size's sample drawn again, and each estimator's seed); the 5,000-per-class cells dominate
    (cnn-fast takes about 20 minutes there on 1 thread).

How it is measured
    `python -m benchmark run --datasets D --estimators E --train-sizes S --out OUT` through
    the command line's own code path, one run per dataset, timed as a whole (loading,
    features, every cell, the report). It then prints, per estimator and size, the mean
    macro-F1 with its corrected 95% interval and the mean fit seconds, and the crossover: the
    smallest size at which the best CNN is significantly better than the best classical
    estimator on the same folds (the report's corrected paired t-test). The report, with its
    plot (plots/<dataset>-training-sizes.png), is in OUT.

Run from the repository root:
    python benchmarks/learning_curves.py [--datasets cifar10,trashnet,digits] [--estimators ...]
        [--out results/learning-curves]
Exits 0 (a measurement), printing PASS/FAIL for the time target on CIFAR-10.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import time  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
ESTIMATORS = ("logreg-hog-color,gboost-hog-color-lbp,svm-hog-color,logreg-kmeans-patches,"
              "ridge-random-features,cnn-fast,logreg-imagenet")
# dataset -> (name for `run`, protocol and its options, sizes, estimators, time target in
# seconds or None)
DATASETS = {
    "cifar10": (f"folder:{SHARED / 'cifar10'}", ["--protocol", "holdout", "--repeats", "3"],
                "10,30,100,300,1000,max",
                "logreg-hog-color,gboost-hog-color-lbp,ridge-random-features,cnn-fast,logreg-imagenet",
                120 * 60),
    "trashnet": (f"folder:{SHARED / 'trashnet'}", ["--protocol", "cv"], "10,30,100,max", ESTIMATORS, None),
    "digits": ("digits", ["--protocol", "cv"], "3,10,30,max", ESTIMATORS, None),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,trashnet,cifar10")
    parser.add_argument("--estimators", help="comma-separated names (default: each dataset's own list)")
    parser.add_argument("--out", type=Path, default=Path("results/learning-curves"))
    args = parser.parse_args()
    for dataset in args.datasets.split(","):
        measure(dataset, args.estimators, args.out / dataset)


def measure(dataset, estimators, out):
    from benchmark.cli import main as cli
    from benchmark.reporting.results import load_run
    from benchmark.reporting.training_sizes import crossover, size_frame

    from benchmark.execution.selection import unavailable_estimators

    name, protocol, sizes, default_estimators, target = DATASETS[dataset]
    estimators = estimators or default_estimators
    missing = unavailable_estimators(estimators.split(","), {})
    for left_out, reason in missing.items():  # e.g. the pretrained weights not installed
        print(f"{dataset}: left out {left_out}: {reason}")
    estimators = ",".join(e for e in estimators.split(",") if e not in missing)
    if name.startswith("folder:") and not Path(name[len("folder:"):]).is_dir():
        print(f"{dataset}: skipped, {name[len('folder:'):]} is not a folder")
        return
    argv = ["run", "--datasets", name, "--estimators", estimators, *protocol,
            "--train-sizes", sizes, "--full", "--out", str(out), "--quiet"]
    print(f"{dataset}: python -m benchmark {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    code = cli(argv)
    seconds = time.perf_counter() - start
    frame = size_frame(load_run(out))
    print(f"  exit code {code}; {seconds / 60:.1f} min in all")
    columns = list(dict.fromkeys(frame.sort_values("order")["size"]))
    print(f"  {'estimator':22}" + "".join(f"{str(s):>22}" for s in columns))
    for estimator, group in frame.groupby("estimator", sort=False):
        by_size = {r["size"]: r for _, r in group.iterrows()}
        print(f"  {estimator:22}" + "".join(
            f"{by_size[s]['f1_macro_mean']:>8.3f} ({by_size[s]['fit_seconds']:>8.1f} s)" if s in by_size
            else f"{'-':>22}" for s in columns))
    found = crossover(frame)
    if "reason" in found:
        print(f"  crossover: {found['reason']}")
    else:
        print(f"  crossover: from {found['size']} images per class, {found['cnn']} beats {found['classical']} "
              f"by {found['difference']:+.3f} macro-F1 (p = {found['p_value']:.3g})")
    if target is not None:
        print(f"  {'PASS' if seconds <= target else 'FAIL'}: {seconds / 60:.1f} min <= {target / 60:.0f} min")
    print(f"  report: {out / 'report.md'}")


if __name__ == "__main__":
    main()
