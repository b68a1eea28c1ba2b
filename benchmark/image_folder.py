"""Load a folder of images laid out as root/<class>/<images> (sub-folders of a class included)."""

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .datasets import Dataset
from .errors import UsageError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# When the user sets no size, images larger than this (longer side) are scaled down to it:
# handcrafted features and small CNNs gain little from more pixels and cost much more.
MAX_DEFAULT_SIDE = 64


def check_folder(path):
    root = Path(path).expanduser()
    if not root.exists():
        raise UsageError(f"image folder {str(root)!r} does not exist; give folder:PATH of a directory")
    if not root.is_dir():
        raise UsageError(f"{str(root)!r} is not a directory; give folder:PATH of root/<class>/<images>")


def _image_files(root):
    """[(class, path)] of files with an image extension, and the count of other files ignored."""
    found, ignored = [], 0
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        # os.walk does not follow symbolic links to directories, so a link loop cannot trap it.
        for dirpath, dirnames, filenames in os.walk(class_dir):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if filename.startswith("."):
                    continue
                if Path(filename).suffix.lower() in IMAGE_EXTENSIONS:
                    found.append((class_dir.name, Path(dirpath) / filename))
                else:
                    ignored += 1
    return found, ignored


def _probe(path):
    """The image's (width, height), or the reason it cannot be read."""
    try:
        if path.stat().st_size == 0:
            return None, "empty file (0 bytes)"
        with Image.open(path) as image:
            return image.size, None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return None, f"not a readable image ({type(exc).__name__}: {exc})"


def _decode(path, size):
    """RGB uint8 array of shape (height, width, 3) resized to `size` (w, h), or the failure reason."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", size)  # JPEG: decode at reduced scale when that suffices
            image = image.convert("RGB")
            if image.size != size:
                image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
            return np.asarray(image, dtype=np.uint8), None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        return None, f"cannot decode ({type(exc).__name__}: {exc})"


def _target_size(sizes, image_size):
    if image_size is not None:
        return (int(image_size), int(image_size))
    width, height = Counter(sizes).most_common(1)[0][0]
    scale = min(1.0, MAX_DEFAULT_SIDE / max(width, height))
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def load_image_folder(path, *, image_size=None, name=None, n_threads=None):
    """A Dataset of every readable image under root/<class>/; unreadable files are listed in
    `skipped`, non-image files ignored. Images are converted to RGB and resized to
    `image_size` x `image_size`, or by default to the most common size (longer side at most 64).
    """
    check_folder(path)
    root = Path(path).expanduser()
    files, _ = _image_files(root)
    threads = n_threads or min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(threads) as pool:
        probes = list(pool.map(_probe, [p for _, p in files]))
    skipped = [(str(p), reason) for (_, p), (_, reason) in zip(files, probes) if reason]
    readable = [(c, p, s) for (c, p), (s, _) in zip(files, probes) if s is not None]
    if not readable:
        return Dataset(name or f"folder:{root}", np.zeros((0, 1, 1, 3), np.uint8),
                       np.array([], dtype=str), source=str(root), skipped=skipped)
    size = _target_size([s for _, _, s in readable], image_size)
    with ThreadPoolExecutor(threads) as pool:
        decoded = list(pool.map(lambda item: _decode(item[1], size), readable))
    images, labels = [], []
    for (label, path_, _), (array, reason) in zip(readable, decoded):
        if array is None:
            skipped.append((str(path_), reason))
        else:
            images.append(array)
            labels.append(label)
    images = np.stack(images) if images else np.zeros((0, size[1], size[0], 3), np.uint8)
    return Dataset(
        name or f"folder:{root}", images, np.array(labels, dtype=str), source=str(root), skipped=skipped
    )
