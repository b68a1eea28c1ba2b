"""Handcrafted feature extractors: stateless scikit-learn transformers over image batches.

    >>> from features import make_features
    >>> make_features("hog+color-moments")   # a FeatureUnion of HOG and ColorMoments

Each extractor maps an (n, height, width, channels) image batch to an (n, n_features) float32
matrix; they compose with scikit-learn's `FeatureUnion` and `Pipeline`.
"""

from sklearn.pipeline import FeatureUnion

from .base import ImageFeatures
from .color import ColorHistogram, ColorMoments
from .dense import DenseHOG
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
    """A transformer for `spec`: a transformer, one name from FEATURES, or names joined by '+'."""
    if not isinstance(spec, str):
        return spec
    names = [part.strip() for part in spec.split("+")]
    unknown = [name for name in names if name not in FEATURES]
    if unknown or not names:
        raise ValueError(
            f"unknown feature {unknown[0] if unknown else spec!r}; "
            f"choose from {', '.join(FEATURES)} (join several with '+')"
        )
    if len(names) == 1:
        return FEATURES[names[0]]()
    return FeatureUnion([(name, FEATURES[name]()) for name in names])


__all__ = [
    "FEATURES",
    "HOG",
    "LBP",
    "ColorHistogram",
    "ColorMoments",
    "DenseHOG",
    "ImageFeatures",
    "RawPixels",
    "as_image_batch",
    "make_features",
]
