"""Datasets: the embedded ones that need no network, and `folder:PATH` for any image folder.

Every loader returns a `Dataset`: uint8 images of shape (n, height, width, channels) and one
string label per image. The embedded datasets are built from data that scikit-learn and
scikit-image ship, so `run --all` works offline.
"""

import dataclasses
import hashlib
from dataclasses import dataclass, field

import numpy as np

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
    # Each image's file, relative to the dataset's source (image folders); None otherwise.
    paths: np.ndarray = None
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

    def subset(self, rows):
        """The same dataset restricted to `rows` (in that order); itself when that is every row."""
        rows = np.asarray(rows)
        if len(rows) == len(self.labels) and np.array_equal(rows, np.arange(len(rows))):
            return self
        return dataclasses.replace(
            self, images=self.images[rows], labels=self.labels[rows],
            split=None if self.split is None else np.asarray(self.split)[rows],
            paths=None if self.paths is None else np.asarray(self.paths)[rows],
        )

    def summary(self):
        """JSON-ready facts for the report; "duplicates" gives indices into these images."""
        from .duplicates import find_duplicates

        n, h, w, c = self.images.shape
        return {
            "name": self.name,
            "images": int(n),
            "image_size": f"{h}x{w}x{c}",
            "classes": self.class_counts,
            "fingerprint": self.fingerprint,
            "source": self.source,
            "mirror_invariant": self.mirror_invariant,
            "official_split": None if self.split is None else {
                side: int(np.sum(np.asarray(self.split) == side)) for side in ("train", "test")
            },
            "licence": self.licence,
            "description": self.description,
            "skipped_files": [{"path": p, "reason": r} for p, r in self.skipped],
            "duplicates": find_duplicates(self.images, self.labels, self.paths).summary(),
        }


class DatasetError(ValueError):
    """A dataset that cannot be benchmarked as it is; the message says why and what to do."""


_EMBEDDED = {}


def embedded(name, description, licence):
    def decorator(loader):
        _EMBEDDED[name] = (loader, description, licence)
        return loader

    return decorator


def list_datasets():
    """[(name, description)] of the embedded datasets."""
    return [(name, description) for name, (_, description, _) in _EMBEDDED.items()]


def named_datasets():
    """The catalog of the field's datasets (CIFAR, MNIST, ...), which may or may not be on disk."""
    from .catalog import CATALOG

    return CATALOG


def check_dataset_name(name):
    """Raise UsageError (with close matches) unless `name` is embedded, named or `folder:PATH`."""
    if name.startswith(FOLDER_PREFIX):
        from .image_folder import check_folder

        check_folder(name[len(FOLDER_PREFIX) :])
    elif name not in _EMBEDDED and name not in named_datasets():
        known = list(_EMBEDDED) + list(named_datasets()) + ["folder:PATH"]
        from estimators.registry import unknown_name_message  # (imports scikit-learn)

        raise UsageError(unknown_name_message("dataset", name, known))


def default_max_per_class(name):
    """The dataset's default sample cap per class (None: use every image)."""
    spec = named_datasets().get(name)
    return spec.max_per_class if spec else None


def load_dataset(name, *, image_size=None, seed=0, data_dir=None, folder_cache=True, location=None):
    """Load a dataset by name. `image_size` (pixels per side) applies to image folders;
    `data_dir` is where the named datasets are looked for first (see `benchmark.catalog`);
    `folder_cache` False decodes image folders without reading or writing the decoded cache;
    `location`: where a `folder:` dataset is (default: the path in its name)."""
    if name.startswith(FOLDER_PREFIX):
        from .image_folder import load_image_folder

        return load_image_folder(location or name[len(FOLDER_PREFIX) :], image_size=image_size,
                                 name=name, cache_dir=folder_cache)
    check_dataset_name(name)
    if name in named_datasets():
        from .catalog import load_named

        return load_named(name, data_dir=data_dir, image_size=image_size, cache_dir=folder_cache)
    loader, description, licence = _EMBEDDED[name]
    dataset = loader(seed=seed)
    dataset.description, dataset.licence = description, licence
    return dataset


def _to_uint8(images01):
    return np.clip(np.rint(images01 * 255), 0, 255).astype(np.uint8)


@embedded("digits", "scikit-learn's handwritten digits: 1,797 8x8 grayscale images, 10 classes",
          "UCI optical digits via scikit-learn: CC BY 4.0")
def _digits(seed):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = _to_uint8(digits.images[..., np.newaxis] / 16.0)
    return Dataset("digits", images, digits.target.astype(str), source="sklearn.datasets.load_digits",
                   mirror_invariant=False)


@embedded("faces", "scikit-image's LFW subset: 100 faces and 100 non-faces, 25x25 grayscale",
          "Labeled Faces in the Wild via scikit-image: for research")
def _faces(seed):
    from skimage.data import lfw_subset

    images = _to_uint8(lfw_subset()[..., np.newaxis])
    labels = np.array(["face"] * 100 + ["non-face"] * 100)
    return Dataset("faces", images, labels, source="skimage.data.lfw_subset")


TEXTURE_PATCH = 32


@embedded(
    "textures",
    "non-overlapping 32x32 patches of scikit-image's brick, grass and gravel photographs: 768 images, 3 classes",
    "scikit-image sample photographs: CC0",
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
    "generated by this tool: no restriction",
)
def _shapes(seed):
    from .shapes import make_shapes

    images, labels = make_shapes(n_per_class=200, size=32, seed=seed)
    return Dataset("shapes", images, labels, source=f"generated (seed {seed})")
