"""Benchmark: where a `cnn-fast` training step spends its time, by taking one part away at a time.

Claim checked (issue 19, item 3)
    Profile a cnn-fast epoch (augmentation, convolutions, input pipeline, precision, the
    optimizer's share) on the Keras backend this process runs (`KERAS_BACKEND`, default
    TensorFlow), and report the achieved GFLOP/s beside the step's FLOP count.

How it is measured
    * Data: `--images` random uint8 32x32x3 images with 10 random labels (only time counts).
    * Each variant is `cnn-fast` (or `--estimator`) with one part changed, fitted for
      `--epochs` epochs at batch 512 with no validation split (the first epoch traces and
      compiles, and is not timed). Variants: the default; no augmentation
      (flip and translate off); no whitening convolution; float32 instead of bfloat16; 4 steps
      per execution (the per-step dispatch overhead); and a forward pass only (`predict` in
      training-free mode over the same images at batch 512).
    * Step time: a callback times each call from batch begin to batch end (one optimizer step,
      or 4 with 4 steps per call, divided by 4); the median over the epochs after the first.
      Keras' per-epoch work (iterators, shuffling, callbacks at epoch end) is not in it.
    * The difference from the default is what that part costs (an estimate: parts overlap).
    * GFLOP/s: 3 x the forward FLOPs of the convolutions and dense layer (see
      benchmarks/cnn_airbench.py) x 512 / step time (forward only: 1 x).
    One process, one variant after another; the CPU should be otherwise idle.

Run from the repository root: `python benchmarks/cnn_fast_profile.py` (about 5 minutes on 2
cores); `KERAS_BACKEND=jax python benchmarks/cnn_fast_profile.py` for JAX. Exits 0.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from cnn_airbench import forward_flops  # noqa: E402

VARIANTS = {
    "default": {},
    "no-augmentation": {"flip": False, "translate": 0},
    "no-whitening": {"whiten": False},
    "float32": {"precision": "float32"},
    "4-steps-per-call": {"steps_per_execution": 4},
}
BATCH = 512


def step_timer(keras):
    """A callback keeping the wall time of each training step (batch begin to batch end)."""

    class StepTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    return StepTimer()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimator", default="cnn-fast")
    parser.add_argument("--images", type=int, default=10 * BATCH)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    from estimators.cnn import keras_for
    from estimators.registry import create_estimator

    keras = keras_for()
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, args.images)
    steps = args.images // BATCH
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; Keras "
          f"{keras.__version__} on {keras.backend.backend()}; {args.estimator}, {args.images} images "
          f"= {steps} steps of {BATCH}, {args.epochs} epochs (the first not timed)\n")
    header = f"{'variant':18s} {'ms/step':>8s} {'vs default':>10s} {'images/s':>8s} {'GFLOP/s':>8s}"
    print(header)
    print("-" * len(header))
    baseline = flops = model = None
    for name, params in VARIANTS.items():
        estimator = create_estimator(args.estimator, epochs=args.epochs, batch_size=BATCH,
                                     validation_fraction=0, random_state=0, **params)
        timer = step_timer(keras)
        estimator._callbacks = lambda keras, has_validation, timer=timer: [timer]
        estimator.fit(X, y)
        calls = -(-steps // estimator.steps_per_execution)  # calls per epoch
        step = statistics.median(timer.times[calls:]) / estimator.steps_per_execution
        flops = forward_flops(estimator.model_)
        if name == "default":
            baseline, model = step, estimator.model_
        print(f"{name:18s} {step * 1e3:8.1f} {(step - baseline) * 1e3:+10.1f} {BATCH / step:8.0f} "
              f"{3 * flops * BATCH / step / 1e9:8.0f}", flush=True)
    images = X[: steps * BATCH]
    model.predict(images, batch_size=BATCH, verbose=0)  # trace
    times = []
    for _ in range(3):
        start = time.perf_counter()
        model.predict(images, batch_size=BATCH, verbose=0)
        times.append((time.perf_counter() - start) / steps)
    forward = statistics.median(times)
    print(f"{'forward only':18s} {forward * 1e3:8.1f} {(forward - baseline) * 1e3:+10.1f} "
          f"{BATCH / forward:8.0f} {flops * BATCH / forward / 1e9:8.0f}")
    print(f"\nforward FLOPs per image: {flops / 1e6:.1f} M; a training step: {3 * flops * BATCH / 1e9:.1f} "
          f"GFLOP. Backward and optimizer: about {(baseline - forward) * 1e3:.1f} ms of the "
          f"{baseline * 1e3:.1f} ms step.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
