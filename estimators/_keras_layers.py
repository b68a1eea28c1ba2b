"""The custom Keras layers, initializer, schedule and callbacks of the `cnn-fast` recipe
(estimators.cnn_fast), written with `keras.ops` and `keras.random` only, so they run on every
Keras backend.

This module imports Keras when it is imported, so only code that has already loaded Keras
through `estimators.cnn.keras_for` (which picks the backend and the thread count first)
imports it, inside a fit or an unpickling; its leading underscore keeps the registry, which
imports every other module of `estimators`, from loading it, so listing estimators never loads
TensorFlow. The serializable classes are registered once, when the module is first imported.
"""

import keras
import numpy as np
from keras import ops


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
        rows, cols = _reflect(rows, height), _reflect(cols, width)
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
class BatchRotateZoom(keras.layers.Layer):
    """Training only: each image of the batch rotated about its centre by an angle uniform
    on +-`rotation` x 2 pi and scaled by a factor uniform on 1 +- `zoom` (the same on both
    axes), bilinear, the borders filled by reflection - what Keras' RandomRotation(rotation)
    followed by RandomZoom(zoom), both with fill_mode="reflect", draw, composed into one warp.
    Identity at inference.

    The warp is written by hand on `keras.ops` (`affine_warp`: four gathers over the whole
    batch) for every backend but TensorFlow, because Keras' `keras.ops.image.affine_transform`,
    which its layers use, maps a per-image `map_coordinates` over the batch on JAX: cnn-vgg did
    not finish an epoch in 110 s on an H200 with it (issue 34). One warp instead of two also
    interpolates each pixel once."""

    def __init__(self, rotation=0.05, zoom=0.05, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rotation = float(rotation)
        self.zoom = float(zoom)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training or (not self.rotation and not self.zoom):
            return images
        n = ops.shape(images)[0]
        angle = keras.random.uniform((n,), -self.rotation, self.rotation, seed=self.seed_generator)
        scale = 1.0 + keras.random.uniform((n,), -self.zoom, self.zoom, seed=self.seed_generator)
        return warp(images, rotate_zoom_transforms(angle * (2 * np.pi), scale, images.shape[1], images.shape[2]))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotation": self.rotation, "zoom": self.zoom, "seed": self.seed}


def rotate_zoom_transforms(angle, scale, height, width):
    """(n, 6) affine transforms [a0, a1, a2, b0, b1, b2] (Keras' convention: the output
    pixel (x, y) reads the input at (a0 x + a1 y + a2, b0 x + b1 y + b2)) that rotate by
    `angle` radians and scale the sampling grid by `scale` about the image's centre."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
    return ops.stack([cos, -sin, cx - cos * cx + sin * cy,
                      sin, cos, cy - sin * cx - cos * cy], axis=1)


def warp(images, transforms):
    """`images` resampled through `transforms` as `affine_warp` does, by the fastest way on
    the backend: TensorFlow's fused kernel (ImageProjectiveTransformV3, through Keras'
    `affine_transform`) is 4x faster there than the gathers (4.9 against 21 ms for 64 images
    of 32x32 in a tf.function, one thread); on JAX the gathers are 7x faster than Keras' op
    (2.3 against 16 ms, jitted). Both equal scipy.ndimage.affine_transform within 1e-6."""
    if keras.backend.backend() == "tensorflow":
        return ops.image.affine_transform(images, ops.pad(ops.cast(transforms, "float32"), [[0, 0], [0, 2]]),
                                          interpolation="bilinear", fill_mode="reflect")
    return affine_warp(images, transforms)


def affine_warp(images, transforms):
    """`images` (n, height, width, channels) resampled through the (n, 6) `transforms` (see
    `rotate_zoom_transforms`), bilinear, reading outside the image by reflection about its
    edge (d c b a | a b c d | d c b a: scipy.ndimage's and Keras' "reflect"), as four
    gathers over the whole batch."""
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    rows, cols = np.meshgrid(np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32),
                             indexing="ij")
    x, y = ops.convert_to_tensor(cols.reshape(1, -1)), ops.convert_to_tensor(rows.reshape(1, -1))
    t = ops.cast(transforms, "float32")
    source_x = t[:, 0:1] * x + t[:, 1:2] * y + t[:, 2:3]  # n, height * width
    source_y = t[:, 3:4] * x + t[:, 4:5] * y + t[:, 5:6]
    x0, y0 = ops.floor(source_x), ops.floor(source_y)
    fx, fy = source_x - x0, source_y - y0
    x0, y0 = ops.cast(x0, "int32"), ops.cast(y0, "int32")
    flat = ops.reshape(images, (-1, height * width, channels))

    def read(row, col):
        index = _symmetric(row, height) * width + _symmetric(col, width)
        return ops.take_along_axis(flat, ops.expand_dims(index, -1), axis=1)

    fx, fy = ops.cast(fx[..., None], images.dtype), ops.cast(fy[..., None], images.dtype)
    top = read(y0, x0) * (1 - fx) + read(y0, x0 + 1) * fx
    bottom = read(y0 + 1, x0) * (1 - fx) + read(y0 + 1, x0 + 1) * fx
    return ops.reshape(top * (1 - fy) + bottom * fy, (-1, height, width, channels))


def _symmetric(index, size):
    """Any integer `index` reflected into [0, size - 1] about the borders, repeating the edge
    (d c b a | a b c d | d c b a), periodically so that far-away indices land inside too."""
    index = ops.mod(index, 2 * size)
    return ops.where(index > size - 1, 2 * size - 1 - index, index)


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


def _reflect(index, size):
    """`index` (integers in [-size + 1, 2 * size - 2]) reflected into [0, size - 1] about the
    borders, without repeating the edge (numpy's and TensorFlow's "reflect" padding)."""
    index = ops.abs(index)
    return ops.where(index > size - 1, 2 * (size - 1) - index, index)


def custom_objects():
    """The serializable objects by name, for `keras.saving.load_model`."""
    return {cls.__name__: cls for cls in (BatchFlipTranslate, BatchRotateZoom, WarmupLinearDecay,
                                          ScaledBias, PartialDirac)}
