"""`cnn-fast` and `cnn-airbench`: this project's fast CPU recipe, tuned for accuracy per CPU-second.

The airbench / hlb-CIFAR10 recipe (Keller Jordan's airbench and tysam-code's hlb-CIFAR10, fast
CIFAR-10 training scripts for one GPU), narrowed and shortened for a 2-core CPU: whitening
convolution, three conv-pool-batch-norm blocks, dirac initialisation, label smoothing,
Nesterov SGD with warm-up, linear decay and lookahead, flip-and-translate augmentation and
test-time augmentation. Every technique has an `__init__` switch; what each buys is measured
by `benchmarks/cnn_fast_ablation.py`, the recipe on full CIFAR-10 by `benchmarks/cnn_airbench.py`
and `benchmarks/cifar10_time_to_accuracy.py` (their docstrings hold the figures).

`cnn-airbench` is the same recipe at airbench94's width and length (widths 64-256-256, 14
epochs): a registered variant of `FastCNN`, not a copy of it.

The custom Keras objects live in `estimators._keras_layers`, imported only inside `fit` and
unpickling, so importing this module stays free of TensorFlow.
"""

import dataclasses
import warnings
from numbers import Integral, Real

import numpy as np
from scipy.stats import loguniform
from sklearn.utils._param_validation import Interval, StrOptions

from .budget import StepBudget
from .cnn import CNNClassifier, predict_fixed_batches
from .keras_backend import bfloat16_supported, gpu_available
from .registry import register

WHITEN_IMAGES = 5000  # training images whose 2x2 patches give the whitening filters
WHITEN_EPS = 5e-4  # added to the patch covariance's eigenvalues (images scaled to 0..1)


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
    first 5,000 training images, both signs, so 8 x channels outputs; grayscale works too);
    three blocks conv3x3 -> max-pool 2 -> batch norm -> `activation` -> conv3x3 -> batch norm
    -> `activation` with `widths` filters (batch norm with a learned shift but no scale,
    momentum `bn_momentum`, epsilon 1e-5); global max pooling; a bias-free dense layer whose
    logits are multiplied by `logit_scale`. With `dirac`, each 3x3 convolution starts as the
    identity on its first min(in, out) filters, the others uniform on +-1/sqrt(fan in)
    (airbench's initialisation); otherwise Keras' Glorot uniform. Max-pooling is 'valid'
    (32 -> 31 -> 15 -> 7 -> 3) unless the maps would vanish, then 'same' (8 -> 7 -> 4 -> 2 ->
    1), so any `input_size` >= 8 works.

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
    are switches, off by default: `whiten_activation`, `whiten_standardize`.

    Prediction: the softmax of mean logits over views of each image - `tta=0`: the image;
    1 (or True): and its mirror; 2 (airbench's level): half the image and its mirror, half the
    same two views moved one pixel up-left and one down-right (reflect padding). Mirrors only
    when `flip` is on too: `flip=False` says mirrors change labels (the runner sets it on
    datasets such as digits), so neither training nor prediction mirrors then.

    Speed: `precision="bfloat16"` runs the layers in bfloat16 with float32 weights and
    float32 logits (Keras' mixed_bfloat16 policy, set per layer, never globally); it pays on
    CPUs with AMX / AVX-512 BF16 and is slower elsewhere, so on a CPU with neither the fit
    warns and trains in float32 (`precision_` says which ran). `steps_per_execution` runs
    several training steps per call. XLA (`jit_compile`) is not offered: Keras turns it off
    whenever TensorFlow's op determinism is on, which `CNNClassifier` switches on for
    reproducibility.

    Budget (`epochs=None`, `batch_size=None`; see `estimators.budget`): the recipe's batch 512
    and 10 epochs on large sets (CIFAR-10: 96 steps an epoch, 960 steps); on small sets the
    batch halves until an epoch has at least 16 steps, but not below 64 (smaller batches
    diverge at the recipe's learning rate), and the epochs grow to at least 400 optimizer
    steps, at most 100 epochs.

    The defaults and what each technique buys are measured by `benchmarks/cnn_fast_ablation.py`
    (each switch on a CIFAR-10 subset), `benchmarks/cnn_airbench.py` (full CIFAR-10) and
    `benchmarks/cifar10_time_to_accuracy.py` (against cnn-vgg); the budget's floor by
    `benchmarks/budget_sufficiency.py`. Their docstrings hold the figures.
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
        from ._keras_layers import BatchFlipTranslate, PartialDirac, WarmupLinearDecay

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
            x = BatchFlipTranslate(bool(self.flip), self.translate, seed=self.seed_,
                                   alternate=self.flip == "alternate", name="flip_translate")(x)
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
            init = PartialDirac() if self.dirac else "glorot_uniform"
            return layers.Conv2D(int(width), 3, padding="same", use_bias=False,
                                 kernel_initializer=init, dtype=policy)(x)

        for width in self.widths:
            x = layers.MaxPooling2D(2, padding=pool_padding, dtype=policy)(conv(x, width))
            x = self._norm_act(layers, x, policy)
            x = self._norm_act(layers, conv(x, width), policy)
        x = layers.GlobalMaxPooling2D(dtype=policy)(x)
        x = layers.Dense(n_classes, use_bias=False, dtype="float32")(x)
        outputs = layers.Rescaling(float(self.logit_scale), dtype="float32", name="logits")(x)
        model = keras.Model(inputs, outputs)

        schedule = WarmupLinearDecay(
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

    def _norm_act(self, layers, x, policy):
        from ._keras_layers import ScaledBias

        boost = float(self.bias_lr_scale)
        x = layers.BatchNormalization(momentum=float(self.bn_momentum), epsilon=1e-5, scale=False,
                                      center=boost == 1.0, dtype=policy)(x)
        if boost != 1.0:  # the shift as a separate bias whose learning rate is `boost` times
            x = ScaledBias(boost ** 0.5, dtype=policy)(x)
        return layers.Activation(self.activation, dtype=policy)(x)

    def _callbacks(self, keras, has_validation):
        from ._keras_layers import AlternateFlip, Lookahead

        callbacks = [AlternateFlip()] if self.flip == "alternate" else []
        if self.lookahead:
            callbacks.append(Lookahead(self.budget_.steps))
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
        # called after `CNNClassifier.__setstate__` loaded Keras, so the import is safe
        from ._keras_layers import custom_objects

        return custom_objects()


class AirbenchCNN(FastCNN):
    """`FastCNN` whose recipe trains for 14 epochs (cnn-fast's: 10), airbench94's length on
    this CPU (what fits a 20-minute CIFAR-10 fit on 2 cores at widths 64-256-256). Only the
    budget differs: it is the recipe's length that the budget rule stretches on small sets
    (`estimators.budget`), so it is the class's declaration (its tags) that `clone` keeps, where
    `epochs=14` would fix the length on every set. Registered, with airbench's widths, as
    `cnn-airbench`."""

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.step_budget = dataclasses.replace(tags.step_budget, epochs=14)
        return tags


AIRBENCH_WIDTHS = (64, 256, 256)


@register(
    "cnn-airbench",
    description="cnn-fast at airbench94's width and length: whitening conv, 3 conv-pool-BN-ReLU "
    "blocks (64-256-256), dirac init, 14 epochs, flip+translate, 6-view TTA; opt-in",
    family="cnn",
    default=False,  # 3x cnn-fast's cost: run when named, not in every `run --all`
)
def cnn_airbench():
    """cnn-fast at airbench94's width and length; measured by `benchmarks/cnn_airbench.py`."""
    return AirbenchCNN(widths=AIRBENCH_WIDTHS)
