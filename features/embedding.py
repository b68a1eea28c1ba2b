"""Frozen ImageNet embeddings as features: a pretrained backbone's global-pooled activations.

`PretrainedEmbedding(backbone="efficientnet-lite0")` resizes each image to the backbone's input
size, applies its preprocessing (layers in front of the network), runs the frozen network in batches and averages the chosen
layer's activations over the image (global average pooling): 1,280 features per image for
EfficientNet-Lite0's last layer. The network was trained on ImageNet-1k and is never trained
here, so, like the handcrafted extractors, its output depends on each image alone: it is
computed once per dataset and backbone and kept in the content-keyed feature cache
(features.cache), whose key holds the SHA-256 of the weight file, so other weights are never
served the embeddings of these. No test image reaches any fitted part (the heads fit on the
training rows), so nothing leaks; a pretrained network may still have seen images like the
test images during its pretraining, which the report says.
"""

import os

import numpy as np

from .backbones import file_digest, get_backbone
from .base import ImageFeatures, thread_budget
from .images import as_image_batch, to_float01

# Images per forward pass: about 1 GB of activations for EfficientNet-Lite0 at 224 px, and
# large enough that the convolutions run near the CPU's peak.
BATCH_SIZE = 64

# Built networks of this process, by (backbone, layer, weight digest): a dataset's images come
# in several calls (one per cache miss), and building one costs seconds.
_networks = {}


class PretrainedEmbedding(ImageFeatures):
    """Global-pooled activations of `layer` (None: the backbone's last feature map) of the
    pretrained `backbone` (a name of features.backbones.BACKBONES) for each image, resized to
    `input_size` (None: the size the network was trained at; smaller is cheaper, quadratically)
    (bilinear, antialiased). `weights_dir`: a folder holding the weight file
    (see features.backbones for where else it is looked for). `n_jobs`: the backend's threads
    (None: what this process may use)."""

    feature_version = 1

    def __init__(self, backbone="efficientnet-lite0", layer=None, input_size=None, weights_dir=None,
                 batch_size=BATCH_SIZE, n_jobs=None):
        self.backbone = backbone
        self.layer = layer
        self.input_size = input_size
        self.weights_dir = weights_dir
        self.batch_size = batch_size
        self.n_jobs = n_jobs

    def cache_params(self):
        """What the output depends on: the backbone, the layer and the weights' content (not
        where the file lies, nor the batch size or threads)."""
        spec = get_backbone(self.backbone)
        return {"backbone": self.backbone, "layer": self.layer, "input_size": self._size(spec),
                "weights": file_digest(spec.locate(self.weights_dir)), "keras": keras_versions()}

    def transform(self, X):
        # One batch after another on the backend's own threads, not ImageFeatures' thread
        # chunks: the network is the parallel part.
        X = as_image_batch(X)
        spec = get_backbone(self.backbone)
        network, keras = self._network(spec)
        size = self._size(spec)
        parts = []
        for start in range(0, len(X), int(self.batch_size)):
            batch = _rgb(to_float01(X[start:start + int(self.batch_size)])) * np.float32(255)
            batch = keras.ops.convert_to_numpy(keras.ops.image.resize(
                batch, (size, size), interpolation="bilinear", antialias=True))
            parts.append(keras.ops.convert_to_numpy(network(batch, training=False)))
        if not parts:
            return np.zeros((0, network.output_shape[-1]), np.float32)
        return np.concatenate(parts).astype(np.float32, copy=False)

    def _size(self, spec):
        return int(self.input_size) if self.input_size is not None else spec.input_size

    def _network(self, spec):
        # estimators.keras_backend owns the backend choice and its threads for every Keras
        # user in a process (imported here, when an embedding is computed, not at import)
        from estimators.keras_backend import import_keras

        keras = import_keras(self.n_jobs or thread_budget())
        path = spec.locate(self.weights_dir)
        size = self._size(spec)
        key = (spec.name, self.layer, size, file_digest(path), keras.backend.backend())
        if key not in _networks:
            base = spec.build(keras, str(path), size)
            if self.layer is None:
                features = base.output
            else:
                try:
                    features = base.get_layer(self.layer).output
                except ValueError:
                    raise ValueError(f"{spec.title} has no layer {self.layer!r}; its layers include "
                                     f"{', '.join(layer.name for layer in base.layers[-5:])}") from None
            pooled = keras.layers.GlobalAveragePooling2D()(features)
            trunk = keras.Model(base.input, pooled)
            inputs = keras.Input((size, size, 3))
            x = inputs
            for layer in spec.preprocessing(keras):  # pixels on 0..255 to the network's input
                x = layer(x)
            _networks[key] = keras.Model(inputs, trunk(x), name=f"{base.name}_embedding")
        return _networks[key], keras


def keras_versions():
    """Keras' version and its backend's (name and version), read without importing them: the
    network's output depends on their kernels, so cached embeddings are keyed by them too."""
    from importlib import metadata

    backend = os.environ.get("KERAS_BACKEND") or "tensorflow"
    versions = []
    for package in ("keras", backend):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return ", ".join(versions)


def _rgb(images):
    """Three channels: grayscale repeated (ImageNet networks take colour images)."""
    if images.shape[-1] == 3:
        return images
    if images.shape[-1] == 1:
        return np.repeat(images, 3, axis=-1)
    return images[..., :3]
