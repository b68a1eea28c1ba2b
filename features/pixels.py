"""Raw pixels as features."""

from .base import ImageFeatures
from .images import to_float01


class RawPixels(ImageFeatures):
    """Every pixel of every channel on the 0..1 scale, flattened (the garbage study's baseline)."""

    def __init__(self, n_jobs=None):
        self.n_jobs = n_jobs

    def _extract(self, images):
        return to_float01(images).reshape(len(images), -1)
