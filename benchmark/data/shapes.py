"""A procedurally generated shapes dataset: seeded, so the same seed gives the same images."""

import numpy as np
from skimage.draw import disk, polygon

SHAPES = ("circle", "square", "triangle", "star")


def _outline(shape, radius, angle):
    """Vertices (x, y) around the origin for the polygonal shapes."""
    if shape == "square":
        t = angle + np.pi / 4 + np.arange(4) * np.pi / 2
        return np.cos(t) * radius, np.sin(t) * radius
    if shape == "triangle":
        t = angle + np.arange(3) * 2 * np.pi / 3
        return np.cos(t) * radius, np.sin(t) * radius
    t = angle + np.arange(10) * np.pi / 5  # star: 5 outer and 5 inner points
    r = np.where(np.arange(10) % 2 == 0, radius, radius * 0.45)
    return np.cos(t) * r, np.sin(t) * r


def make_shapes(n_per_class=200, size=32, seed=0):
    """(images uint8 (n, size, size, 3), labels) with random colour, size, position, rotation."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for shape in SHAPES:
        for _ in range(n_per_class):
            background = rng.uniform(0, 0.6, size=3)
            image = background + rng.normal(0, 0.08, size=(size, size, 3))
            radius = rng.uniform(0.22, 0.42) * size
            cy, cx = rng.uniform(radius * 0.8, size - radius * 0.8, size=2)
            colour = rng.uniform(0.35, 1.0, size=3)
            if shape == "circle":
                rr, cc = disk((cy, cx), radius * 0.85, shape=(size, size))
            else:
                xs, ys = _outline(shape, radius, rng.uniform(0, 2 * np.pi))
                rr, cc = polygon(cy + ys, cx + xs, shape=(size, size))
            image[rr, cc] = colour + rng.normal(0, 0.05, size=(len(rr), 3))
            images.append(np.clip(np.rint(image * 255), 0, 255).astype(np.uint8))
            labels.append(shape)
    return np.stack(images), np.array(labels)
