"""Which Keras 3 backend the CNNs run on - TensorFlow (the default), JAX or PyTorch - and how
each one is given its threads, its seed and determinism.

Keras reads `KERAS_BACKEND` once, when it is first imported, so a process runs one backend.
`run --keras-backend NAME` (or `KERAS_BACKEND` in the environment) chooses it for a run: the
command line sets the variable before any worker starts, the runner records the backend in
run.json and in each CNN cell's key, and `import_keras` refuses to run a CNN on a Keras that
was already imported with another backend.

Per backend (what `import_keras` and `seed_everything` do):

* **tensorflow** (installed with this package): intra-op threads set before the first op
  (`n_threads`), `keras.utils.set_random_seed` and TensorFlow's op determinism. Bit-exact on
  CPU; on GPU an op without a deterministic kernel raises instead of silently differing.
* **jax** (`pip install '.[jax]'`): XLA's CPU client can only be held to one thread
  (`--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1` in `XLA_FLAGS`, set
  before JAX is imported); with `n_threads` above 1 it uses every core. XLA's CPU kernels are
  deterministic; on GPU `--xla_gpu_deterministic_ops=true` is set, which makes scatter-adds
  deterministic at some speed.
* **torch** (`pip install '.[torch]'`): `torch.set_num_threads`, and
  `torch.use_deterministic_algorithms(True, warn_only=True)` (with
  `CUBLAS_WORKSPACE_CONFIG=:4096:8` for CUDA): an op with no deterministic implementation warns
  (the warning is kept with the cell, in its diagnostics) instead of stopping the fit.

The same seed gives the same weights on one backend and one machine; the backends do not give
each other's numbers (their random generators and kernels differ), so a backend is part of
what a CNN score depends on, like its thread count.
"""

import contextlib
import importlib.util
import os
import re
import sys
import tempfile
import warnings

DEFAULT = "tensorflow"
# backend -> (module it needs, the pip extra that installs it)
BACKENDS = {"tensorflow": ("tensorflow", None), "jax": ("jax", "jax"), "torch": ("torch", "torch")}

_threads_set = None  # the thread count this process's backend was given (first call decides)

# What TensorFlow's native libraries write to the process's stderr as they load, before its log
# level applies (TF_CPP_MIN_LOG_LEVEL=3 does not hold them back in TensorFlow 2.21): absl's
# preamble and informational lines ("oneDNN custom operations are on", "Could not find cuda
# drivers").
NATIVE_STARTUP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+:\d+\] )")


def check_backend(name):
    """`name` if it is a known, installed Keras backend; ValueError (one line, with the fix)
    otherwise."""
    if name not in BACKENDS:
        raise ValueError(f"unknown Keras backend {name!r}: choose one of {', '.join(BACKENDS)}")
    module, extra = BACKENDS[name]
    if importlib.util.find_spec(module) is None:
        raise ValueError(f"the {name} backend needs {module}, which is not installed: "
                         f"pip install '.[{extra}]' (or pip install {module})")
    return name


def use_backend(name):
    """Make `name` the backend Keras will load in this process and the workers it starts;
    ValueError when it is unknown, not installed, or Keras is already loaded with another."""
    check_backend(name)
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend") and keras.backend.backend() != name:
        raise ValueError(f"Keras is already loaded with the {keras.backend.backend()} backend in "
                         f"this process; start a new one with KERAS_BACKEND={name}")
    os.environ["KERAS_BACKEND"] = name
    return name


def import_keras(n_threads=None):
    """Import Keras on the chosen backend with at most `n_threads` threads; return it.

    Thread pools are fixed when the backend first runs, so the first call in a process decides;
    a later call asking for a different count gets a warning and the existing pools."""
    global _threads_set
    name = use_backend(os.environ.get("KERAS_BACKEND") or DEFAULT)  # refuses a Keras loaded with another
    wanted = int(n_threads) if n_threads else 0  # 0: the backend's default (all cores)
    if name == "tensorflow":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no oneDNN / CUDA log lines
    elif name == "jax" and "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if wanted == 1 and "intra_op_parallelism_threads" not in flags:
            flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        if "xla_gpu_deterministic_ops" not in flags:
            flags += " --xla_gpu_deterministic_ops=true"
        os.environ["XLA_FLAGS"] = flags.strip()
    elif name == "torch":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    with _without_native_startup_noise():
        import keras

    if name == "tensorflow":
        _tf_data_without_autotune()
    if _threads_set is None:
        _threads_set = _set_threads(name, wanted)
    elif wanted != _threads_set:
        warnings.warn(f"the {name} backend in this process already uses {_threads_set or 'all'} "
                      f"threads; n_threads={n_threads} cannot change that after the first model ran")
    return keras


@contextlib.contextmanager
def _without_native_startup_noise():
    """File descriptor 2 caught while the block runs; afterwards everything it received is
    written back to stderr except `NATIVE_STARTUP_NOISE`'s lines. Written by hand because those
    lines come from C++ straight to the descriptor, which no Python logging setting reaches
    (a worker's stderr is captured anyway; this keeps the main process's terminal clean when it
    loads a network itself, as a pretrained embedding does)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real descriptor 2 (an embedding host)
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines(keepends=True)
                    if not NATIVE_STARTUP_NOISE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def _tf_data_without_autotune():
    """Keras' tf.data pipeline for in-memory arrays (`ArrayDataAdapter`) with tf.data's
    autotuning switched off. Idempotent.

    Written by hand because Keras has no setting for the options of the datasets it builds from
    arrays. With autotuning on, destroying an iterator waits for tf.data's autotuning thread,
    which only notices when its current sleep ends - up to its optimisation period, at most 10 s.
    Keras destroys iterators between epochs (training, validation) and as `fit` returns, so a
    fit stalled up to 10 s at such points (py-spy on TensorFlow 2.21: the main thread in
    `RootDataset::Iterator::~Iterator` waiting for the thread). Measured on 2 cores, cnn-fast,
    10,000 CIFAR-10 images x 3 epochs: a 55-65 s fit became 35 s. The pipeline only gathers
    batches of in-memory images, where autotuning has nothing to tune; the batches and their
    order are unchanged, and so are the trained weights (bit-identical predictions)."""
    import tensorflow as tf

    try:  # a private Keras module: where a later Keras moves it, fits keep the stall, nothing worse
        from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter as adapter
    except ImportError:
        return
    if getattr(adapter.get_tf_dataset, "without_autotune", False):
        return
    original = adapter.get_tf_dataset

    def get_tf_dataset(self):
        options = tf.data.Options()
        options.autotune.enabled = False
        return original(self).with_options(options)

    get_tf_dataset.without_autotune = True
    adapter.get_tf_dataset = get_tf_dataset


def _set_threads(name, wanted):
    """Give the backend `wanted` threads (0: all); return what it got."""
    if name == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # e.g. retracing notes when predict sees a new batch size
        try:
            tf.config.threading.set_intra_op_parallelism_threads(wanted)
            tf.config.threading.set_inter_op_parallelism_threads(min(wanted, 2) if wanted else 0)
            return wanted
        except RuntimeError:  # TensorFlow already ran ops in this process: keep its pools
            return tf.config.threading.get_intra_op_parallelism_threads()
    if name == "torch":
        import torch

        if wanted:
            torch.set_num_threads(wanted)
        return wanted
    # jax: XLA_FLAGS (set in import_keras, before JAX loaded) holds it to 1 thread or none
    return 1 if "intra_op_parallelism_threads=1" in os.environ.get("XLA_FLAGS", "") else 0


def seed_everything(keras, seed):
    """Seed Python, NumPy and the backend with `seed`, and switch on the backend's determinism."""
    keras.utils.set_random_seed(seed)
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif name == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)
    return seed


def gpu_available(keras):
    """Whether the backend sees a GPU."""
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if name == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    import torch

    return bool(torch.cuda.is_available())


def bfloat16_supported():
    """(whether this machine's CPU has bfloat16 matrix units, its name for them): Intel AMX or
    AVX-512 BF16, read from /proc/cpuinfo (Linux); (False, None) where that cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False, None
    for flag, label in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16")):
        if flag in flags:
            return True, label
    return False, None


def backend_facts(name):
    """run.json's record of backend `name`: name, package version, and what determinism means."""
    from importlib import metadata

    module = BACKENDS.get(name, (name, None))[0]
    try:
        version = metadata.version(module)
    except metadata.PackageNotFoundError:
        version = None
    gap = determinism_gap(name) if version is not None else None
    return {"name": name, "version": version, "deterministic": DETERMINISM.get(name),
            "bit_exact_here": gap is None, "determinism_gap": gap}


class DeterminismWarning(UserWarning):
    """The chosen backend cannot promise the same CNN weights for the same seed here."""


def determinism_gap(name):
    """Why backend `name` cannot be bit-exact on this machine (one line), or None when it can.

    Only PyTorch on a CUDA GPU: its deterministic-algorithms switch is set to warn, not to
    stop, for ops that have no deterministic CUDA kernel. TensorFlow raises on such ops instead,
    and JAX runs with --xla_gpu_deterministic_ops; on a CPU all three are bit-exact."""
    if name != "torch":
        return None
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return ("the torch backend on a GPU is not bit-exact: CUDA ops without a deterministic kernel "
            "only warn, so the same seed may give slightly different CNN scores; use "
            "--keras-backend tensorflow or jax for exact repeats")


DETERMINISM = {
    "tensorflow": "bit-exact on CPU for a seed and thread count (op determinism); on GPU an op "
                  "without a deterministic kernel raises",
    "jax": "bit-exact on CPU for a seed (XLA's CPU kernels); on GPU with --xla_gpu_deterministic_ops",
    "torch": "bit-exact on CPU for a seed and thread count (deterministic algorithms); on GPU an op "
             "without a deterministic kernel warns, and the cell keeps the warning",
}
