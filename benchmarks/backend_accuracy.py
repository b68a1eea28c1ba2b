"""Benchmark: cnn-fast's accuracy and epoch time on each Keras backend, over several seeds.

Claim checked (issue 19, "Backends")
    * cnn-fast's test accuracy on CIFAR-10 with TensorFlow, JAX and PyTorch is within 1 point
      between any two backends (mean over `--seeds`), and the table shows each backend's
      epoch time side by side, so the default can be the fastest reproducible one.

How it is measured
    * For each backend and seed, `benchmarks/cnn_airbench.py --variant V --seed S` runs in a
      process of its own with KERAS_BACKEND set (a process runs one Keras backend), on the same
      data: `--data` (an .npz of x_train, y_train, x_test, y_test, e.g. one written from
      ../shared/datasets/cifar10) or the CIFAR-10 folders, cut to `--train-limit` /
      `--test-limit` images (a fixed random subset, seed 0, the same for every backend).
    * V defaults to `cnn-fast[epochs=4]` on 10,000 training images: long enough to separate a
      backend that learns worse from one that learns the same, short enough for JAX and
      PyTorch on 2 cores. Accuracy at the variant's test-time augmentation, on every test image.
    * Per backend: mean and standard deviation of accuracy over the seeds, the median fit time
      and epoch time (fit seconds / epochs), and whether every fit ran. The claim compares the
      largest gap between backend means with 1 point, beside the seeds' own spread: with a few
      seeds, a gap within about two standard deviations of the spread is not evidence of a
      difference.
    Rows are appended to OUT/backend_accuracy.jsonl as each fit ends (cnn_airbench's rows, with
    `backend` and `seed`), so an interrupted run keeps what it measured; a rerun with the same
    --out skips the (backend, seed) pairs already there.

Run from the repository root, on an otherwise idle machine:
    python benchmarks/backend_accuracy.py --data c10.npz --out OUT [--backends tensorflow,jax,torch]
(about 40 minutes on 2 cores with the defaults). Backends that are not installed are reported
as such. Exits 0 (a measurement).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402

from estimators.keras_backend import BACKENDS  # noqa: E402

HERE = Path(__file__).resolve().parent
GAP_POINTS = 1.0


def summarise(rows, backends):
    """{backend: {n, mean, std, fit_s, epoch_s}} over the rows of each backend."""
    table = {}
    for backend in backends:
        mine = [r for r in rows if r["backend"] == backend]
        if not mine:
            continue
        accuracies = [100 * r["accuracy"] for r in mine]
        fits = [r["fit_seconds"] for r in mine]
        table[backend] = {
            "n": len(mine), "mean": statistics.fmean(accuracies),
            "std": statistics.stdev(accuracies) if len(mine) > 1 else float("nan"),
            "fit_s": statistics.median(fits),
            "epoch_s": statistics.median(r["fit_seconds"] / r["epochs"] for r in mine),
            "images_per_s": statistics.median(r["train_images_per_s"] for r in mine),
        }
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variant", default="cnn-fast[epochs=4]")
    parser.add_argument("--data", type=Path, help="an .npz of x_train, y_train, x_test, y_test")
    parser.add_argument("--train-limit", type=int, default=10_000)
    parser.add_argument("--test-limit", type=int)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    for backend in backends:
        if backend not in BACKENDS:
            parser.error(f"--backends: unknown Keras backend {backend!r}; choose from {', '.join(BACKENDS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    rows_path = args.out / "backend_accuracy.jsonl"

    def rows():
        if not rows_path.exists():
            return []
        return [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]

    def same_fit(row, backend, seed=None):
        """Whether `row` is a fit of this sweep: same variant and data limits (rows written
        before the limits were recorded never match), on `backend` (and `seed`)."""
        return (row["backend"] == backend and (seed is None or row["seed"] == seed)
                and row["variant"] == args.variant and row.get("train_limit", -1) == args.train_limit
                and row.get("test_limit", -1) == args.test_limit)

    missing = {}
    for backend in backends:
        module, extra = BACKENDS[backend]
        if importlib.util.find_spec(module) is None:
            missing[backend] = f"not installed (pip install '.[{extra}]')"
            continue
        for seed in seeds:
            if any(same_fit(r, backend, seed) for r in rows()):
                continue  # measured by an earlier run with this --out
            command = [sys.executable, str(HERE / "cnn_airbench.py"), "--variant", args.variant,
                       "--seed", str(seed), "--train-limit", str(args.train_limit), "--own-tta-only",
                       "--out", str(rows_path)]
            if args.data:
                command += ["--data", str(args.data)]
            if args.test_limit:
                command += ["--test-limit", str(args.test_limit)]
            env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONUNBUFFERED": "1"}
            print(f"{backend}, seed {seed} ...", flush=True)
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                missing[backend] = f"seed {seed} failed: {done.stderr.strip().splitlines()[-1:]}"
                break

    measured = [r for r in rows() if r["seed"] in seeds and same_fit(r, r["backend"])]
    table = summarise(measured, backends)
    print(f"\n{args.variant}, {measured[0]['n_train'] if measured else '?'} training images, seeds {args.seeds}")
    header = f"{'backend':11s} {'fits':>4s} {'accuracy %':>14s} {'fit s':>7s} {'epoch s':>8s} {'img/s':>6s}"
    print(header)
    print("-" * len(header))
    for backend in backends:
        if backend in table:
            t = table[backend]
            print(f"{backend:11s} {t['n']:4d} {t['mean']:7.2f} ± {t['std']:4.2f} {t['fit_s']:7.0f} "
                  f"{t['epoch_s']:8.1f} {t['images_per_s']:6.0f}")
        if backend in missing:
            print(f"{backend:11s} {missing[backend]}")
    if len(table) >= 2:
        means = {b: t["mean"] for b, t in table.items()}
        low, high = min(means, key=means.get), max(means, key=means.get)
        gap = means[high] - means[low]
        spread = max((t["std"] for t in table.values() if t["n"] > 1), default=float("nan"))
        print(f"\n{'PASS' if gap <= GAP_POINTS else 'FAIL'}: largest gap between backend means "
              f"{gap:.2f} points ({high} {means[high]:.2f} vs {low} {means[low]:.2f}) <= {GAP_POINTS}; "
              f"the seeds' largest standard deviation within a backend: {spread:.2f}")
        fastest = min(table, key=lambda b: table[b]["epoch_s"])
        print(f"fastest epoch: {fastest} ({table[fastest]['epoch_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
