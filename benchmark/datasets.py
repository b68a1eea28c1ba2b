"""Datasets: the embedded ones that need no network, and `folder:PATH` for any image folder.

Every loader returns a `Dataset`: uint8 images of shape (n, height, width, channels) and one
string label per image. The embedded datasets are built from data that scikit-learn and
scikit-image ship, so `run --all` works offline.
"""

import hashlib
from dataclasses import dataclass, field

import numpy as np

from estimators.registry import unknown_name_message

from .errors import UsageError

FOLDER_PREFIX = "folder:"


@dataclass
class Dataset:
    name: str
    images: np.ndarray  # (n, h, w, c) uint8
    labels: np.ndarray  # (n,) str
    description: str = ""
    source: str = ""
    skipped: list = field(default_factory=list)  # [(path, reason)] of unreadable files
    # Does a horizontally mirrored image keep its label? True for photos, textures and shapes;
    # False for digits and text, where the runner switches off flip augmentation.
    mirror_invariant: bool = True
    # The official train/test split where the dataset has one: "train" or "test" per image
    # (same order as `images`); None when it has none.
    split: np.ndarray = None
    licence: str = ""

    @property
    def has_official_split(self):
        return self.split is not None

    @property
    def classes(self):
        return np.unique(self.labels)

    @property
    def class_counts(self):
        classes, counts = np.unique(self.labels, return_counts=True)
        return dict(zip(classes.tolist(), counts.tolist()))

    @property
    def fingerprint(self):
        """A hash of the pixels, the image shape and the labels: equal data, equal fingerprint."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(repr((self.images.shape, str(self.images.dtype))).encode())
        digest.update(np.ascontiguousarray(self.images).data)
        digest.update("\0".join(self.labels.tolist()).encode())
        if self.split is not None:
            digest.update(b"split\0" + "\0".join(np.asarray(self.split).tolist()).encode())
        return digest.hexdigest()

    def summary(self):
        n, h, w, c = self.images.shape
        return {
            "name": self.name,
            "images": int(n),
            "image_size": f"{h}x{w}x{c}",
            "classes": self.class_counts,
            "fingerprint": self.fingerprint,
            "source": self.source,
            "mirror_invariant": self.mirror_invariant,
            "skipped_files": [{"path": p, "reason": r} for p, r in self.skipped],
        }


class DatasetError(ValueError):
    """A dataset that cannot be benchmarked as it is; the message says why and what to do."""


_EMBEDDED = {}


def embedded(name, description):
    def decorator(loader):
        _EMBEDDED[name] = (loader, description)
        return loader

    return decorator


def list_datasets():
    """[(name, description)] of the embedded datasets."""
    return [(name, description) for name, (_, description) in _EMBEDDED.items()]


def check_dataset_name(name):
    """Raise UsageError (with close matches) unless `name` is embedded or `folder:PATH`."""
    if name.startswith(FOLDER_PREFIX):
        from .image_folder import check_folder

        check_folder(name[len(FOLDER_PREFIX) :])
    elif name not in _EMBEDDED:
        raise UsageError(unknown_name_message("dataset", name, list(_EMBEDDED) + ["folder:PATH"]))


def load_dataset(name, *, image_size=None, seed=0):
    """Load a dataset by name. `image_size` (pixels per side) applies to image folders."""
    if name.startswith(FOLDER_PREFIX):
        from .image_folder import load_image_folder

        return load_image_folder(name[len(FOLDER_PREFIX) :], image_size=image_size, name=name)
    check_dataset_name(name)
    loader, description = _EMBEDDED[name]
    dataset = loader(seed=seed)
    dataset.description = description
    return dataset


def validate_for_cv(dataset, folds):
    """Raise DatasetError unless stratified `folds`-fold CV can run on `dataset`."""
    counts = dataset.class_counts
    if len(counts) < 2:
        raise DatasetError(
            f"dataset {dataset.name!r} has {len(counts)} class(es) "
            f"({', '.join(counts) or 'no images'}); a classifier needs at least 2"
        )
    small = {c: k for c, k in counts.items() if k < folds}
    if small:
        listed = ", ".join(f"class {c!r} has {k} image(s)" for c, k in small.items())
        fewest = min(small.values())
        fix = f"use --folds {fewest} or add images" if fewest >= 2 else "add images to it or remove it"
        raise DatasetError(f"dataset {dataset.name!r}: {listed}, fewer than the {folds} folds; {fix}")


def _to_uint8(images01):
    return np.clip(np.rint(images01 * 255), 0, 255).astype(np.uint8)


@embedded("digits", "scikit-learn's handwritten digits: 1,797 8x8 grayscale images, 10 classes")
def _digits(seed):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = _to_uint8(digits.images[..., np.newaxis] / 16.0)
    return Dataset("digits", images, digits.target.astype(str), source="sklearn.datasets.load_digits",
                   mirror_invariant=False)


@embedded("faces", "scikit-image's LFW subset: 100 faces and 100 non-faces, 25x25 grayscale")
def _faces(seed):
    from skimage.data import lfw_subset

    images = _to_uint8(lfw_subset()[..., np.newaxis])
    labels = np.array(["face"] * 100 + ["non-face"] * 100)
    return Dataset("faces", images, labels, source="skimage.data.lfw_subset")


TEXTURE_PATCH = 32


@embedded(
    "textures",
    "non-overlapping 32x32 patches of scikit-image's brick, grass and gravel photographs: 768 images, 3 classes",
)
def _textures(seed):
    from skimage import data

    images, labels = [], []
    for texture in ("brick", "grass", "gravel"):
        photo = getattr(data, texture)()
        s = TEXTURE_PATCH
        rows, cols = photo.shape[0] // s, photo.shape[1] // s
        # Tiles of a grid, so no two patches share a pixel and nothing leaks across folds.
        tiles = photo[: rows * s, : cols * s].reshape(rows, s, cols, s).swapaxes(1, 2)
        images.append(tiles.reshape(-1, s, s, 1))
        labels += [texture] * (rows * cols)
    return Dataset(
        "textures", np.concatenate(images), np.array(labels), source="skimage.data brick/grass/gravel"
    )


@embedded(
    "shapes",
    "generated 32x32 RGB images of circles, squares, triangles and stars on noisy backgrounds: 800 images, 4 classes",
)
def _shapes(seed):
    from .shapes import make_shapes

    images, labels = make_shapes(n_per_class=200, size=32, seed=seed)
    return Dataset("shapes", images, labels, source=f"generated (seed {seed})")
