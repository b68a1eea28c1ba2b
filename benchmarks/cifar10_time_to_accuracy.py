"""Benchmark: time to accuracy on CIFAR-10, `cnn-fast` against `cnn-vgg`.

Claim checked
    Trained on CIFAR-10's 50,000 training images and scored on its 10,000 test images,
    `cnn-fast` (default parameters, random_state=0) reaches at least the test accuracy that
    `cnn-vgg` (default parameters, random_state=0) reaches after its full schedule, in at most
    1/4 of cnn-vgg's fit wall time, and at least 86% test accuracy.

How it is measured
    * Hardware: whatever machine runs this script (the core count is printed); the target is
      stated for 2 cores. TensorFlow uses all cores (n_threads=None). The CPU is assumed
      otherwise idle: other processes competing for it slow both networks and add noise.
    * Data: ../shared/datasets/cifar10/{train,test}/<class>/*.jpg (relative to the repository
      root), read with the repository's loader `benchmark.data.image_folder.load_image_folder` at
      32x32, kept as uint8. `--train-limit` / `--test-limit` keep a random subset (seed 0) for
      quick checks; the claim is only about the full sets.
    * Each estimator is created from the registry with its defaults, fitted once on the
      training images (each carves its own inner validation split out of them: cnn-vgg 10%,
      watched by its early stopping and learning-rate schedule; cnn-fast 2%, only reported)
      and scored on the test images. Both run one after the other in this one process.
    * Times: wall seconds of `fit` (resizing, model building, graph tracing and training
      all included) and of `predict` on the test set (cnn-fast's includes its mirrored
      test-time augmentation), with time.perf_counter. Train images/s = epochs actually run x
      images trained on (n_train_) / fit seconds; predict images/s = test images / predict
      seconds. One run per network (a cnn-vgg run takes the better part of an hour on 2
      cores), so the numbers are single measurements, not means over seeds.

Run from the repository root: `python benchmarks/cifar10_time_to_accuracy.py`
(`--train-limit 5000 --test-limit 2000 --only cnn-fast` for a quick check). Prints a table and
one PASS/FAIL line per target; always exits 0 (this is a measurement, not a test), also when
the dataset is absent (it says so).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "cifar10"
NAMES = ("cnn-fast", "cnn-vgg")
TARGET_ACCURACY = 0.86
TIME_RATIO = 4  # cnn-fast must fit in at most 1/TIME_RATIO of cnn-vgg's time


def load_split(folder, limit, seed=0):
    from benchmark.data.image_folder import load_image_folder

    data = load_image_folder(folder, image_size=32)
    images, labels = data.images, data.labels
    if limit is not None and limit < len(labels):
        keep = np.sort(np.random.default_rng(seed).permutation(len(labels))[:limit])
        images, labels = images[keep], labels[keep]
    return images, labels, data.skipped


def measure(name, train, test):
    from estimators.registry import create_estimator

    estimator = create_estimator(name, random_state=0)
    start = time.perf_counter()
    estimator.fit(*train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predicted = estimator.predict(test[0])
    predict_seconds = time.perf_counter() - start
    epochs = getattr(estimator, "n_epochs_", estimator.epochs)
    return {
        "name": name,
        "accuracy": float(np.mean(predicted == test[1])),
        "fit_seconds": fit_seconds,
        "epochs": epochs,
        "train_rate": epochs * estimator.n_train_ / fit_seconds,
        "predict_rate": len(test[1]) / predict_seconds,
    }


def print_table(rows):
    header = (f"{'estimator':10s} {'test acc':>8s} {'fit s':>8s} {'epochs':>6s} "
              f"{'train img/s':>11s} {'predict img/s':>13s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['name']:10s} {r['accuracy']:8.4f} {r['fit_seconds']:8.1f} {r['epochs']:6d} "
              f"{r['train_rate']:11.0f} {r['predict_rate']:13.0f}")


def verdicts(results):
    """[(passed, text)] for the targets whose estimators ran."""
    lines = []
    fast, vgg = results.get("cnn-fast"), results.get("cnn-vgg")
    if fast and vgg:
        lines.append((fast["accuracy"] >= vgg["accuracy"],
                      f"cnn-fast accuracy {fast['accuracy']:.4f} >= "
                      f"cnn-vgg accuracy {vgg['accuracy']:.4f}"))
        limit = vgg["fit_seconds"] / TIME_RATIO
        lines.append((fast["fit_seconds"] <= limit,
                      f"cnn-fast fit {fast['fit_seconds']:.0f} s <= 1/{TIME_RATIO} of cnn-vgg fit "
                      f"{vgg['fit_seconds']:.0f} s = {limit:.0f} s "
                      f"(ratio {vgg['fit_seconds'] / fast['fit_seconds']:.1f}x)"))
    if fast:
        lines.append((fast["accuracy"] >= TARGET_ACCURACY,
                      f"cnn-fast accuracy {fast['accuracy']:.4f} >= {TARGET_ACCURACY:.2f}"))
    return lines


def names_option(parser, flag, text, choices):
    """The comma-separated names of `text`, each one of `choices` (else a usage error)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in choices]
    if unknown:
        parser.error(f"{flag}: unknown {unknown}; choose from {', '.join(choices)}")
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-limit", type=int, default=None,
                        help="train on N random training images")
    parser.add_argument("--test-limit", type=int, default=None,
                        help="score on N random test images")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated subset of {', '.join(NAMES)}")
    args = parser.parse_args(argv)
    names = NAMES if args.only is None else tuple(names_option(parser, "--only", args.only, NAMES))

    if not (DATA / "train").is_dir() or not (DATA / "test").is_dir():
        print(f"CIFAR-10 not found at {DATA}/{{train,test}}: nothing measured.")
        return 0

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    start = time.perf_counter()
    x_train, y_train, skipped_train = load_split(DATA / "train", args.train_limit)
    x_test, y_test, skipped_test = load_split(DATA / "test", args.test_limit)
    print(f"data: {len(y_train)} training and {len(y_test)} test images {x_train.shape[1:]} uint8 "
          f"from {DATA} (loaded in {time.perf_counter() - start:.0f} s; "
          f"{len(skipped_train) + len(skipped_test)} unreadable files skipped)")
    if args.train_limit is not None or args.test_limit is not None:
        print("subset run: the targets are stated for the full 50,000 / 10,000 images")
    print()

    results = {}
    for name in names:
        print(f"fitting {name} ...", flush=True)
        results[name] = measure(name, (x_train, y_train), (x_test, y_test))
    print()
    print_table([results[n] for n in names])
    print()
    for passed, text in verdicts(results):
        print(f"{'PASS' if passed else 'FAIL'}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
