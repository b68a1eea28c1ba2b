"""Benchmark: the CNNs on a GPU with Keras' JAX and PyTorch backends - do they run, learn, repeat
themselves, and how fast is an epoch in bfloat16 and float32?

Claims checked (issue 19, item 4)
    * cnn-fast, cnn-simple and cnn-vgg fit and predict on a GPU with the JAX and the PyTorch
      backends (the GPU machines lent to this project have both, but not TensorFlow).
    * cnn-fast's test accuracy on a CIFAR-10 subset, its seconds per epoch on 50,000 generated
      32x32 images at the recipe's batch of 512 in bfloat16 and float32, and whether the same
      seed gives the same predictions on the GPU.
    * (issue 34) cnn-vgg's seconds per epoch (a fifth of those images, batch 64) with its
      rotation and zoom as one batched warp, beside Keras' RandomRotation + RandomZoom.

How it is measured
    One child process per backend (a process runs one Keras backend), each with its own time
    limit, so one backend failing or hanging still leaves the other's figures. In each:
    1. speed: cnn-fast `epochs=3` on 50,000 random images (labels random too: only the time
       counts), per precision; the epoch time is the median of epochs 2-3 (epoch 1 compiles).
    2. accuracy: cnn-fast at its defaults on the subset's training images (`--data`, an .npz
       of x_train, y_train, x_test, y_test), scored on its test images; then again with the same
       seed, comparing the predicted probabilities; cnn-simple and cnn-vgg for `--short-epochs`
       epochs, to show they train under the GPU's mixed float16 policy.
    Each result is one JSON line in OUT/gpu_backends.jsonl, written as soon as it is known.

Run from the repository root (on the GPU machine; with --quick, a small smoke run anywhere):
    python benchmarks/gpu_backends.py --data cifar-subset.npz --out OUT [--backends jax,torch]
    python benchmarks/gpu_backends.py --data - --out OUT --backends tensorflow,jax --speed-only \
        --speed-images 10000     (the CPU side by side)
Exits 0 (a measurement).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the .npz (unused with --speed-only)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--backends", default="jax,torch")
    parser.add_argument("--child-timeout", type=float, default=240, help="seconds per backend")
    parser.add_argument("--speed-images", type=int, default=50_000)
    parser.add_argument("--short-epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run on a CPU")
    parser.add_argument("--speed-only", action="store_true",
                        help="only the epoch times (e.g. --backends tensorflow,jax on a CPU)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.speed_images, args.short_epochs = 1024, 1
    args.out.mkdir(parents=True, exist_ok=True)
    if args.child:
        return child(args)
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, __file__, "--child", backend, "--data", str(args.data), "--out",
                   str(args.out), "--speed-images", str(args.speed_images), "--short-epochs",
                   str(args.short_epochs)] + (["--quick"] if args.quick else []) + (
                       ["--speed-only"] if args.speed_only else [])
        start = time.perf_counter()
        try:
            done = subprocess.run(command, env=env, timeout=args.child_timeout)
            status = f"exit code {done.returncode}"
        except subprocess.TimeoutExpired:
            status = f"stopped after {args.child_timeout:.0f} s"
        print(f"{backend}: {status} in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


def child(args):
    import numpy as np

    from estimators import create_estimator
    from estimators.keras_backend import backend_facts, import_keras

    keras = import_keras()
    backend = keras.backend.backend()
    log = args.out / "gpu_backends.jsonl"

    def record(**fields):
        line = json.dumps({"backend": backend, **fields})
        print(line, flush=True)
        with open(log, "a") as f:
            f.write(line + "\n")

    from estimators.keras_backend import gpu_available

    record(what="facts", **backend_facts(backend), gpu=gpu_available(keras), device=_device(backend))

    class EpochTimes(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    rng = np.random.default_rng(0)
    n = args.speed_images
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    for precision in ("bfloat16", "float32"):
        try:
            model = create_estimator("cnn-fast", epochs=3, precision=precision, validation_fraction=0)
            timer = EpochTimes()
            model._callbacks = lambda keras, has_validation, timer=timer: [timer]
            start = time.perf_counter()
            model.fit(images, labels)
            epoch = float(np.median(timer.times[1:])) if len(timer.times) > 1 else timer.times[0]
            record(what="speed", estimator="cnn-fast", precision=precision, images=n,
                   batch=model.budget_.batch_size, epoch_seconds=round(epoch, 3),
                   first_epoch_seconds=round(timer.times[0], 3), images_per_second=round(n / epoch),
                   fit_seconds=round(time.perf_counter() - start, 1), precision_used=model.precision_)
        except Exception as exc:  # recorded, and the other measurements go on
            record(what="speed", estimator="cnn-fast", precision=precision, error=_error(exc))

    vgg_speed(args, keras, record, EpochTimes, images[: max(1024, n // 5)], labels[: max(1024, n // 5)])
    if args.speed_only:
        return 0
    data = np.load(args.data)
    x_train, y_train, x_test, y_test = (data[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    if args.quick:
        keep, test = rng.permutation(len(x_train))[:600], rng.permutation(len(x_test))[:200]
        x_train, y_train, x_test, y_test = x_train[keep], y_train[keep], x_test[test], y_test[test]
    probas = []
    for attempt in range(2):
        try:
            start = time.perf_counter()
            model = create_estimator("cnn-fast", random_state=0, **({"epochs": 2} if args.quick else {}))
            model.fit(x_train, y_train)
            fit = time.perf_counter() - start
            proba = model.predict_proba(x_test)
            probas.append(proba)
            record(what="accuracy", estimator="cnn-fast", attempt=attempt, train_images=len(x_train),
                   test_images=len(x_test), accuracy=round(float(np.mean(model.classes_[proba.argmax(1)] == y_test)), 4),
                   fit_seconds=round(fit, 1), epochs=model.budget_.epochs, batch=model.budget_.batch_size,
                   precision_used=model.precision_, undertrained=model.convergence_["undertrained"])
        except Exception as exc:
            record(what="accuracy", estimator="cnn-fast", attempt=attempt, error=_error(exc))
    if len(probas) == 2:
        record(what="repeatable", estimator="cnn-fast", identical=bool(np.array_equal(*probas)),
               max_difference=float(np.max(np.abs(probas[0] - probas[1]))))
    for name in ("cnn-simple", "cnn-vgg"):
        try:
            start = time.perf_counter()
            model = create_estimator(name, epochs=args.short_epochs).fit(x_train, y_train)
            record(what="short", estimator=name, epochs=args.short_epochs, fit_seconds=round(time.perf_counter() - start, 1),
                   accuracy=round(float(np.mean(model.predict(x_test) == y_test)), 4),
                   policy=keras.config.dtype_policy().name)
        except Exception as exc:
            record(what="short", estimator=name, error=_error(exc))
    return 0


def vgg_speed(args, keras, record, EpochTimes, images, labels):
    """cnn-vgg's epoch time with its rotation and zoom as one batched warp (BatchRotateZoom,
    issue 34) and, side by side, as Keras' RandomRotation + RandomZoom (what it used before:
    on JAX they resample image by image)."""
    import numpy as np

    from estimators import _keras_layers, create_estimator

    batched = _keras_layers.BatchRotateZoom

    def keras_layers(rotation, zoom, seed=None, name=None):
        return keras.Sequential([keras.layers.RandomRotation(rotation, fill_mode="reflect", seed=seed),
                                 keras.layers.RandomZoom(zoom, fill_mode="reflect", seed=seed)], name=name)

    for label, layer in (("batched warp", batched), ("keras layers", keras_layers)):
        _keras_layers.BatchRotateZoom = layer  # what cnn-vgg's _build picks up
        try:
            model = create_estimator("cnn-vgg", epochs=3, validation_fraction=0, batch_size=64)
            timer = EpochTimes()
            model._callbacks = lambda keras, has_validation, timer=timer: [timer]
            model.fit(images, labels)
            epoch = float(np.median(timer.times[1:]))
            record(what="speed", estimator="cnn-vgg", augmentation=label, images=len(images), batch=64,
                   epoch_seconds=round(epoch, 3), first_epoch_seconds=round(timer.times[0], 3),
                   images_per_second=round(len(images) / epoch))
        except Exception as exc:
            record(what="speed", estimator="cnn-vgg", augmentation=label, error=_error(exc))
        finally:
            _keras_layers.BatchRotateZoom = batched


def _device(backend):
    try:
        if backend == "jax":
            import jax

            return str(jax.devices()[0])
        if backend == "torch":
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception as exc:  # a name is only for the record
        return f"unknown ({type(exc).__name__})"
    return None


def _error(exc):
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"


if __name__ == "__main__":
    sys.exit(main())
