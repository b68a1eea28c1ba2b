"""Features of each image's mirror, for mirror (left-right flip) augmentation of classical estimators.

A mirrored image's features are as deterministic per image as the original's, so they go
through the same content-keyed cache (`features.cache`): `with_mirror(extractor)` is a
FeatureUnion of the extractor and `Mirrored(extractor)`, whose first half of columns are the
images' features and whose second half are their mirrors'. The original half is the very
matrix every other estimator with that extractor uses, so it is computed once either way.

What to do with the mirrored half (train on both, average test predictions) is the
estimator's business: see `estimators.base.FeatureClassifier` and its `mirror` parameter.
"""

import numpy as np
from sklearn.pipeline import FeatureUnion

from .base import ImageFeatures
from .images import as_image_batch


class Mirrored(ImageFeatures):
    """`extractor`'s features of each image mirrored left to right (columns reversed)."""

    def __init__(self, extractor):
        self.extractor = extractor

    def transform(self, X):
        X = as_image_batch(X)
        return self.extractor.transform(np.ascontiguousarray(X[:, :, ::-1]))

    def cache_params(self):
        # what the features depend on: the wrapped extractor's class and output parameters
        # (its n_jobs is an execution setting, like ours)
        inner = self.extractor
        return {"extractor": f"{type(inner).__module__}.{type(inner).__qualname__}",
                "extractor_params": repr(sorted(inner.cache_params().items()))}


def mirrored(extractor):
    """`Mirrored` applied to each part of a FeatureUnion (so each part is cached on its own)."""
    if isinstance(extractor, FeatureUnion):
        return FeatureUnion([(name, mirrored(part)) for name, part in extractor.transformer_list
                             if part not in ("drop", None)])
    return Mirrored(extractor)


def with_mirror(extractor):
    """A FeatureUnion whose columns are `extractor`'s features, then those of the mirrors."""
    return FeatureUnion([("image", extractor), ("mirror", mirrored(extractor))])


def without_mirror(extractor):
    """`extractor` less its mirrors' part, when it is a `with_mirror` union (else unchanged)."""
    if isinstance(extractor, FeatureUnion) and [n for n, _ in extractor.transformer_list] == ["image", "mirror"]:
        return extractor.transformer_list[0][1]
    return extractor
