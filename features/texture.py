"""Texture features: histograms of local binary patterns."""

import numpy as np
from skimage.feature import local_binary_pattern

from .base import ImageFeatures
from .images import luminance, to_float01


class LBP(ImageFeatures):
    """Histogram of uniform, rotation-invariant local binary patterns of the luminance.

    `skimage.feature.local_binary_pattern(gray, P, R, method="uniform")` per image, then a
    histogram of its P + 2 codes for each cell of a `grid` x `grid` partition of the image,
    each histogram summing to 1.
    """

    def __init__(self, n_points=8, radius=1.0, grid=1, n_jobs=None):
        self.n_points = n_points
        self.radius = radius
        self.grid = grid
        self.n_jobs = n_jobs

    def _extract(self, images):
        n, h, w, _ = images.shape
        grid = int(self.grid)
        if not 1 <= grid <= min(h, w):
            raise ValueError(f"grid must be between 1 and the image side {min(h, w)}; got {grid}")
        n_codes = int(self.n_points) + 2
        gray = np.rint(luminance(to_float01(images)) * 255).astype(np.uint8)
        codes = np.stack(
            [local_binary_pattern(g, int(self.n_points), self.radius, method="uniform") for g in gray]
        ).astype(np.int64)
        cell_rows = np.minimum(np.arange(h) * grid // h, grid - 1)
        cell_cols = np.minimum(np.arange(w) * grid // w, grid - 1)
        cell = cell_rows[:, None] * grid + cell_cols[None, :]
        index = (np.arange(n)[:, None, None] * grid * grid + cell) * n_codes + codes
        counts = np.bincount(index.ravel(), minlength=n * grid * grid * n_codes)
        counts = counts.reshape(n, grid * grid, n_codes).astype(np.float32)
        return (counts / counts.sum(axis=-1, keepdims=True)).reshape(n, -1)
