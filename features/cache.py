"""Compute each dataset's features once, and keep them on disk for the next run.

Features are deterministic per image (see `ImageFeatures`), so a (dataset, extractor) pair has
one feature matrix, whatever the fold or the estimator. The key is the dataset's content
fingerprint plus the extractor's class, parameters and `feature_version`, and its code identity
(features.code_identity.extractor_identity: hashes of the source files of its class,
its bases and the project modules they import, and the versions of Python, NumPy, SciPy,
scikit-learn and scikit-image): different images, parameters, an edited extractor or another
scikit-image give a different key, so stale features are never served.

Written by hand rather than with `joblib.Memory`, which would hash the whole image array again
on every call and does not tell whether a call was computed or loaded; the runner reports both.
"""

import functools
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.pipeline import FeatureUnion

from .base import ImageFeatures
from .code_identity import extractor_identity, identity_digest


@dataclass
class FeatureTiming:
    """How a feature matrix was obtained: computed now, loaded from disk, or already in memory."""

    source: str  # "computed" | "disk" | "memory"
    compute_seconds: float  # what computing it once cost (stored with the cached features)


def default_cache_dir():
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get("BENCHMARK_CACHE_DIR") or os.path.join(root, "image-benchmark"))


def unwritable(directory):
    """Why no cache file can be written in `directory` (a short reason), or None when one can:
    the directory is made if missing, and a probe file written and removed in it."""
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def cache_key(extractor, fingerprint):
    described = {
        "class": f"{type(extractor).__module__}.{type(extractor).__qualname__}",
        "version": extractor.feature_version,
        "params": {k: repr(v) for k, v in sorted(extractor.cache_params().items())},
        "images": fingerprint,
        "code": identity_digest(extractor_identity(extractor)),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]


def is_cacheable(extractor):
    """True for our deterministic extractors and unions of them (with no weights)."""
    if isinstance(extractor, FeatureUnion):
        return extractor.transformer_weights is None and all(
            is_cacheable(t) for _, t in extractor.transformer_list if t not in ("drop", None)
        )
    return isinstance(extractor, ImageFeatures)


class FeatureCache:
    """In-memory and (when `directory` is given) on-disk store of feature matrices."""

    def __init__(self, directory=None):
        self.directory = Path(directory) if directory is not None else None
        self._memory = {}  # key -> (features, compute_seconds)
        self._sources = {}  # key -> how this cache first had it: "computed" | "disk"
        self._unserved = {}  # key -> source, for entries seeded and not yet asked for

    def entries(self):
        """{key: (features, compute_seconds, source)} of every matrix this cache computed or
        loaded, to hand to another process's cache (`seed`)."""
        return {key: (features, seconds, self._sources.get(key, "memory"))
                for key, (features, seconds) in self._memory.items()}

    def seed(self, entries):
        """Take the `entries()` of another process's cache. The first `transform` served from
        each reports that process's source ("computed" or "disk"); later ones "memory"."""
        for key, (features, compute_seconds, source) in entries.items():
            if key not in self._memory:
                self._memory[key] = (features, compute_seconds)
                self._unserved[key] = source

    def transform(self, extractor, images, fingerprint):
        """Features of `images` (whose content hash is `fingerprint`) and how they were had."""
        if isinstance(extractor, FeatureUnion):
            parts = [
                self.transform(t, images, fingerprint)
                for _, t in extractor.transformer_list
                if t not in ("drop", None)
            ]
            features = np.hstack([f for f, _ in parts])
            timings = [t for _, t in parts]
            sources = {t.source for t in timings}
            return features, FeatureTiming(
                source=sources.pop() if len(sources) == 1 else "mixed",
                compute_seconds=sum(t.compute_seconds for t in timings),
            )
        key = cache_key(extractor, fingerprint)
        if key in self._memory:
            features, compute_seconds = self._memory[key]
            return features, FeatureTiming(self._unserved.pop(key, "memory"), compute_seconds)
        start = time.perf_counter()
        loaded = self._load(key)
        if loaded is not None:
            features, compute_seconds = loaded
            source = "disk"
        else:
            features = extractor.transform(images)
            compute_seconds = time.perf_counter() - start
            source = "computed"
            self._save(key, features, compute_seconds)
        self._memory[key] = (features, compute_seconds)
        self._sources[key] = source
        return features, FeatureTiming(source, compute_seconds)

    def _paths(self, key):
        return self.directory / f"{key}.npy", self.directory / f"{key}.json"

    def _load(self, key):
        if self.directory is None:
            return None
        array_path, meta_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text())
            features = np.load(array_path, allow_pickle=False)
        except (OSError, ValueError):  # absent, or damaged: compute again
            return None
        if list(features.shape) != meta.get("shape"):
            return None
        return features, float(meta["compute_seconds"])

    def _save(self, key, features, compute_seconds):
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            array_path, meta_path = self._paths(key)
            # Write to a temporary file and rename: a reader never sees a half-written file.
            atomic_write(array_path, lambda f: np.save(f, features, allow_pickle=False))
            meta = {"shape": list(features.shape), "compute_seconds": compute_seconds}
            atomic_write(meta_path, lambda f: f.write(json.dumps(meta).encode()))
        except OSError:
            # A cache that cannot be written costs speed, never results.
            pass


class _PythonWrites:
    """A file that NumPy does not take for one (it is no io.BufferedWriter), so np.save writes
    it through Python's `write`, whose OSError says why (ENOSPC: the disk is full), instead of
    through C's fwrite (array.tofile), whose OSError has no errno."""

    def __init__(self, file, path):
        self._file, self.path = file, path  # path: the file it becomes

    def __getattr__(self, name):
        return getattr(self._file, name)


@functools.lru_cache(maxsize=1)
def _umask():
    """The process's umask, read once (by setting it and setting it straight back, which is
    not thread-safe, so not on every write)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, write):
    """Call `write(binary_file)` into a temporary file beside `path`, then rename it to `path`.

    The file gets the mode an ordinary `open` would give (0o666 less the umask), not
    mkstemp's private 0o600, so the results are as readable as the user's other files. An
    OSError names `path` (a failed write names no file, a failed mkstemp its temporary)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(_PythonWrites(f, path))
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):  # name the file being written, not its temporary
            exc.filename, exc.filename2 = str(path), None
        raise
