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
      per execution (the per-step dispatch overhead; not on PyTorch, whose Keras trainer runs
      one step per call); and a forward pass only (`predict` in
      training-free mode over the same images at batch 512).
    * Step time: a callback times each call from batch begin to batch end (one optimizer step,
      or 4 with 4 steps per call, divided by 4); the median over the epochs after the first.
      Keras' per-epoch work (iterators, shuffling, callbacks at epoch end) is not in it.
    * The difference from the default is what that part costs (an estimate: parts overlap).
      "no-lookahead": the lookahead callback's share (it also makes Keras run the per-batch
      callbacks synchronously).
    * Anatomy of a whole fit (`--anatomy-images`, default 50,000, CIFAR-10's size, 2% held
      out for validation as by default, 2 epochs): the seconds before training starts, each
      epoch's wall time split into its steps (the first one traces the graph) and the rest
      (validation, Keras' epoch work), and after training.
    * GFLOP/s: 3 x the forward FLOPs of the convolutions and dense layer (see
      benchmarks/cnn_airbench.py) x 512 / step time (forward only: 1 x).
    One process, one variant after another; the CPU should be otherwise idle.

Run from the repository root: `python benchmarks/cnn_fast_profile.py` (about 5 minutes on 2
cores); `KERAS_BACKEND=jax` (or `torch`) `python benchmarks/cnn_fast_profile.py` for JAX (or
PyTorch). Exits 0.
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
    "no-lookahead": {"lookahead": False},
}
BATCH = 512


def step_timer(keras):
    """A callback keeping the wall time of each training step (batch begin to batch end), and
    of the fit's landmarks: training begins and ends, and each epoch's begin and end."""

    class StepTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.times, self.epochs, self.began = [], [], time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append({"begin": time.perf_counter(), "first_step": len(self.times)})

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self.start)

        def on_epoch_end(self, epoch, logs=None):
            self.epochs[-1].update(end=time.perf_counter(), steps=self.times[self.epochs[-1]["first_step"]:])

        def on_train_end(self, logs=None):
            self.ended = time.perf_counter()

    return StepTimer()


def with_timer(estimator, timer):
    """The estimator's own callbacks (lookahead, alternating flip) plus `timer`."""
    own = estimator._callbacks
    estimator._callbacks = lambda keras, has_validation: [*own(keras, has_validation), timer]


def anatomy(keras, estimator_name, n_images):
    """Where a whole fit's wall time goes: before training (resize, whitening, building and
    compiling the model, Keras' data adapter), each epoch's steps and what lies around them
    (the first step traces the graph), validation, and after training."""
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, (n_images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, n_images)
    from estimators.registry import create_estimator

    estimator = create_estimator(estimator_name, epochs=2, batch_size=BATCH, random_state=0)
    timer = step_timer(keras)
    with_timer(estimator, timer)
    start = time.perf_counter()
    estimator.fit(X, y)
    total = time.perf_counter() - start
    print(f"\nanatomy of a 2-epoch fit of {n_images} images ({estimator.n_train_} trained on, "
          f"{estimator.n_validation_} validation), seconds:")
    print(f"  before training (resize, whitening, build, compile, data adapter) {timer.began - start:7.1f}")
    for i, epoch in enumerate(timer.epochs, 1):
        steps = epoch["steps"]
        wall = epoch["end"] - epoch["begin"]
        print(f"  epoch {i}: wall {wall:6.1f} = steps {sum(steps):6.1f} (first {steps[0]:5.2f}, median "
              f"{statistics.median(steps):5.3f}) + outside the steps {wall - sum(steps):5.1f}")
    gaps = [later["begin"] - earlier["end"] for earlier, later in zip(timer.epochs, timer.epochs[1:])]
    print(f"  between epochs {sum(gaps):7.1f}; after the last epoch to fit's return "
          f"{start + total - timer.epochs[-1]['end']:6.1f}; whole fit {total:6.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimator", default="cnn-fast")
    parser.add_argument("--images", type=int, default=10 * BATCH)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--anatomy-images", type=int, default=50_000,
                        help="images of the whole-fit anatomy (0: skip it)")
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
        if params.get("steps_per_execution", 1) > 1 and keras.backend.backend() == "torch":
            print(f"{name:18s} {'n/a':>8s}  (Keras' PyTorch trainer runs one step per call)")
            continue
        estimator = create_estimator(args.estimator, epochs=args.epochs, batch_size=BATCH,
                                     validation_fraction=0, random_state=0, **params)
        timer = step_timer(keras)
        with_timer(estimator, timer)
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
    if args.anatomy_images:
        anatomy(keras, args.estimator, args.anatomy_images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
