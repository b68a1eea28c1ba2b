"""`cnn-fast`: this project's fast CPU recipe, tuned for test accuracy per CPU-second.

The airbench / hlb-CIFAR10 recipe (Keller Jordan's airbench and tysam-code's hlb-CIFAR10, fast
CIFAR-10 training scripts for one GPU), narrowed and shortened for a 2-core CPU. Every technique has an `__init__` switch so that
`benchmarks/cnn_fast_ablation.py` can measure what it buys; the default values and the
measurements behind them are in the class docstring.

Custom Keras objects (the batch augmentation layer and the learning-rate schedule) are defined
in `_keras_objects`, called only once TensorFlow has been imported (inside `fit` / unpickling),
so importing this module stays free of TensorFlow.
"""

import functools
from numbers import Integral, Real
import warnings

import numpy as np
from scipy.stats import loguniform
from sklearn.utils._param_validation import Interval, StrOptions

from .budget import StepBudget
from .cnn import CNNClassifier, predict_fixed_batches
from .keras_backend import bfloat16_supported, gpu_available
from .registry import register

WHITEN_IMAGES = 5000  # training images whose 2x2 patches give the whitening filters
WHITEN_EPS = 5e-4  # added to the patch covariance's eigenvalues (images scaled to 0..1)


@functools.lru_cache(maxsize=None)
def _keras_objects(keras):
    """The custom layer and schedule, defined (and registered for saving) once per process.
    Written with `keras.ops` and `keras.random` only, so they run on every Keras backend."""
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="image_benchmark")
    class BatchFlipTranslate(keras.layers.Layer):
        """Training only: each image of the batch mirrored with probability 1/2 and shifted by
        up to `translate` pixels in each direction (reflect padding), as one gather over the
        whole batch - no per-image Python or map_fn. Identity at inference.

        The shift and the mirror are folded into each output pixel's source index (reflected
        at the borders, as padding with mode "reflect" and cropping would give), so the batch
        is read once and never padded."""

        def __init__(self, flip=True, translate=2, seed=None, alternate=False, **kwargs):
            super().__init__(**kwargs)
            self.flip = bool(flip)
            self.translate = int(translate)
            self.seed = seed
            self.alternate = bool(alternate)
            self.seed_generator = keras.random.SeedGenerator(seed)

        def build(self, input_shape):
            if self.flip and self.alternate:
                # airbench's alternating flip: 1 in odd epochs (set by `AlternateFlip`), when
                # every image is mirrored; the training images come pre-mirrored at random
                self.mirror_all = self.add_weight(shape=(), initializer="zeros", dtype="int32",
                                                  trainable=False, name="mirror_all")

        def call(self, images, training=False):
            if not training or (not self.flip and not self.translate):
                return images
            t = self.translate
            n = ops.shape(images)[0]
            height, width, channels = images.shape[1], images.shape[2], images.shape[3]
            # the draws in the order (and shapes) of the first version, so that seeds keep
            # giving the same augmentation
            dy = keras.random.randint((n, 1), 0, 2 * t + 1, seed=self.seed_generator)
            dx = keras.random.randint((n, 1), 0, 2 * t + 1, seed=self.seed_generator)
            rows = dy - t + ops.arange(height, dtype="int32")[None, :]
            cols = ops.arange(width, dtype="int32")[None, :]
            if self.flip and self.alternate:
                cols = ops.where(ops.equal(self.mirror_all, 1), width - 1 - cols, cols)
            elif self.flip:
                flipped = keras.random.randint((n, 1), 0, 2, seed=self.seed_generator)
                cols = ops.where(flipped == 1, width - 1 - cols, cols)
            cols = dx - t + cols
            rows, cols = _reflect(ops, rows, height), _reflect(ops, cols, width)
            source = rows[:, :, None] * width + cols[:, None, :]  # n, height, width
            flat = ops.reshape(images, (-1, height * width, channels))
            moved = ops.take_along_axis(flat, ops.reshape(source, (-1, height * width, 1)), axis=1)
            return ops.reshape(moved, (-1, height, width, channels))

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "flip": self.flip, "translate": self.translate,
                    "seed": self.seed, "alternate": self.alternate}

    @keras.saving.register_keras_serializable(package="image_benchmark")
    class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
        """Linear warm-up from `start` x `peak` to `peak` over the first `warmup` share of
        `total_steps`, then linear decay to 0 at the last step."""

        def __init__(self, peak, total_steps, warmup=0.25, start=0.2):
            self.peak = float(peak)
            self.total_steps = int(total_steps)
            self.warmup = float(warmup)
            self.start = float(start)

        def __call__(self, step):
            step = ops.cast(step, "float32")
            total = float(max(self.total_steps, 1))
            top = max(self.warmup * total, 1.0)
            up = self.start + (1.0 - self.start) * step / top
            down = (total - step) / max(total - top, 1.0)
            return self.peak * ops.clip(ops.minimum(up, down), 0.0, 1.0)

        def get_config(self):
            return {"peak": self.peak, "total_steps": self.total_steps,
                    "warmup": self.warmup, "start": self.start}

    @keras.saving.register_keras_serializable(package="image_benchmark")
    class ScaledBias(keras.layers.Layer):
        """Adds a per-channel bias stored divided by `scale`: the layer's output is x + scale x
        b. SGD's step on b is then `scale` times larger in the output's units, and the bias moves
        `scale`**2 times faster than a plain bias would at the same learning rate - airbench's
        64x learning rate for batch norm's shift (scale 8) without a second optimizer. Decoupled
        weight decay shrinks b by the same share per step as the weights, as airbench's
        weight decay / 64 on those biases does."""

        def __init__(self, scale=1.0, **kwargs):
            super().__init__(**kwargs)
            self.scale = float(scale)

        def build(self, input_shape):
            self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias")

        def call(self, x):
            return x + ops.cast(self.bias * self.scale, x.dtype)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "scale": self.scale}

    @keras.saving.register_keras_serializable(package="image_benchmark")
    class PartialDirac(keras.initializers.Initializer):
        """A 3x3 convolution kernel whose first min(in, out) filters pass their input channel
        through unchanged (torch.nn.init.dirac_, as airbench initialises every 3x3 conv) and the
        others are uniform on +-1/sqrt(fan_in) (PyTorch's default conv initialisation)."""

        def __init__(self, seed=None):
            self.seed = seed

        def __call__(self, shape, dtype=None):
            kh, kw, n_in, n_out = shape
            bound = 1.0 / float(np.sqrt(kh * kw * n_in))
            kernel = keras.random.uniform(shape, -bound, bound, dtype=dtype, seed=self.seed)
            k = min(n_in, n_out)
            eye = np.zeros(shape, np.float32)
            eye[kh // 2, kw // 2, np.arange(k), np.arange(k)] = 1.0
            keep = np.ones(shape, np.float32)
            keep[:, :, :, :k] = 0.0
            return kernel * ops.convert_to_tensor(keep, dtype) + ops.convert_to_tensor(eye, dtype)

        def get_config(self):
            return {"seed": self.seed}

    class Lookahead(keras.callbacks.Callback):
        """airbench's lookahead: every `every` optimizer steps, a slow copy of all the model's
        float variables (weights and batch-norm statistics) moves towards the live ones by
        1 - decay, and the live ones are set to it. decay = `decay` x (step / steps)**3, so the
        first steps are barely slowed and the last ones averaged hardest; after the last step
        the model keeps the slow copy. Runs on any backend (`self.model` syncs JAX state)."""

        def __init__(self, steps, every=5, decay=0.95 ** 5):
            super().__init__()
            self.steps, self.every, self.decay = int(steps), int(every), float(decay)

        def on_train_begin(self, logs=None):
            self.step = 0
            self.slow = [np.array(ops.convert_to_numpy(v.value)) for v in self._variables()]

        def _variables(self):
            return [v for v in self.model.variables if "float" in str(v.dtype)]

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            if self.step % self.every == 0:
                self._pull(self.decay * (min(self.step, self.steps) / self.steps) ** 3)
            if self.step == self.steps:
                self._pull(1.0)

        def _pull(self, decay):
            for slow, variable in zip(self.slow, self._variables()):
                if decay < 1.0:
                    live = ops.convert_to_numpy(variable.value)
                    slow += (1.0 - decay) * (live - slow)
                variable.assign(slow)

    class AlternateFlip(keras.callbacks.Callback):
        """Sets the "flip_translate" layer's `mirror_all` to the epoch's parity, so that each
        (pre-mirrored at random) training image is seen mirrored in every other epoch."""

        def on_epoch_begin(self, epoch, logs=None):
            # `self.model` first: on JAX it syncs the trained state back into the variables
            self.model.get_layer("flip_translate").mirror_all.assign(epoch % 2)

    return {"BatchFlipTranslate": BatchFlipTranslate, "AlternateFlip": AlternateFlip,
            "WarmupLinearDecay": WarmupLinearDecay, "ScaledBias": ScaledBias,
            "PartialDirac": PartialDirac, "Lookahead": Lookahead}


def _reflect(ops, index, size):
    """`index` (integers in [-size + 1, 2 * size - 2]) reflected into [0, size - 1] about the
    borders, without repeating the edge (numpy's and TensorFlow's "reflect" padding)."""
    index = ops.abs(index)
    return ops.where(index > size - 1, 2 * (size - 1) - index, index)


def whitening_kernel(images, eps=WHITEN_EPS, standardize=False):
    """(kernel, bias) of a 2x2 'valid' convolution that whitens 2x2 patches of `images`.

    `images`: uint8 (n, h, w, c). The kernel holds the eigenvectors of the covariance of all
    2x2xc patches (pixels on 0..1) divided by sqrt(eigenvalue + eps), with both signs, so the
    layer has 2 * 4c outputs; the bias centres each output on the patches' mean. With
    `standardize`, the covariance is that of patches whose channels are scaled to unit
    variance (as airbench whitens normalised images), so `eps` is relative to each channel's
    variance rather than to the 0..1 range; the channel scaling is folded into the kernel.
    """
    x = images.astype(np.float32) / 255.0
    c = x.shape[-1]
    patches = np.lib.stride_tricks.sliding_window_view(x, (2, 2), axis=(1, 2))  # n,h-1,w-1,c,2,2
    patches = np.moveaxis(patches, -3, -1).reshape(-1, 4 * c)  # each row in (kh, kw, c) order
    mean = patches.mean(axis=0, dtype=np.float64)
    cov = np.cov(patches, rowvar=False, dtype=np.float64).reshape(4 * c, 4 * c)
    scale = np.ones(4 * c)
    if standardize:  # one standard deviation per channel, repeated over the 2x2 positions
        scale = np.tile(np.sqrt(np.diag(cov).reshape(4, c).mean(axis=0)), 4)
        cov = cov / np.outer(scale, scale)
    values, vectors = np.linalg.eigh(cov)
    filters = vectors / np.sqrt(np.clip(values, 0, None) + eps)  # columns: whitening filters
    filters = filters / scale[:, None]  # applied to unscaled patches
    filters = np.concatenate([filters, -filters], axis=1)  # both signs (ReLU keeps only one)
    kernel = filters.reshape(2, 2, c, 8 * c).astype(np.float32)
    bias = -(mean @ filters).astype(np.float32)
    return kernel, bias


@register(
    "cnn-fast",
    description="fast CPU CNN (airbench recipe): whitening conv, 3 conv-pool-BN-ReLU blocks "
    "(64-128-128), dirac init, bfloat16, label smoothing, Nesterov SGD warm-up/decay with lookahead "
    "and a 64x batch-norm bias rate, flip+translate, 6-view TTA",
    family="cnn",
)
class FastCNN(CNNClassifier):
    """The airbench network and training, sized for a 2-core CPU.

    Network: rescale to 0..1; (training only) each image of the batch mirrored with
    probability 1/2 (`flip=True`; `flip="alternate"`: airbench's alternating flip, a random
    half of the training images mirrored once before training and then every image mirrored
    in every other epoch, so each is seen both ways in turn) and shifted by up to `translate`
    pixels (reflect padding), done as one gather over the whole batch; a fixed, untrained 2x2
    whitening convolution (`whiten`: eigenvectors of the covariance of the 2x2 patches of the
    first 5,000 training images, both signs, so 8 x channels outputs; grayscale works too); three blocks conv3x3 -> max-pool 2 ->
    batch norm -> `activation` -> conv3x3 -> batch norm -> `activation` with `widths` filters
    (batch norm with a learned shift but no scale, momentum `bn_momentum`, epsilon 1e-5);
    global max pooling; a bias-free dense layer whose logits are multiplied by `logit_scale`.
    With `dirac`, each 3x3 convolution starts as the identity on its first min(in, out)
    filters, the others uniform on +-1/sqrt(fan in) (airbench's initialisation); otherwise
    Keras' Glorot uniform. Max-pooling is 'valid'
    (32 -> 31 -> 15 -> 7 -> 3) unless the maps would vanish, then 'same' (8 -> 7 -> 4 -> 2 -> 1),
    so any `input_size` >= 8 works.

    Training: a fixed schedule of `epochs` - nothing watches the validation split, so
    `validation_fraction` (default 0.02) only reports `val_accuracy` / `val_loss` in
    `history_` (measured with the live weights, not the averaged ones); set it to 0 to train
    on every image. Cross-entropy on the logits with `label_smoothing`; Nesterov SGD
    (`momentum`) whose learning rate rises linearly from 0.2 x `learning_rate` to
    `learning_rate` over the first `warmup` share of the steps, then falls linearly to 0;
    decoupled `weight_decay` (each step, weights shrink by weight_decay x the current learning
    rate). With `ema`, the optimizer keeps an exponential moving average of the weights
    (momentum `ema_momentum` per step, capped on short runs so the initial weights weigh < 1%)
    and Keras' `fit` copies it into the model at the end of training. airbench's optimizer
    elements, on by default: `bias_lr_scale` (batch norm's shift learned that many times
    faster than the weights, 64) and `lookahead` (every 5 steps a slow copy of the weights and
    batch-norm statistics moves towards the live ones, which are reset to it; the decay grows
    as (step / steps)**3 and the model ends with the slow copy). airbench's remaining elements
    are switches, off by default because they bought nothing measurable here:
    `whiten_activation`, `whiten_standardize`.

    Prediction: the softmax of mean logits over views of each image - `tta=0`: the image;
    1 (or True): and its mirror; 2 (airbench's level): half the image and its mirror, half the
    same two views moved one pixel up-left and one down-right (reflect padding). Mirrors only
    when `flip` is on too: `flip=False` says mirrors change labels (the runner sets it on
    datasets such as digits), so neither training nor prediction mirrors then.

    Speed: `precision="bfloat16"` runs the layers in bfloat16 with float32 weights and
    float32 logits (Keras' mixed_bfloat16 policy, set per layer, never globally); it pays on
    CPUs with AMX / AVX-512 BF16 and is slower elsewhere, so on a CPU with neither the fit
    warns and trains in float32 (`precision_` says which ran).
    `steps_per_execution` runs several training steps per call. XLA (`jit_compile`) is not
    offered: Keras turns it off whenever TensorFlow's op determinism is on, which
    `CNNClassifier` switches on for reproducibility.

    Budget (`epochs=None`, `batch_size=None`; see `estimators.budget`): the recipe's batch 512
    and 10 epochs on large sets (CIFAR-10: 96 steps an epoch, 960 steps, unchanged); on small
    sets the batch halves until an epoch has at least 16 steps, but not below 64, and the
    epochs grow to at least 400 optimizer steps, at most 100 epochs. On `shapes` (627 training
    images) the recipe's numbers gave 20 steps and 0.839 over 5 folds in `run --all` (0.850
    on fold 0; batch 64 x 10 epochs 0.981, batch 64 x 40 epochs 0.994, fits of 17 and 74 s).
    The floor of 64: at the recipe's learning rate, batches of 16 diverge part way on small
    sets - `digits` at 30 images per class (300, 5 folds, `benchmarks/learning_curves.py`'s
    samples): batch 16 macro-F1 0.018 / 0.983 / 0.018 / 0.367 / 0.019 (three folds collapsed to
    one class), learning rate 0.2 at batch 16 still 0.377-0.981, batch 64 0.994 / 0.992 / 0.983 /
    0.992 / 0.975; at 3 and 10 per class batch 64 also beat 16 (0.801 vs 0.723, 0.951 vs 0.943).
    The likely cause (not isolated further): batch norm over 16 images of 1x1 maps (8x8
    inputs) is too noisy for the recipe's rate. Each fit's convergence check flags such a
    divergence ("lost ground", `estimators.convergence`).

    Defaults, and the measurements behind them (2 cores shared with other jobs, so times are
    noisy; single runs, random_state=0):

    * airbench94's training hyper-parameters, converted to Keras: batch 512, peak learning
      rate 0.75 for the mean loss (airbench's 11.5 per 1024 summed examples / (1 + 1/(1 -
      0.85)) x 512), momentum 0.85, warm-up over the first 25% of the steps, label smoothing
      0.2, batch-norm momentum 0.6, logit scale 1/9. With widths (32, 64, 128), ema off, 10,000
      training images x 5 epochs, peak rates 0.3 / 0.75 / 2.0 gave 63.6% / 66.8% / 67.1%
      (2,000 test images).
    * weight decay 0.0089: airbench gives PyTorch's SGD weight_decay = wd / lr, so each step
      shrinks the weights by wd = 0.0153 x 512 / 7,850 = 0.001 at batch 512, through the
      momentum buffer 1 / (1 - 0.85) times that in all: 0.0067 x the schedule's factor. Keras'
      decoupled decay shrinks by weight_decay x learning rate, so 0.0067 / 0.75 = 0.0089. Until
      issue 19 the conversion took lr x wd instead, 1.3e-5, about 680 times too weak, and
      the convolutions (scale-free behind batch norm) grew until their steps shrank. On full
      CIFAR-10 (10 epochs, six-view TTA, 10,000 test images, one seed each): 0.0089 88.0% and
      0.015 87.2% (both with `dirac`); 1.3e-5 without `dirac` 87.2%.
    * dirac True, tta 2: measured on full CIFAR-10 by `benchmarks/cnn_airbench.py` (its
      docstring and `AirbenchCNN`'s).
    * bias_lr_scale 64 and lookahead on (airbench's; measured with the corrected weight decay,
      full CIFAR-10, 10 epochs, six-view TTA, 10,000 test images, one seed each): both 88.43%,
      lookahead alone 88.21%, the bias boost alone 88.02%, neither 87.98%; on cnn-airbench both
      90.57% vs neither 89.64%, at the same fit time (1,073 vs 1,078 s). Batch-norm momentum
      0.4 (PyTorch's 0.6, airbench's) instead of 0.6 with both: 88.38%. Left off after
      measuring them on top of both: `flip="alternate"` 88.39%, `whiten_standardize` 88.18%,
      `whiten_activation` 88.44% (at 1.2x the fit time).
    * widths (64, 128, 128) instead of airbench's (64, 256, 256): on the full 50,000 / 10,000
      images with GELU, 8 epochs reached 86.7% test accuracy in a 627 s fit (626 train
      images/s, 1,106 predict images/s with TTA) on a partly busy 2-core machine; with
      ema=True, 86.8% in 854 s (busier machine).
    * activation "relu" instead of airbench's GELU, and 10 epochs instead of 8: on the full
      data ReLU reached 86.3% in 325 s at 8 epochs (GELU: 86.7% in 627 s) and 87.0% at 10
      epochs. TensorFlow's CPU GELU (erf, in bfloat16) costs more than the convolutions
      around it; ReLU buys two more epochs and still halves the fit time.
    * precision "bfloat16": on 10,000 images x 8 epochs, 156 s vs 256 s for float32 at equal
      accuracy (75.3% vs 74.9% on 5,000 test images).
    * tta True: +1.0 point (75.3% vs 74.3%, same run).
    * ema False: Keras' weight average cost 2.4 points on 10,000 images (75.3% with it, 77.7%
      without) and bought nothing measurable on 50,000 (86.8% vs 86.7%, one run each) - the
      averaged weights meet batch-norm statistics collected with the live weights, and with a
      learning rate decaying to 0 the last weights are already an average of sorts.
    * `python benchmarks/cnn_fast_ablation.py --train-limit 10000 --test-limit 5000` (these
      defaults, one seed, 10,000 training images): default 77.9%; switching off whiten -0.8,
      tta -0.9, flip -2.2, translate -0.7, logit scale -31.9, fast batch norm (0.99) -4.1,
      warm-up -0.1 points; ema on -1.7. Three changes did not lower accuracy on this subset:
      label smoothing off (+0.5), float32 (+0.7 at twice the fit time) and GELU (+0.5 at
      about 1.3x the fit time). bfloat16 and ReLU stay for their speed (full-data figures
      above); label smoothing stays from airbench's recipe, unproven here: one seed on a
      subset cannot separate +-0.5 points from noise.
    * XLA: not available (see above). steps_per_execution 1: 4 was not measurably faster.
    """

    _parameter_constraints = {
        **CNNClassifier._parameter_constraints,
        "tta": ["boolean", Interval(Integral, 0, 2, closed="both")],
        "bias_lr_scale": [Interval(Real, 0, None, closed="neither")],
        "flip": ["boolean", StrOptions({"alternate"})],
    }
    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.parameters.mirror_augmentation = "flip"
        # the one-cycle SGD peak (default 0.75) and the label smoothing (see estimators.tuning)
        tags.search_space = {"learning_rate": loguniform(0.25, 2.0), "label_smoothing": [0.0, 0.1, 0.2]}
        tags.min_input_size = 8
        tags.step_budget = StepBudget(batch_size=512, epochs=10, min_steps=400, max_epochs=100, min_batch=64)
        return tags

    def __init__(
        self,
        input_size=None,
        widths=(64, 128, 128),
        epochs=None,
        batch_size=None,
        learning_rate=0.75,
        momentum=0.85,
        weight_decay=0.0089,
        warmup=0.25,
        label_smoothing=0.2,
        logit_scale=1 / 9,
        bn_momentum=0.6,
        activation="relu",
        whiten=True,
        flip=True,
        translate=2,
        ema=False,
        ema_momentum=0.99,
        bias_lr_scale=64.0,
        lookahead=True,
        dirac=True,
        whiten_activation=False,
        whiten_standardize=False,
        tta=2,
        precision="bfloat16",
        steps_per_execution=1,
        validation_fraction=0.02,
        random_state=0,
        n_threads=None,
        verbose=0,
    ):
        self.input_size = input_size
        self.widths = widths
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.label_smoothing = label_smoothing
        self.logit_scale = logit_scale
        self.bn_momentum = bn_momentum
        self.activation = activation
        self.whiten = whiten
        self.flip = flip
        self.translate = translate
        self.ema = ema
        self.ema_momentum = ema_momentum
        self.bias_lr_scale = bias_lr_scale
        self.lookahead = lookahead
        self.dirac = dirac
        self.whiten_activation = whiten_activation
        self.whiten_standardize = whiten_standardize
        self.tta = tta
        self.precision = precision
        self.steps_per_execution = steps_per_execution
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    # -- network ----------------------------------------------------------------------------
    def _build(self, keras, input_shape, n_classes, train_images):
        objects = _keras_objects(keras)
        layers = keras.layers
        if self.precision not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be 'float32' or 'bfloat16'; got {self.precision!r}")
        if self.activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu'; got {self.activation!r}")
        policy = "mixed_bfloat16" if self.precision == "bfloat16" else "float32"
        if policy == "mixed_bfloat16" and not gpu_available(keras) and not bfloat16_supported()[0]:
            warnings.warn("precision='bfloat16' needs a CPU with AMX or AVX-512 BF16 to pay, and this "
                          "one has neither: training in float32 (set precision='float32' to silence this)")
            policy = "float32"
        self.precision_ = "bfloat16" if policy == "mixed_bfloat16" else "float32"
        channels = input_shape[-1]

        inputs = keras.Input(input_shape)
        x = layers.Rescaling(1 / 255)(inputs)
        if self.flip or self.translate:
            x = objects["BatchFlipTranslate"](bool(self.flip), self.translate, seed=self.seed_,
                                              alternate=self.flip == "alternate",
                                              name="flip_translate")(x)
        first = layers.Conv2D(8 * channels, 2, padding="valid", use_bias=bool(self.whiten),
                              trainable=not self.whiten, dtype=policy, name="whiten")
        x = first(x)
        if self.whiten:
            first.set_weights(whitening_kernel(train_images[:WHITEN_IMAGES],
                                               standardize=self.whiten_standardize))
        if self.whiten_activation:  # airbench: whitening conv -> GELU (the two signs differ)
            x = layers.Activation(self.activation, dtype=policy)(x)
        # 'valid' pooling as in airbench (32 -> 31 -> 15 -> 7 -> 3) unless the maps would
        # vanish on small inputs; then 'same' pooling (8 -> 7 -> 4 -> 2 -> 1)
        pool_padding = "valid" if (input_shape[0] - 1) >> len(self.widths) >= 1 else "same"

        def conv(x, width):
            init = objects["PartialDirac"]() if self.dirac else "glorot_uniform"
            return layers.Conv2D(int(width), 3, padding="same", use_bias=False,
                                 kernel_initializer=init, dtype=policy)(x)

        for width in self.widths:
            x = layers.MaxPooling2D(2, padding=pool_padding, dtype=policy)(conv(x, width))
            x = self._norm_act(layers, objects, x, policy)
            x = self._norm_act(layers, objects, conv(x, width), policy)
        x = layers.GlobalMaxPooling2D(dtype=policy)(x)
        x = layers.Dense(n_classes, use_bias=False, dtype="float32")(x)
        outputs = layers.Rescaling(float(self.logit_scale), dtype="float32", name="logits")(x)
        model = keras.Model(inputs, outputs)

        schedule = objects["WarmupLinearDecay"](
            float(self.learning_rate), self.budget_.steps, warmup=float(self.warmup)
        )
        optimizer = keras.optimizers.SGD(
            schedule,
            momentum=float(self.momentum),
            nesterov=True,
            weight_decay=float(self.weight_decay) or None,
            use_ema=bool(self.ema),
            # capped so that the initial weights keep < 1% of the average on short runs
            ema_momentum=min(float(self.ema_momentum), 0.01 ** (1 / max(schedule.total_steps, 1))),
        )
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.CategoricalCrossentropy(
                from_logits=True, label_smoothing=float(self.label_smoothing)
            ),
            metrics=["accuracy"],
            steps_per_execution=int(self.steps_per_execution),
        )
        return model

    def _norm_act(self, layers, objects, x, policy):
        boost = float(self.bias_lr_scale)
        x = layers.BatchNormalization(momentum=float(self.bn_momentum), epsilon=1e-5, scale=False,
                                      center=boost == 1.0, dtype=policy)(x)
        if boost != 1.0:  # the shift as a separate bias whose learning rate is `boost` times
            x = objects["ScaledBias"](boost ** 0.5, dtype=policy)(x)
        return layers.Activation(self.activation, dtype=policy)(x)

    def _callbacks(self, keras, has_validation):
        objects = _keras_objects(keras)
        callbacks = [objects["AlternateFlip"]()] if self.flip == "alternate" else []
        if self.lookahead:
            callbacks.append(objects["Lookahead"](self.budget_.steps))
        return callbacks

    def _training_images(self, images):
        """With `flip="alternate"`: the training images, a random half of them mirrored
        (airbench's first epoch; `AlternateFlip` mirrors all of them in every odd epoch)."""
        if self.flip != "alternate":
            return images
        mirror = np.random.default_rng(self.seed_).random(len(images)) < 0.5
        out = images.copy()
        out[mirror] = out[mirror, :, ::-1]
        return out

    # -- prediction -------------------------------------------------------------------------
    def _predict_proba_batch(self, model, images):
        level = int(self.tta)
        if level >= 2 and self.translate:
            # airbench's level 2: half the image and its mirror, half the same two views of
            # the image moved one pixel up-left and one down-right (reflect padding)
            padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
            h, w = images.shape[1:3]
            moved = (self._views(model, padded[:, :h, :w]) + self._views(model, padded[:, 2:, 2:])) / 2
            logits = (self._views(model, images) + moved) / 2
        else:
            logits = self._views(model, images, mirror=level >= 1)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def _views(self, model, images, mirror=True):
        """The mean logits of `images` and, with `mirror` (and `flip`: a mirror is only a fair
        second view if it keeps the label), their mirror images."""
        logits = predict_fixed_batches(model, np.ascontiguousarray(images)).astype(np.float64)
        if mirror and self.flip:
            mirrored = np.ascontiguousarray(images[:, :, ::-1])
            logits = (logits + predict_fixed_batches(model, mirrored)) / 2
        return logits

    def _custom_objects(self):
        from .cnn import keras_for

        return _keras_objects(keras_for(self.n_threads))


@register(
    "cnn-airbench",
    description="cnn-fast at airbench94's width and length: whitening conv, 3 conv-pool-BN-ReLU "
    "blocks (64-256-256), dirac init, 14 epochs, flip+translate, 6-view TTA; opt-in",
    family="cnn",
    default=False,  # 3x cnn-fast's cost: run when named, not in every `run --all`
)
class AirbenchCNN(FastCNN):
    """`cnn-fast` at airbench94's width and length: widths (64, 256, 256) and 14 epochs.

    The rest is cnn-fast's recipe (see `FastCNN`), whose switches let each of airbench94's
    further elements be tried; each is on here only where a measurement showed it pays.
    Measured on full CIFAR-10 (`benchmarks/cnn_airbench.py`, the JPEG copy in ../shared, 50,000
    training images; one seed each, so differences below about 0.3 points are noise):

    * On 2 cores (TensorFlow, bfloat16, 10,000 test images), 14 epochs: 89.64% in a 1,078 s
      fit without lookahead and the 64x batch-norm bias rate, 90.57% in 1,073 s with both (77 s
      an epoch, 453 GFLOP/s; still improving at the end). 14 epochs is what fits in 20 minutes
      with a margin for a busier machine (an epoch varies by up to 1.5x). cnn-fast's figures for
      each element, one at a time, are in `FastCNN`'s docstring.
    * On a GPU (H100, Keras on JAX, 10 epochs, 5,000 test images), before issue 19's
      weight-decay fix (1.3e-5, 680x too weak; see `FastCNN`): airbench's further elements all
      on (lookahead, 64x learning rate for batch norm's shift, an activation after the
      whitening conv, dirac initialisation) 89.2%; each switched off in turn: `lookahead`
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
    """

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.step_budget = StepBudget(batch_size=512, epochs=14, min_steps=400, max_epochs=100, min_batch=64)
        return tags

    def __init__(
        self,
        input_size=None,
        widths=(64, 256, 256),
        epochs=None,
        batch_size=None,
        learning_rate=0.75,
        momentum=0.85,
        weight_decay=0.0089,
        warmup=0.25,
        label_smoothing=0.2,
        logit_scale=1 / 9,
        bn_momentum=0.6,
        activation="relu",
        whiten=True,
        flip=True,
        translate=2,
        ema=False,
        ema_momentum=0.99,
        bias_lr_scale=64.0,
        lookahead=True,
        dirac=True,
        whiten_activation=False,
        whiten_standardize=False,
        tta=2,
        precision="bfloat16",
        steps_per_execution=1,
        validation_fraction=0.02,
        random_state=0,
        n_threads=None,
        verbose=0,
    ):
        super().__init__(
            input_size=input_size, widths=widths, epochs=epochs, batch_size=batch_size,
            learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay,
            warmup=warmup, label_smoothing=label_smoothing, logit_scale=logit_scale,
            bn_momentum=bn_momentum, activation=activation, whiten=whiten, flip=flip,
            translate=translate, ema=ema, ema_momentum=ema_momentum, bias_lr_scale=bias_lr_scale,
            lookahead=lookahead, dirac=dirac, whiten_activation=whiten_activation,
            whiten_standardize=whiten_standardize, tta=tta,
            precision=precision, steps_per_execution=steps_per_execution,
            validation_fraction=validation_fraction, random_state=random_state,
            n_threads=n_threads, verbose=verbose,
        )
