"""The Dataset type every loader returns: uint8 images of shape (n, height, width, channels),
one string label per image, and what the report says about where they came from."""

import dataclasses
import hashlib
from dataclasses import dataclass, field

import numpy as np

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
    # [(path, reason)] of folders left out as this tool's own output (run directories)
    excluded: list = field(default_factory=list)

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
        from benchmark.data.duplicates import find_duplicates

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
            "excluded_folders": [{"path": p, "reason": r} for p, r in self.excluded],
            "duplicates": find_duplicates(self.images, self.labels, self.paths).summary(),
        }


class DatasetError(ValueError):
    """A dataset that cannot be benchmarked as it is; the message says why and what to do."""
