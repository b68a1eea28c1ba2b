"""Identical images in a dataset: copies within a class, and label conflicts across classes.

Two images are identical when their pixels and shape are (a blake2b hash of both). Copies
within a class inflate scores when they land on both sides of a split; the same image under
two classes is label noise that caps every classifier's accuracy.
"""

import hashlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np


@dataclass
class DuplicateGroup:
    """Identical images: their positions in the dataset, their labels and, if given, names."""

    indices: list
    labels: list
    names: list = None

    def to_dict(self):
        described = {"indices": self.indices, "labels": self.labels}
        if self.names is not None:
            described["names"] = self.names
        return described


@dataclass
class Duplicates:
    within_class: list  # [DuplicateGroup] identical images under one label
    label_conflicts: list  # [DuplicateGroup] identical images under two or more labels

    def summary(self):
        """JSON-ready counts, and every label conflict."""
        return {
            "within_class_groups": len(self.within_class),
            "within_class_copies": sum(len(g.indices) - 1 for g in self.within_class),
            "label_conflict_groups": len(self.label_conflicts),
            "label_conflicts": [g.to_dict() for g in self.label_conflicts],
        }


def image_digest(image):
    digest = hashlib.blake2b(digest_size=16)
    image = np.ascontiguousarray(image)
    digest.update(repr((image.shape, str(image.dtype))).encode())
    digest.update(image.data)
    return digest.digest()


def find_duplicates(images, labels, names=None):
    """Group identical images (same pixels, same shape); groups are in order of first index."""
    groups = defaultdict(list)
    for i, image in enumerate(images):
        groups[image_digest(image)].append(i)
    within, conflicts = [], []
    for indices in groups.values():
        if len(indices) < 2:
            continue
        group = DuplicateGroup(
            indices=[int(i) for i in indices],
            labels=[str(labels[i]) for i in indices],
            names=None if names is None else [str(names[i]) for i in indices],
        )
        (within if len(set(group.labels)) == 1 else conflicts).append(group)
    return Duplicates(within, conflicts)
