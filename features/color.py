"""Colour features: moments of the pixel distribution and colour histograms."""

import numpy as np

from .base import ImageFeatures
from .images import luminance, to_float01, to_uint8


def moments(values):
    """Mean, variance, skewness and excess kurtosis along the last axis.

    The same definitions as `scipy.stats.skew` and `scipy.stats.kurtosis` (biased, Fisher), but
    a flat channel gives skewness and kurtosis 0 instead of NaN, and the batch is done in one
    vectorised pass.
    """
    mean = values.mean(axis=-1, keepdims=True)
    centred = values - mean
    squared = centred * centred  # products, not `**`: NumPy's pow is several times slower
    var = squared.mean(axis=-1)
    m3 = (squared * centred).mean(axis=-1)
    m4 = (squared * squared).mean(axis=-1)
    # 1e-12 on the 0..1 scale is far below one grey level squared (1.5e-5): such a channel is flat.
    flat = var <= 1e-12
    safe = np.where(flat, 1.0, var)
    skew = np.where(flat, 0.0, m3 / safe**1.5)
    kurt = np.where(flat, 0.0, m4 / safe**2 - 3.0)
    return np.stack([mean[..., 0], var, skew, kurt], axis=-1)


class ColorMoments(ImageFeatures):
    """Mean, variance, skewness and kurtosis of each channel and of the luminance.

    As in the emotion-from-art study. For RGB images: 4 moments x (3 channels + luminance) = 16
    features; for grayscale images the channel is the luminance: 4 features. Pixels on 0..1.
    """

    def __init__(self, n_jobs=None):
        self.n_jobs = n_jobs

    def _extract(self, images):
        n = len(images)
        x = to_float01(images)  # float32: means use pairwise summation, ~1e-7 relative error
        planes = np.moveaxis(x, -1, 1).reshape(n, x.shape[-1], -1)
        if x.shape[-1] >= 3:
            planes = np.concatenate([planes, luminance(x).reshape(n, 1, -1)], axis=1)
        return moments(planes).reshape(n, -1)


class ColorHistogram(ImageFeatures):
    """Per-channel intensity histograms with `bins` bins over 0..255, each summing to 1."""

    def __init__(self, bins=16, n_jobs=None):
        self.bins = bins
        self.n_jobs = n_jobs

    def _extract(self, images):
        if not 1 <= int(self.bins) <= 256:
            raise ValueError(f"bins must be between 1 and 256; got {self.bins}")
        n, h, w, c = images.shape
        bins = int(self.bins)
        # Quantise, then count every (image, channel, bin) with one bincount.
        quantised = (to_uint8(images).astype(np.int64) * bins) >> 8
        index = (np.arange(n)[:, None, None, None] * c + np.arange(c)) * bins + quantised
        counts = np.bincount(index.ravel(), minlength=n * c * bins)
        return (counts.reshape(n, c * bins) / (h * w)).astype(np.float32)
