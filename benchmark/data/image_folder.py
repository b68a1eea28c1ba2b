"""Load a folder of images into a Dataset, in parallel, with an on-disk cache of the result.

Layouts (sub-folders of a class are included; hidden files and folders are not):

* `root/<class>/<images>`: no official split.
* `root/train/<class>/...` plus a held-out folder `root/test/`, `val/`, `valid/` or `validation/`
  (names matched case-insensitively): an official split, `Dataset.split` is "train" or "test"
  per image. When several held-out folders exist, `test/` (else the first of val, valid,
  validation) is the "test" side; the others are left out and named in `Dataset.description`.
  train/ and the held-out side must have the same classes (DatasetError otherwise).

Files with an image extension whose content cannot be used - empty, unreadable, truncated, a
format other than the extension says (a GIF placeholder named .jpg), a link that loops - are
listed in `Dataset.skipped` with the reason; other files are ignored.

Run directories of this tool inside the folder (a `results/` written by `run --datasets
folder:.`, an `--out` inside a class folder) are never read as images: the runner gives the
loader `leave_out`, the store's predicate of its own output (benchmark.execution.store.is_output:
a run.json beside cells/, or this run's directory), and such a folder is left out with
everything below it, and so is a class folder that holds nothing but such runs;
`Dataset.excluded` lists them and the report flags them.

The decoded arrays are cached as .npz under `default_cache_dir() / "folders"`, one slot per
(folder, requested size), checked against a key made of the folder path, the requested size,
`CACHE_VERSION` and every image file's relative path, size and content hash (blake2b of its
bytes, computed on every load): a changed, added or removed file gives a new key and the folder
is decoded again, also when the file kept its size and modification time (`cp -p`, `rsync -a`,
a restored backup). Hashing reads every file, which costs little next to decoding them (the
README gives the figures for TrashNet and CIFAR-10, cold and warm); no timestamp is trusted.
"""

import hashlib
import json
import os
import unicodedata
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from features.cache import atomic_write, default_cache_dir

from benchmark.data.dataset import Dataset, DatasetError
from benchmark.errors import UsageError, failure_line

# The formats PIL may find in a file with this extension; anything else is skipped.
FORMATS = {
    ".jpg": {"JPEG", "MPO"}, ".jpeg": {"JPEG", "MPO"}, ".png": {"PNG"}, ".bmp": {"BMP", "DIB"},
    ".gif": {"GIF"}, ".tif": {"TIFF"}, ".tiff": {"TIFF"}, ".webp": {"WEBP"},
}
IMAGE_EXTENSIONS = set(FORMATS)
TRAIN = "train"
HELD_OUT = ("test", "val", "valid", "validation")  # in order of preference
# When the user sets no size, images larger than this (longer side) are scaled down to it:
# handcrafted features and small CNNs gain little from more pixels and cost much more.
MAX_DEFAULT_SIDE = 64
CACHE_VERSION = 2  # 2: 16-bit images scaled to 8 bits, not clipped


def check_folder(path):
    root = Path(path).expanduser()
    if not root.exists():
        raise UsageError(f"image folder {str(root)!r} does not exist; give folder:PATH of a directory")
    if not root.is_dir():
        raise UsageError(f"{str(root)!r} is not a directory; give folder:PATH of root/<class>/<images>")


@dataclass
class FolderImages:
    """What `read_image_folder` found: the images in load order, with their labels and paths."""

    images: np.ndarray  # (n, h, w, 3) uint8
    labels: np.ndarray  # (n,) str: the class folder's name
    paths: np.ndarray  # (n,) str: each image's path relative to the root, with "/"
    split: np.ndarray = None  # (n,) "train" | "test"; None without an official split
    held_out: str = None  # the folder name of the "test" side ("test", "val", ...)
    skipped: list = field(default_factory=list)  # [(path, reason)]
    notes: list = field(default_factory=list)  # what was left out, for the description
    from_cache: bool = False
    excluded: list = field(default_factory=list)  # [(path, reason)]: this tool's own output


def load_image_folder(path, *, image_size=None, name=None, n_threads=None, cache_dir=True, leave_out=None):
    """A Dataset of every usable image under `path` (see the module docstring for layouts).

    Images are RGB uint8, resized to `image_size` x `image_size`, or by default to the most
    common size with the longer side at most 64. `cache_dir`: True for the default cache
    folder, a path for another, None or False for no cache. `leave_out`: a predicate of the
    folders to leave out as this tool's output (see the module docstring); None: none. DatasetError when no image is
    usable, or when an official split's two sides have different classes.
    """
    folder = read_image_folder(path, image_size=image_size, n_threads=n_threads, cache_dir=cache_dir,
                               leave_out=leave_out)
    root = Path(path).expanduser()
    if len(folder.labels) == 0:
        raise DatasetError(_nothing_usable(folder, root))
    if folder.split is not None:
        _check_same_classes(folder, root)
    return Dataset(
        name or f"folder:{root}", folder.images, folder.labels, description="; ".join(folder.notes),
        source=str(root), skipped=folder.skipped, split=folder.split, paths=folder.paths,
        excluded=folder.excluded,
    )


def read_image_folder(path, *, image_size=None, n_threads=None, cache_dir=True, leave_out=None):
    """The decoded images of a folder as `FolderImages` (from the cache when it is current)."""
    check_folder(path)
    root = Path(path).expanduser()
    files, held_out, notes, skipped, excluded = _list_files(root, leave_out)
    slot = _cache_slot(cache_dir, root, image_size)
    key = None if slot is None else _cache_key(root, files, image_size)
    folder = _read_cache(slot, key, root)
    if folder is None:
        folder = _decode_all(root, files, image_size, n_threads)
        _write_cache(slot, key, folder, root)
    folder.held_out = held_out
    folder.notes = notes
    folder.skipped = skipped + folder.skipped
    folder.excluded = excluded
    return folder


# -- finding the files -------------------------------------------------------------------------
@dataclass
class _File:
    split: str  # "train" | "test" | None
    label: str
    path: str
    relative: str  # to the root, with "/"
    size: int = None  # bytes; None when the file cannot be stat'ed
    error: str = None


def _subfolders(folder):
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _layout(root):
    """[(split, folder)] to read, the held-out folder's name (or None) and notes."""
    tops = {p.name.lower(): p for p in _subfolders(root)}
    held_out = [tops[n] for n in HELD_OUT if n in tops]
    if TRAIN not in tops or not held_out:
        return [(None, root)], None, []
    notes = [f"official split: {tops[TRAIN].name}/ is train, {held_out[0].name}/ is test"]
    # a third split (validation/ beside test/) joins the training side: every protocol here
    # carves its own validation data out of the training images, and only test/ is scored
    notes += [f"{p.name}/ is used as training images (this tool carves its own validation split "
              f"out of the training side; only {held_out[0].name}/ is scored)" for p in held_out[1:]]
    others = sorted(set(tops.values()) - {tops[TRAIN], *held_out})
    notes += [f"{p.name}/ left out (not train/ or a held-out folder)" for p in others]
    sides = [("train", tops[TRAIN]), ("test", held_out[0])] + [("train", p) for p in held_out[1:]]
    return sides, held_out[0].name, notes


RUN_OUTPUT = "left out: a run directory of this benchmark (its output, not images of the dataset)"
ONLY_RUNS = "left out: it holds only run directories of this benchmark, so it is not a class"


def _list_files(root, leave_out=None):
    """The image files in load order, the held-out folder's name, notes, links skipped, and
    the folders `leave_out` says are this tool's output, left out ([(path, reason)])."""
    def is_output(folder):
        return leave_out is not None and leave_out(folder)

    sides, held_out, notes = _layout(root)
    around = {root.resolve(), *root.resolve().parents}
    files, skipped, excluded = [], [], []
    for split, side in sides:
        for class_dir in _subfolders(side):
            if class_dir.is_symlink() and class_dir.resolve() in around:
                skipped.append((_shown(class_dir), "link to the data folder or above it (a loop), not followed"))
                continue
            if is_output(class_dir):
                excluded.append((_shown(class_dir.relative_to(root).as_posix()), RUN_OUTPUT))
                continue
            label, before, runs_before = class_label(class_dir.name), len(files), len(excluded)
            # os.walk does not follow links to folders, so a link loop below cannot trap it.
            for dirpath, dirnames, filenames in os.walk(class_dir):
                runs = {d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))
                        and is_output(os.path.join(dirpath, d))}
                prefix = Path(dirpath).relative_to(root).as_posix()
                excluded += [(_shown(f"{prefix}/{d}"), RUN_OUTPUT) for d in sorted(runs)]
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in runs)
                for filename in sorted(filenames):  # plain strings: thousands of files per folder
                    if filename.startswith(".") or os.path.splitext(filename)[1].lower() not in FORMATS:
                        continue
                    path = os.path.join(dirpath, filename)
                    files.append(_stat(_File(split, label, path, _shown(f"{prefix}/{filename}"))))
            if len(files) == before and len(excluded) > runs_before:  # e.g. results/
                excluded.append((_shown(class_dir.relative_to(root).as_posix()), ONLY_RUNS))
            elif len(files) == before:
                skipped.append((_shown(class_dir), EMPTY_CLASS))
    return files, held_out, notes, skipped, excluded


def class_label(folder_name):
    """A class folder's name as its label: Unicode NFC (so `café` spelled with a combining
    accent in test/ and a precomposed one in train/ is one class), and a name that is not
    valid UTF-8 with its odd bytes shown as \\xNN escapes rather than failing later."""
    text = os.fsencode(folder_name).decode("utf-8", "backslashreplace")
    return unicodedata.normalize("NFC", text)


def _shown(path):
    """A path as printable text, whatever bytes its name holds."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def _stat(file):
    try:
        st = os.stat(file.path)
        file.size = st.st_size
    except OSError as exc:  # a dangling link, a link loop, a permission problem
        file.error = f"cannot read ({exc.strerror or type(exc).__name__})"
    return file


# -- decoding ----------------------------------------------------------------------------------
class _Skip(Exception):
    """A file that is not a usable image; the message is the reason."""


def _open(file):
    if file.error:
        raise _Skip(file.error)
    if file.size == 0:
        raise _Skip("empty file (0 bytes)")
    try:
        image = Image.open(file.path)
    except PermissionError:
        raise _Skip("cannot read (permission denied)") from None
    except Exception as exc:  # PIL raises many types on hostile files; none may end the load
        raise _Skip(f"not a readable image ({failure_line(exc)})") from None
    suffix = os.path.splitext(file.path)[1]
    if image.format not in FORMATS[suffix.lower()]:
        image.close()
        raise _Skip(f"a {image.format} file named {suffix} (placeholder?)")
    return image


WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # 16-bit (or 32-bit integer) grey levels


def _to_rgb(image):
    """`image` as 8-bit RGB. PIL's convert("RGB") clips wide grey levels (16-bit PNG, TIFF) at
    255, which turns nearly every pixel white; they are scaled to 0..255 first (65535 -> 255)."""
    if image.mode in WIDE_MODES:
        levels = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.rint(levels / 257.0), 0, 255).astype(np.uint8), "L")
    return image.convert("RGB")


def _probe(file):
    """The image's (width, height), or the reason it cannot be used."""
    try:
        with _open(file) as image:
            return image.size, None
    except _Skip as skip:
        return None, str(skip)


def _decode_into(out, file, size):
    """Decode `file` as RGB resized to `size` (w, h) into `out`; None, or the failure reason."""
    try:
        with _open(file) as image:
            image.draft("RGB", size)  # JPEG: decode at a reduced scale when that suffices
            image = image if image.mode == "RGB" else _to_rgb(image)
            if image.size != size:
                image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
            out[...] = np.asarray(image)
        return None
    except _Skip as skip:
        return str(skip)
    except Exception as exc:  # truncated or corrupt data found while decoding
        return f"cannot decode ({failure_line(exc)})"


def _parallel(function, items, n_threads):
    """[function(item)] computed by `n_threads` threads (PIL releases the GIL while it decodes)."""
    if n_threads <= 1 or len(items) < 2:
        return [function(item) for item in items]
    step = -(-len(items) // (4 * n_threads))  # a few chunks per thread: little overhead, balanced
    with ThreadPoolExecutor(n_threads) as pool:
        chunks = pool.map(lambda i: [function(item) for item in items[i:i + step]], range(0, len(items), step))
        return [result for chunk in chunks for result in chunk]


def _target_size(sizes, image_size):
    if image_size is not None:
        return (int(image_size), int(image_size))
    width, height = Counter(sizes).most_common(1)[0][0]
    scale = min(1.0, MAX_DEFAULT_SIDE / max(width, height))
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def _decode_all(root, files, image_size, n_threads):
    # One thread per core: decoding holds the GIL for part of each image (PIL parses headers
    # in Python), so more threads than cores only contend.
    threads = n_threads or min(8, os.cpu_count() or 1)
    skipped = []
    if image_size is None:  # the size depends on every image's: read their headers first
        probes = _parallel(_probe, files, threads)
        skipped = [(_shown(f.path), reason) for f, (_, reason) in zip(files, probes) if reason]
        files = [f for f, (size, _) in zip(files, probes) if size is not None]
        sizes = [size for size, _ in probes if size is not None]
        size = _target_size(sizes, None) if sizes else (1, 1)
    else:
        size = _target_size(None, image_size)
    out = np.empty((len(files), size[1], size[0], 3), np.uint8)
    reasons = _parallel(lambda i: _decode_into(out[i], files[i], size), range(len(files)), threads)
    ok = np.array([reason is None for reason in reasons], dtype=bool)
    skipped += [(_shown(f.path), reason) for f, reason in zip(files, reasons) if reason is not None]
    kept = [f for f, good in zip(files, ok) if good]
    split = None if not files or files[0].split is None else np.array([f.split for f in kept], dtype=str)
    return FolderImages(
        images=out if ok.all() else out[ok],
        labels=np.array([f.label for f in kept], dtype=str),
        paths=np.array([f.relative for f in kept], dtype=str),
        split=split, skipped=skipped,
    )


EMPTY_CLASS = "empty class folder: no image files, so this class is not in the dataset"


def _nothing_usable(folder, root):
    files = [(path, reason) for path, reason in folder.skipped if reason != EMPTY_CLASS]
    if files:
        path, reason = files[0]
        return (f"image folder {str(root)!r}: none of its {len(files)} image file(s) can be "
                f"used (first: {path}: {reason})")
    loose = sum(1 for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    found = f"; its {loose} image file(s) at the top level belong in class folders" if loose else ""
    return (f"image folder {str(root)!r} has no images in class folders{found}: lay it out as "
            f"{root}/<class>/<images>, or train/<class>/ and test/<class>/")


def _check_same_classes(folder, root):
    train = set(folder.labels[folder.split == "train"].tolist())
    test = set(folder.labels[folder.split == "test"].tolist())
    if train == test:
        return
    held = folder.held_out
    missing = [f"{side}/ has no images of {', '.join(map(repr, sorted(classes)))}"
               for side, classes in (("train", test - train), (held, train - test)) if classes]
    raise DatasetError(
        f"image folder {str(root)!r}: train/ and {held}/ have different classes: {'; '.join(missing)}. "
        f"Each class needs images on both sides: add the missing class folders (with readable "
        f"images), or remove those classes from the other side."
    )


# -- the cache ---------------------------------------------------------------------------------
def _cache_slot(cache_dir, root, image_size):
    """The .npz file for (folder, requested size), or None when caching is off."""
    if cache_dir is None or cache_dir is False:
        return None
    directory = default_cache_dir() / "folders" if cache_dir is True else Path(cache_dir)
    name = json.dumps([str(root.resolve()), image_size, CACHE_VERSION])
    return directory / f"{hashlib.blake2b(name.encode(), digest_size=16).hexdigest()}.npz"


def _content_hash(file):
    """blake2b of the file's bytes (hex), or why it cannot be read: the cache key's view of
    the file (an image file is small: it is read whole)."""
    if file.error:
        return file.error
    try:
        with open(file.path, "rb") as handle:
            return hashlib.blake2b(handle.read(), digest_size=16).hexdigest()
    except OSError as exc:
        return f"cannot read ({exc.strerror or type(exc).__name__})"


def _cache_key(root, files, image_size):
    """The decoded cache's key: the folder, the size asked for and every file's content.

    One thread: CIFAR-10's 60,000 files of about 1 KB hash in 0.64 s when the OS has them
    cached (the case of every rerun) and 4.9 s from a cold disk; threads cut the cold case to
    3-4 s but slow the warm one 1.3-3x, since hashlib keeps the GIL for data this small
    (benchmarks/content_fingerprint.py)."""
    hashes = [_content_hash(file) for file in files]
    listing = sorted((f.relative, f.size, h) for f, h in zip(files, hashes))
    described = json.dumps([CACHE_VERSION, str(root.resolve()), image_size, listing])
    return hashlib.blake2b(described.encode(), digest_size=16).hexdigest()


def _read_cache(slot, key, root):
    if slot is None:
        return None
    try:
        with np.load(slot, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            return FolderImages(
                images=data["images"], labels=data["labels"], paths=data["paths"],
                split=data["split"] if "split" in data.files else None,
                skipped=[(f"{_shown(root)}/{p}", str(r)) for p, r in zip(data["skipped_paths"], data["skipped_reasons"])],
                from_cache=True,
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # absent or damaged
        return None


def _write_cache(slot, key, folder, root):
    if slot is None:
        return
    arrays = {
        "key": np.array(key), "images": folder.images, "labels": folder.labels, "paths": folder.paths,
        "skipped_paths": np.array([Path(p).relative_to(_shown(root)).as_posix() for p, _ in folder.skipped], dtype=str),
        "skipped_reasons": np.array([r for _, r in folder.skipped], dtype=str),
    }
    if folder.split is not None:
        arrays["split"] = folder.split
    try:
        slot.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(slot, lambda f: np.savez(f, **arrays))
    except OSError:  # a cache that cannot be written costs speed, never results
        pass
