"""Handcrafted feature extractors: stateless scikit-learn transformers over image batches.

    >>> from features import make_features
    >>> make_features("hog+color-moments")   # a FeatureUnion of HOG and ColorMoments
    >>> make_features("efficientnet-lite0")  # a pretrained network's embedding (BACKBONES)

Each extractor maps an (n, height, width, channels) image batch to an (n, n_features) float32
matrix; they compose with scikit-learn's `FeatureUnion` and `Pipeline`.
"""

from sklearn.pipeline import FeatureUnion

from .backbones import BACKBONES
from .base import ImageFeatures
from .color import ColorHistogram, ColorMoments
from .dense import DenseHOG
from .embedding import PretrainedEmbedding
from .hog import HOG
from .images import as_image_batch
from .pixels import RawPixels
from .texture import LBP

# The names used in feature specifications such as "hog+color-moments".
FEATURES = {
    "pixels": RawPixels,
    "hog": HOG,
    "color-moments": ColorMoments,
    "color-hist": ColorHistogram,
    "lbp": LBP,
    "dense-hog": DenseHOG,
}


def make_features(spec):
    """A transformer for `spec`: a transformer, one name from FEATURES or BACKBONES (a
    pretrained network's embedding), or names joined by '+'."""
    if not isinstance(spec, str):
        return spec
    names = [part.strip() for part in spec.split("+")]
    unknown = [name for name in names if name not in FEATURES and name not in BACKBONES]
    if unknown or not names:
        raise ValueError(
            f"unknown feature {unknown[0] if unknown else spec!r}; choose from "
            f"{', '.join(FEATURES)} or a pretrained network: {', '.join(BACKBONES)} (join several with '+')"
        )
    if len(names) == 1:
        return _extractor(names[0])
    return FeatureUnion([(name, _extractor(name)) for name in names])


def _extractor(name):
    return PretrainedEmbedding(backbone=name) if name in BACKBONES else FEATURES[name]()


def pretrained_parts(extractor):
    """The PretrainedEmbedding parts of an extractor (itself, or inside a FeatureUnion or a
    mirror wrapper): what makes an estimator start from external data."""
    if isinstance(extractor, PretrainedEmbedding):
        return [extractor]
    if isinstance(extractor, FeatureUnion):
        return [p for _, t in extractor.transformer_list for p in pretrained_parts(t)]
    inner = getattr(extractor, "extractor", None)
    return pretrained_parts(inner) if inner is not None else []


__all__ = [
    "FEATURES",
    "HOG",
    "LBP",
    "BACKBONES",
    "PretrainedEmbedding",
    "pretrained_parts",
    "ColorHistogram",
    "ColorMoments",
    "DenseHOG",
    "ImageFeatures",
    "RawPixels",
    "as_image_batch",
    "make_features",
]
