"""Validation and conversion of image batches, shared by every feature extractor and estimator.

An image batch is a numpy array of shape (n, height, width, channels). Two shorter forms are
accepted for convenience: (n, height, width) is a batch of grayscale images, and (n, d) is read as
n images of one row of d grayscale pixels (so flat tabular data, such as scikit-learn's own
estimator checks feed, is a valid if degenerate batch). Integer images are on the 0..255 scale;
floating-point images on the 0..1 scale (scikit-image's convention).
"""

import numpy as np
from sklearn.utils import check_array


def as_image_batch(X, *, name="X"):
    """Return X as a 4-D (n, height, width, channels) array, or raise a ValueError saying why not.

    Validation is scikit-learn's `check_array` (so messages for sparse, complex, object, empty
    or non-finite input are the ones scikit-learn users know), keeping integer pixels as they are.
    """
    X = check_array(
        X,
        accept_sparse=False,
        dtype="numeric",
        allow_nd=True,
        ensure_all_finite=True,
        ensure_min_features=1,
        input_name=name,
    )
    if X.ndim == 2:
        X = X[:, np.newaxis, :, np.newaxis]
    elif X.ndim == 3:
        X = X[..., np.newaxis]
    elif X.ndim != 4:
        raise ValueError(
            f"{name} must be a batch of images of shape (n, height, width[, channels]); "
            f"got an array of shape {X.shape}"
        )
    if 0 in X.shape[1:]:
        raise ValueError(f"{name} has images with no pixels (shape {X.shape})")
    if X.dtype == bool:
        X = X.astype(np.uint8) * 255
    return X


def to_float01(images, dtype=np.float32):
    """Pixels on the 0..1 scale: integers are divided by 255, floats are kept as they are."""
    if np.issubdtype(images.dtype, np.integer):
        return images.astype(dtype) / dtype(255)
    return images.astype(dtype, copy=False)


def to_uint8(images):
    """Pixels quantised to 0..255 (floats are read as 0..1 and clipped)."""
    if images.dtype == np.uint8:
        return images
    if np.issubdtype(images.dtype, np.integer):
        return np.clip(images, 0, 255).astype(np.uint8)
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)


# ITU-R BT.601 luma weights, the ones skimage.color.rgb2gray uses.
LUMA_WEIGHTS = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)


def luminance(images01):
    """Luminance (n, h, w) of float images on 0..1; grayscale images are their own luminance."""
    if images01.shape[-1] >= 3:
        return images01[..., :3] @ LUMA_WEIGHTS.astype(images01.dtype)
    return images01.mean(axis=-1)
