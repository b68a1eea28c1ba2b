"""Benchmark: `cnn-airbench` and `cnn-fast` on full CIFAR-10 - accuracy, fit time, FLOP/s.

Claims checked (issue 19, targets on 2 cores)
    * `cnn-airbench` at its defaults (random_state=0) reaches >= 93.0% test accuracy on
      ../shared/datasets/cifar10 (a JPEG copy of CIFAR-10) with a fit of at most 20 minutes
      (moonshot: 94% within 15 minutes). The issue estimated the JPEG copy at about a point
      below the original binaries; measured, it costs airbench94's own script about 3.4
      points (90.56% on this copy against 94.01% published; see Measured below), so
      this claim asks for more than airbench94's recipe gives on this data.
    * `cnn-fast` at its defaults reaches >= 88.0% with a fit no longer than cnn-fast as it was
      before issue 19 (`BEFORE`: the same class with the switches issue 19 added turned off,
      which builds the earlier network and training exactly), measured in the same run.

How it is measured
    * Data: ../shared/datasets/cifar10/{train,test}/<class>/*.jpg read by the repository's
      loader at 32x32 (uint8), or `--data FILE.npz` holding x_train, y_train, x_test, y_test
      (how the GPU machine, which has no ../shared, gets it). `--train-limit` / `--test-limit`
      keep a random subset (seed 0) for quick checks; the claims are about the full sets.
    * Each `--variant` (a registry name or variant, e.g. 'cnn-airbench[epochs=12]'; default:
      BEFORE, cnn-fast, cnn-airbench) is fitted once on the training images and scored on the
      test images, one after the other in this process, so their times are comparable. Threads:
      the backend's default (all cores). The CPU must be otherwise idle.
    * Fit seconds: wall time of `fit` (resize, whitening, graph tracing, training). Accuracy is
      reported at the variant's own test-time augmentation and, on the same weights, at each
      level: 0 (the image), 1 (and its mirror), 2 (and both moved by one pixel).
    * FLOPs: forward multiply-adds x 2 of every convolution and dense layer of the built
      model per image; training FLOPs = 3 x forward (forward and backward) x images x epochs
      (an estimate: it ignores batch norm, pooling and the optimizer, and counts the frozen
      whitening convolution's backward pass it does not need). Achieved GFLOP/s = training
      FLOPs / fit seconds.
    * `--seed N` sets every variant's random_state (default 0); each row records its seed and
      Keras backend (`benchmarks/backend_accuracy.py` runs this script once per backend and
      seed).
    Results are printed as a table and one PASS/FAIL line per claim, and each row is appended
    to `--out` (JSON lines) as soon as it is known. Single runs (one seed): a CIFAR-10 fit's
    accuracy varies by about 0.1-0.2 points between seeds.

Measured: cnn-airbench (moved here from `AirbenchCNN`'s docstring)
    cnn-airbench is cnn-fast's recipe (`FastCNN`) at widths (64, 256, 256) and 14 epochs; its
    switches let each of airbench94's further elements be tried; each is on here only where a
    measurement showed it pays. Measured with this script on full CIFAR-10 (the JPEG copy in
    ../shared, 50,000 training images; one seed each, so differences below about 0.3 points
    are noise):

    * On 2 cores (TensorFlow, bfloat16, 10,000 test images), 14 epochs: 89.64% in a 1,078 s
      fit without lookahead and the 64x batch-norm bias rate, 90.57% in 1,073 s with both (77 s
      an epoch, 453 GFLOP/s; still improving at the end). 14 epochs is what fits in 20 minutes
      with a margin for a busier machine (an epoch varies by up to 1.5x). cnn-fast's figures for
      each element, one at a time, are in `cnn_fast_ablation.py`'s docstring.
    * On a GPU (H100, Keras on JAX, 10 epochs, 5,000 test images), before issue 19's
      weight-decay fix (1.3e-5, 680x too weak; see `cnn_fast_ablation.py`): airbench's
      further elements all on (lookahead, 64x learning rate for batch norm's shift, an
      activation after the whitening conv, dirac initialisation) 89.2%; each switched off in turn: `lookahead`
      89.5%, `bias_lr_scale=1` 89.2%, `whiten_activation` 89.3%, `dirac` 88.7%. With weights
      growing unchecked, lookahead and the bias rate bought nothing; with the weight decay
      right they pay (above), so they are on. Whitening standardised channels: 89.0% with,
      89.2% without. GELU: +0.3 (89.3%) but 3x ReLU's fit time on this CPU (TensorFlow's
      bfloat16 erf). 16 epochs: 90.0% (ReLU), 90.1% (GELU).
    * Test-time augmentation over six views (`tta=2`: the image, its mirror, and both moved by
      one pixel up-left and down-right): +0.1 to +0.2 over the mirror alone, at three times the
      prediction time.

    airbench94 reports 94.0% on the original CIFAR-10 in about 10 epochs. On the JPEG copy
    here, airbench94 itself does not get near that, so the gap is the data, not this port:
    airbench94's own script (`airbench94.py` of KellerJordan/cifar10-airbench, commit 01a2367)
    run on the same JPEG copy on a 2-core CPU, with only the device and the precision changed
    (PyTorch 2.13 on the CPU, bfloat16 autocast where it uses float16; batch 1024, 9.9 epochs,
    GELU and the rest as published), reached 90.56% with its six-view TTA (89.41% without) in a
    953 s fit (one seed, 2026-11-27, AMD EPYC). This port reached 90.57% after 14 epochs
    (1,073 s on the AMX CPU; 1,488 s on that AMD CPU, 1.6x airbench94's fit there). So
    the JPEG copy (quality 75, colour subsampled) costs airbench's recipe about 3.4 points, not
    the point issue 19 estimated, and >= 93% on this data needs a
    stronger recipe than airbench94's (more work per image), not a more faithful port.

    What this port still does differently from airbench94, each small or measured: ReLU for
    GELU (GELU +0.3 on the GPU, 3x the fit time on the AMX CPU), bfloat16 for float16 with
    float32 batch norm (cnn-fast all in float32 on full CIFAR-10 reached 88.30%, against
    88.43% in bfloat16 - one seed each, on an AMD and an Intel CPU), batch 512 for 1024 (the
    same fit time on 2 cores), 14 epochs for 9.9 (what fit 20 minutes on the AMX CPU), a schedule
    ending at 0 rather than 0.07 of the peak, batch-norm epsilon 1e-5 for 1e-12, a fixed
    whitening bias for one trained for 3 epochs, and lookahead from the first step (with a
    decay near 0 early on) for lookahead from epoch 3 with its average copied into the model
    at the end of every epoch.

Run from the repository root: `python benchmarks/cnn_airbench.py` (about 40 minutes on 2
cores); `--variant cnn-airbench --train-limit 5000 --test-limit 2000` for a quick check.
Exits 0 (a measurement), also when the dataset is absent (it says so).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from cifar10_time_to_accuracy import DATA, load_split  # noqa: E402

# cnn-fast as it was before issue 19: every switch the issue added, off
BEFORE = "cnn-fast[weight_decay=1.3e-5,dirac=False,tta=1,bias_lr_scale=1,lookahead=False]"
AIRBENCH_ACCURACY, AIRBENCH_SECONDS = 0.93, 20 * 60
MOONSHOT_ACCURACY, MOONSHOT_SECONDS = 0.94, 15 * 60
FAST_ACCURACY = 0.88


def load_data(path, train_limit, test_limit):
    """(x_train, y_train, x_test, y_test) from the CIFAR-10 folders or an .npz."""
    if path is None:
        x_train, y_train, _ = load_split(DATA / "train", train_limit)
        x_test, y_test, _ = load_split(DATA / "test", test_limit)
        return x_train, y_train, x_test, y_test
    with np.load(path, allow_pickle=False) as data:
        arrays = [data[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    for i, limit in ((0, train_limit), (2, test_limit)):  # load_split's subset rule
        if limit is not None and limit < len(arrays[i]):
            keep = np.sort(np.random.default_rng(0).permutation(len(arrays[i]))[:limit])
            arrays[i], arrays[i + 1] = arrays[i][keep], arrays[i + 1][keep]
    return arrays


def forward_flops(model):
    """Multiply-adds x 2 per image of the model's convolutions and dense layers."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            kh, kw, n_in, n_out = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += 2 * h * w * n_out * kh * kw * n_in
        elif kind == "Dense":
            n_in, n_out = layer.kernel.shape
            total += 2 * n_in * n_out
    return int(total)


def measure(spec, x_train, y_train, x_test, y_test, seed=0, every_tta_level=True):
    from benchmark.execution.variants import create_estimator

    estimator = create_estimator(spec, random_state=seed)
    start = time.perf_counter()
    estimator.fit(x_train, y_train)
    fit_seconds = time.perf_counter() - start
    import keras  # after the fit: the estimator imports it first, quietly, on its chosen backend
    start = time.perf_counter()
    accuracy = float(np.mean(estimator.predict(x_test) == y_test))
    predict_seconds = time.perf_counter() - start
    by_level = {}
    own_level = estimator.tta
    for level in (0, 1, 2) if every_tta_level else ():
        estimator.set_params(tta=level)
        by_level[level] = float(np.mean(estimator.predict(x_test) == y_test))
    estimator.set_params(tta=own_level)
    flops = forward_flops(estimator.model_)
    train_flops = 3 * flops * estimator.n_train_ * estimator.n_epochs_
    return {
        "variant": spec, "seed": seed, "backend": keras.backend.backend(),
        "accuracy": accuracy, "accuracy_by_tta": by_level,
        "fit_seconds": round(fit_seconds, 1), "predict_seconds": round(predict_seconds, 1),
        "epochs": estimator.n_epochs_, "batch_size": estimator.budget_.batch_size,
        "n_train": estimator.n_train_, "train_images_per_s": round(estimator.n_epochs_ * estimator.n_train_ / fit_seconds),
        "forward_mflop_per_image": round(flops / 1e6, 1), "train_tflop": round(train_flops / 1e12, 1),
        "gflop_per_s": round(train_flops / fit_seconds / 1e9), "precision": getattr(estimator, "precision_", None),
        "final_loss": round(estimator.history_["loss"][-1], 4),
        "convergence": estimator.convergence_.get("reasons", []),
    }


def verdicts(rows):
    """[(passed, text)] for the claims whose variants ran."""
    by_name = {row["variant"]: row for row in rows}
    lines = []
    air = by_name.get("cnn-airbench")
    if air:
        lines.append((air["accuracy"] >= AIRBENCH_ACCURACY and air["fit_seconds"] <= AIRBENCH_SECONDS,
                      f"cnn-airbench {air['accuracy']:.4f} >= {AIRBENCH_ACCURACY} in a fit of "
                      f"{air['fit_seconds']:.0f} s <= {AIRBENCH_SECONDS} s"))
        lines.append((air["accuracy"] >= MOONSHOT_ACCURACY and air["fit_seconds"] <= MOONSHOT_SECONDS,
                      f"moonshot: cnn-airbench {air['accuracy']:.4f} >= {MOONSHOT_ACCURACY} in "
                      f"{air['fit_seconds']:.0f} s <= {MOONSHOT_SECONDS} s"))
    fast, before = by_name.get("cnn-fast"), by_name.get(BEFORE)
    if fast:
        lines.append((fast["accuracy"] >= FAST_ACCURACY,
                      f"cnn-fast {fast['accuracy']:.4f} >= {FAST_ACCURACY}"))
    if fast and before:
        lines.append((fast["fit_seconds"] <= before["fit_seconds"],
                      f"cnn-fast fit {fast['fit_seconds']:.0f} s <= cnn-fast before issue 19 "
                      f"{before['fit_seconds']:.0f} s (ratio {fast['fit_seconds'] / before['fit_seconds']:.2f}; "
                      f"accuracy {before['accuracy']:.4f} before)"))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", dest="variants",
                        help=f"a registry name or variant (repeatable); default: {BEFORE}, "
                        "cnn-fast, cnn-airbench")
    parser.add_argument("--data", type=Path, help="an .npz of x_train, y_train, x_test, y_test")
    parser.add_argument("--train-limit", type=int)
    parser.add_argument("--test-limit", type=int)
    parser.add_argument("--seed", type=int, default=0, help="every variant's random_state (default 0)")
    parser.add_argument("--own-tta-only", action="store_true",
                        help="score only at each variant's own test-time augmentation (not at levels 0, 1, 2)")
    parser.add_argument("--out", type=Path, help="append each row here as a JSON line")
    args = parser.parse_args(argv)
    variants = args.variants or [BEFORE, "cnn-fast", "cnn-airbench"]
    if args.data is None and not (DATA / "train").is_dir():
        print(f"CIFAR-10 not found at {DATA}/{{train,test}} and no --data: nothing measured.")
        return 0
    from benchmark.execution.variants import create_estimator

    for spec in variants:  # a bad variant fails here, before an hour of training
        try:
            create_estimator(spec)
        except (KeyError, ValueError) as exc:
            parser.error(f"--variant {spec}: {exc}")
    x_train, y_train, x_test, y_test = load_data(args.data, args.train_limit, args.test_limit)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"Keras backend {os.environ.get('KERAS_BACKEND', 'tensorflow')}; "
          f"{len(y_train)} training, {len(y_test)} test images", flush=True)
    rows = []
    for spec in variants:
        row = measure(spec, x_train, y_train, x_test, y_test, seed=args.seed,
                      every_tta_level=not args.own_tta_only)
        # the data it saw, so that a resumed sweep (backend_accuracy.py) matches like with like
        row.update(train_limit=args.train_limit, test_limit=args.test_limit, n_test=len(y_test))
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
    print()
    header = (f"{'variant':44s} {'acc':>7s} {'tta0/1/2':>20s} {'fit s':>7s} {'ep':>3s} {'img/s':>6s} "
              f"{'MFLOP/img':>9s} {'TFLOP':>6s} {'GFLOP/s':>7s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        by_level = r["accuracy_by_tta"]
        levels = "/".join(f"{by_level[k]:.4f}" if k in by_level else "-" for k in (0, 1, 2))
        print(f"{r['variant'][:44]:44s} {r['accuracy']:7.4f} {levels:>20s} {r['fit_seconds']:7.0f} "
              f"{r['epochs']:3d} {r['train_images_per_s']:6d} {r['forward_mflop_per_image']:9.1f} "
              f"{r['train_tflop']:6.1f} {r['gflop_per_s']:7d}")
    print()
    for passed, text in verdicts(rows):
        print(f"{'PASS' if passed else 'FAIL'}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
