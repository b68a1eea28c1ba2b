"""The studies' notebooks' way of computing features: one image at a time, with skimage/scipy.

Used by the benchmark scripts as the baseline that the batched extractors in `features/` are
measured against. `notebook_features("hog+color-moments")` is a `FunctionTransformer` that
computes, per image, the same features (same parameters, same order) as
`features.make_features("hog+color-moments")`:

* hog: `skimage.feature.hog` with our defaults (9 orientations, square cells a quarter of the
  shorter side, 2x2 blocks, L2-Hys);
* color-moments: mean, variance (`numpy`), skewness and kurtosis (`scipy.stats`) of each
  channel on 0..1, plus of the luminance for RGB images;
* color-hist: `numpy.histogram` with `bins` bins over 0..255 per channel, summing to 1;
* lbp: `skimage.feature.local_binary_pattern(gray, 8, 1, "uniform")`, histogram of its codes;
* pixels: the image on 0..1, flattened.
"""

import numpy as np
import scipy.stats
import skimage.feature
from sklearn.preprocessing import FunctionTransformer

LUMA = np.array([0.2125, 0.7154, 0.0721])  # skimage.color.rgb2gray's weights


def _hog(img):
    side = max(1, min(img.shape[:2]) // 4)
    kwargs = dict(orientations=9, pixels_per_cell=(side, side), cells_per_block=(2, 2),
                  block_norm="L2-Hys")
    if img.shape[-1] == 1:
        return skimage.feature.hog(img[..., 0], **kwargs)
    return skimage.feature.hog(img, channel_axis=-1, **kwargs)


def _planes01(img):
    x = img / 255.0 if np.issubdtype(img.dtype, np.integer) else img.astype(np.float64)
    planes = [x[..., c] for c in range(x.shape[-1])]
    if x.shape[-1] >= 3:
        planes.append(x[..., :3] @ LUMA)
    return planes


def _color_moments(img):
    out = []
    for plane in _planes01(img):
        v = plane.ravel()
        out += [np.mean(v), np.var(v), scipy.stats.skew(v), scipy.stats.kurtosis(v)]
    return np.nan_to_num(np.array(out))  # a flat channel: scipy says NaN, we say 0


def _color_hist(img, bins=16):
    return np.concatenate([
        np.histogram(img[..., c], bins=bins, range=(0, 256))[0] / img[..., c].size
        for c in range(img.shape[-1])
    ])


def _lbp(img):
    gray = _planes01(img)[-1] if img.shape[-1] >= 3 else _planes01(img)[0]
    codes = skimage.feature.local_binary_pattern(np.rint(gray * 255).astype(np.uint8), 8, 1,
                                                 method="uniform")
    return np.bincount(codes.astype(np.int64).ravel(), minlength=10) / codes.size


def _pixels(img):
    return (img / 255.0 if np.issubdtype(img.dtype, np.integer) else img).ravel()


PER_IMAGE = {
    "hog": _hog,
    "color-moments": _color_moments,
    "color-hist": _color_hist,
    "lbp": _lbp,
    "pixels": _pixels,
}


def notebook_features(spec):
    """A FunctionTransformer computing the features named in `spec` image by image."""
    functions = [PER_IMAGE[name] for name in spec.split("+")]

    def extract(images):
        return np.array(
            [np.concatenate([f(img) for f in functions]) for img in images], dtype=np.float32
        )

    return FunctionTransformer(extract)
