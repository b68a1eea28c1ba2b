"""Safe readers for the original archives of CIFAR-10, CIFAR-100, MNIST and Fashion-MNIST.

The files come from the network, so they are treated as hostile until proven otherwise:

- tar archives are read in memory only (nothing is ever written to disk), and an archive with any
  path-traversal entry (absolute name, `..` component, link or device) is refused as a whole;
- CIFAR's pickles are loaded by an unpickler that can build numpy arrays, dicts, lists, strings
  and numbers and call nothing else, so a crafted pickle cannot run code;
- MNIST's idx files are parsed by hand (the format is a 4-byte magic, the dimensions and the raw
  bytes; numpy has no reader for it) and Keras' mnist.npz is loaded with allow_pickle=False.

Every failure raises ArchiveError, whose one-line message names the file, what is wrong with it
and what to do about it.
"""

import gzip
import io
import pickle
import posixpath
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from benchmark.data.dataset import DatasetError

CIFAR_ORIGIN = "https://www.cs.toronto.edu/~kriz/"  # where the CIFAR archives are published
CIFAR_URL = CIFAR_ORIGIN + "cifar.html"  # their homepage
REDOWNLOAD = "delete it and download it again"
# What a truncated or damaged gzip / tar / zip stream raises (gzip.BadGzipFile is an OSError,
# tarfile.ReadError a TarError).
_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError)


class ArchiveError(DatasetError):
    """A dataset archive that is missing, truncated, corrupt or unsafe; the message says what to do."""


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def _corrupt(source, exc, fix=REDOWNLOAD):
    return ArchiveError(f"{source} is truncated or corrupt ({_one_line(exc)}); {fix}")


def _check_file(path):
    path = Path(path)
    if not path.is_file():
        state = "is not a file" if path.exists() else "does not exist"
        raise ArchiveError(f"{str(path)!r} {state}; download the dataset archive to that path")
    return path


# --- tar ---------------------------------------------------------------------------------------

def _unsafe_reason(member):
    """Why `member` could write outside a destination if extracted, or None when it is harmless."""
    name = member.name
    # PureWindowsPath splits on both '/' and '\\' and sees drive letters, so it catches 'C:x',
    # '\\\\server\\x' and 'a\\..\\b' as well as the POSIX forms.
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).anchor:
        return "absolute path"
    if ".." in PureWindowsPath(name).parts:
        return "'..' component"
    if member.issym():
        return f"symbolic link to {member.linkname!r}"
    if member.islnk():
        return f"hard link to {member.linkname!r}"
    if not (member.isfile() or member.isdir()):
        return "device, FIFO or other special file"
    return None


def open_tar(path):
    """Open a (possibly gzip/bz2/xz-compressed) tar archive after checking every member.

    Returns the open tarfile.TarFile (close it, or use it in a `with`); read members with
    `extractfile`, never `extract`. Raises ArchiveError when the archive is missing, truncated,
    corrupt, or holds any path-traversal entry - then the whole archive is refused.

    Why not `tarfile.data_filter`: it is a filter for `extract`/`extractall`, deciding what may be
    written under a destination directory; we never extract, and we want to refuse a tampered
    archive outright rather than extract what the filter lets through (it also allows links that
    stay inside the destination, and is missing from Python 3.10 before 3.10.12).
    """
    path = _check_file(path)
    try:
        tar = tarfile.open(path, "r:*")
    except _CORRUPT as exc:  # tarfile's message lists every compression it tried; keep it short
        raise ArchiveError(f"{str(path)!r} is not a tar archive (plain, gzip, bz2 or xz) or is "
                           f"truncated or corrupt; {REDOWNLOAD}") from exc
    try:
        members = tar.getmembers()  # reads every header, so truncation shows up here
        for member in members:
            reason = _unsafe_reason(member)
            if reason:
                raise ArchiveError(
                    f"{str(path)!r} contains a path-traversal entry {member.name!r} ({reason}); "
                    f"refusing the whole archive - {REDOWNLOAD} from the official source"
                )
    except BaseException as exc:
        tar.close()
        if isinstance(exc, _CORRUPT):
            raise _corrupt(repr(str(path)), exc) from exc
        raise
    return tar


def iter_tar_members(path, names):
    """Yield (name, bytes) for each regular-file member in `names`, in archive order.

    Names are compared after normalisation (a leading './' is ignored) and yielded as given.
    Every member is checked (see `open_tar`) and every name is confirmed present before the first
    one is yielded.
    """
    with open_tar(path) as tar:
        found = {posixpath.normpath(m.name): m for m in tar.getmembers() if m.isfile()}
        for name in names:
            if posixpath.normpath(name) not in found:
                raise ArchiveError(
                    f"{str(path)!r} has no member {name!r}; it is not the expected archive or is "
                    f"incomplete - {REDOWNLOAD}"
                )
        # Archive order: reading a gzip stream backwards means decompressing it again from the start.
        wanted = sorted(((found[posixpath.normpath(n)], n) for n in names), key=lambda m: m[0].offset)
        for member, name in wanted:
            try:
                data = tar.extractfile(member).read()
            except _CORRUPT as exc:
                raise _corrupt(f"{str(path)!r} member {member.name!r}", exc) from exc
            if len(data) != member.size:
                raise _corrupt(f"{str(path)!r} member {member.name!r}",
                               f"{len(data)} of {member.size} bytes")
            yield name, data


# --- pickle ------------------------------------------------------------------------------------

# The callables a pickled numpy array may name, in numpy 1 (`numpy.core`) and numpy 2
# (`numpy._core`) spelling, checked with pickletools on uint8 arrays, scalars and dicts:
# protocol 2 uses _reconstruct + ndarray + dtype (and scalar for numpy scalars); protocol 5 uses
# _frombuffer + dtype. None of them can do more than build an array from the bytes given.
_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype")} | {
    (f"numpy.{core}.{module}", name)
    for core in ("core", "_core")
    for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                         ("numeric", "_frombuffer"))
}


class _SafeUnpickler(pickle.Unpickler):
    """An Unpickler whose find_class resolves only the numpy names above (the stdlib has no
    allow-list option, so this is the documented way: override find_class)."""

    def __init__(self, fileobj, source):
        super().__init__(fileobj, encoding="bytes")  # Python 2 str -> bytes, as CIFAR needs
        self.source = source

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):
            # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(text, "latin1").
            # Other codecs (zlib, bz2, base64...) are refused: no decompression bombs.
            def latin1_encode(text, encoding="latin1"):
                if encoding not in ("latin1", "latin-1"):
                    raise self._forbidden(f"_codecs.encode(..., {encoding!r})")
                return text.encode("latin1")

            return latin1_encode
        raise self._forbidden(f"{module}.{name}")

    def _forbidden(self, what):
        return ArchiveError(
            f"{self.source} is a pickle that references a forbidden callable {what} and may be "
            f"malicious; refused without running it - {REDOWNLOAD} from the official source"
        )


def safe_pickle_load(fileobj, source_name):
    """Unpickle `fileobj` allowing only numpy arrays, dicts, lists, tuples, str, bytes and numbers.

    `source_name` names the file in error messages. Strings from Python 2 pickles load as bytes
    (encoding="bytes"). Raises ArchiveError for a forbidden callable or a damaged pickle.
    """
    try:
        return _SafeUnpickler(fileobj, source_name).load()
    except ArchiveError:
        raise
    except Exception as exc:  # UnpicklingError, EOFError, and whatever a bad REDUCE argument raises
        raise _corrupt(source_name, exc) from exc


# --- CIFAR -------------------------------------------------------------------------------------

@dataclass
class CifarArrays:
    train_images: np.ndarray  # (n, 32, 32, 3) uint8
    train_labels: np.ndarray  # (n,) int64, indices into label_names
    test_images: np.ndarray
    test_labels: np.ndarray
    label_names: list  # [str]


@dataclass
class Cifar100Arrays(CifarArrays):
    """CIFAR-100: `*_labels` / `label_names` are the 100 fine classes (also readable as `*_fine` /
    `fine_names`), `*_coarse` / `coarse_names` the 20 superclasses."""

    train_coarse: np.ndarray = None
    test_coarse: np.ndarray = None
    coarse_names: list = None
    train_fine = property(lambda self: self.train_labels)
    test_fine = property(lambda self: self.test_labels)
    fine_names = property(lambda self: self.label_names)


class _Cifar:
    """Reads the pickled members of one CIFAR archive, with the messages that name them."""

    def __init__(self, path, title, members):
        self.path, self.title = str(path), title
        self.fix = f"is it {title}? {REDOWNLOAD} from {CIFAR_URL}"
        self.batches = {name: safe_pickle_load(io.BytesIO(data), self.where(name))
                        for name, data in iter_tar_members(path, members)}

    def where(self, member):
        return f"{self.path!r} member {member!r}"

    def fail(self, member, problem):
        return ArchiveError(f"{self.where(member)} {problem}; {self.fix}")

    def field(self, member, key):
        batch = self.batches[member]
        if not isinstance(batch, dict):
            raise self.fail(member, f"holds a {type(batch).__name__}, not a dict")
        for k in (key.encode(), key):  # the original Python 2 pickles give bytes keys
            if k in batch:
                return batch[k]
        raise self.fail(member, f"has no {key!r} entry")

    def names(self, member, key):
        names = self.field(member, key)
        if not isinstance(names, list) or not names or not all(isinstance(n, (bytes, str)) for n in names):
            raise self.fail(member, f"has a {key!r} entry that is not a list of names")
        return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]

    def split(self, members, label_keys, n_classes):
        """(images (n, 32, 32, 3) uint8, [labels (n,) int64 per key]) of the batches `members`."""
        images, labels = [], [[] for _ in label_keys]
        for member in members:
            data = np.asarray(self.field(member, "data"))
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
                raise self.fail(member, f"has data of shape {data.shape} {data.dtype}, "
                                        "not (n, 3072) uint8")
            # Each row is the red plane, then green, then blue, each 32x32 row-major.
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            for key, n, out in zip(label_keys, n_classes, labels):
                y = np.asarray(self.field(member, key))
                if y.shape != (len(data),) or not np.issubdtype(y.dtype, np.integer):
                    raise self.fail(member, f"has {y.shape} {y.dtype} {key!r} for {len(data)} images")
                if len(y) and not (0 <= y.min() and y.max() < n):
                    raise self.fail(member, f"has {key!r} outside 0..{n - 1}")
                out.append(y.astype(np.int64))
        return np.ascontiguousarray(np.concatenate(images)), [np.concatenate(y) for y in labels]


def read_cifar10(path):
    """CifarArrays of cifar-10-python.tar.gz (the "python version" from the CIFAR site)."""
    top = "cifar-10-batches-py/"
    train = [f"{top}data_batch_{i}" for i in range(1, 6)]
    test, meta = top + "test_batch", top + "batches.meta"
    cifar = _Cifar(path, "cifar-10-python.tar.gz", train + [test, meta])
    names = cifar.names(meta, "label_names")
    train_images, (train_labels,) = cifar.split(train, ["labels"], [len(names)])
    test_images, (test_labels,) = cifar.split([test], ["labels"], [len(names)])
    return CifarArrays(train_images, train_labels, test_images, test_labels, names)


def read_cifar100(path):
    """Cifar100Arrays of cifar-100-python.tar.gz (fine and coarse labels and names)."""
    top = "cifar-100-python/"
    cifar = _Cifar(path, "cifar-100-python.tar.gz", [top + "train", top + "test", top + "meta"])
    fine, coarse = (cifar.names(top + "meta", f"{k}_label_names") for k in ("fine", "coarse"))
    keys, sizes = ["fine_labels", "coarse_labels"], [len(fine), len(coarse)]
    train_images, (train_fine, train_coarse) = cifar.split([top + "train"], keys, sizes)
    test_images, (test_fine, test_coarse) = cifar.split([top + "test"], keys, sizes)
    return Cifar100Arrays(train_images, train_fine, test_images, test_fine, fine,
                          train_coarse, test_coarse, coarse)


# --- MNIST / Fashion-MNIST ---------------------------------------------------------------------

IDX_UBYTE = 0x08  # the idx dtype code for unsigned bytes, the only one MNIST uses
MNIST_FILES = {  # role -> idx file name (published gzipped: MNIST_ARCHIVES)
    "train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_ARCHIVES = tuple(name + ".gz" for name in MNIST_FILES.values())  # as published


def find_idx_file(directory, name):
    """The file in `directory` holding the idx file `name`, None when there is none: as published
    (gzipped), gunzipped, or unzipped by tools that write 'train-images.idx3-ubyte'."""
    candidates = [name, name + ".gz", name.replace("-idx", ".idx")]
    return next((Path(directory) / c for c in candidates if (Path(directory) / c).is_file()), None)


def has_mnist_files(directory):
    """Whether `directory` holds all four MNIST-format idx files, in any form read_mnist_dir reads."""
    return all(find_idx_file(directory, name) is not None for name in MNIST_FILES.values())


def read_idx(path):
    """The uint8 array in an idx file (gzipped or not): (n, rows, cols) images or (n,) labels.

    Hand-written because numpy has no idx reader: big-endian magic 0x0000TTNN (TT dtype code,
    NN number of dimensions), NN big-endian uint32 dimensions, then the values row-major.
    """
    path = _check_file(path)
    source = repr(str(path))
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
            raw = gzip.decompress(raw)
    except _CORRUPT as exc:
        raise _corrupt(source, exc) from exc
    if len(raw) < 4:
        raise _corrupt(source, f"{len(raw)} bytes, no idx header")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or ndim not in (1, 3):
        raise ArchiveError(f"{source} is not an MNIST idx file (magic 0x{raw[:4].hex()}, expected "
                           "0x00000801 labels or 0x00000803 images); is it an MNIST file?")
    if dtype_code != IDX_UBYTE:
        raise ArchiveError(f"{source} stores idx dtype code 0x{dtype_code:02x}, not 0x08 (uint8) "
                           "as MNIST does; is it an MNIST file?")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise _corrupt(source, f"{len(raw)} bytes, shorter than its {header}-byte header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != expected:
        raise _corrupt(source, f"{len(raw) - header} bytes of data, its header {shape} says {expected}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape).copy()  # writable


def _mnist(source, arrays):
    """((train_images, train_labels), (test_images, test_labels)) after checking shapes."""
    out = []
    for side in ("train", "test"):
        x, y = arrays[f"{side}_images"], arrays[f"{side}_labels"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ArchiveError(f"{source} has {side} images of shape {x.shape} {x.dtype}, not "
                               f"(n, 28, 28) uint8; {REDOWNLOAD}")
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
            raise ArchiveError(f"{source} has {y.shape} {y.dtype} {side} labels for {len(x)} "
                               f"{side} images; {REDOWNLOAD}")
        out.append((x, y.astype(np.int64)))
    return tuple(out)


def read_mnist_dir(directory):
    """((train_images, train_labels), (test_images, test_labels)) - Keras' load_data() layout,
    images (n, 28, 28) uint8, labels int64 - from the four MNIST/Fashion-MNIST idx files."""
    directory = Path(directory)
    arrays = {}
    for role, name in MNIST_FILES.items():
        found = find_idx_file(directory, name)
        if found is None:
            raise ArchiveError(f"{str(directory)!r} has no {name}.gz (nor {name}); download the "
                               "four idx files (train/t10k images/labels) into it")
        arrays[role] = read_idx(found)
    return _mnist(repr(str(directory)), arrays)


def read_mnist_npz(path):
    """Like read_mnist_dir, from Keras' mnist.npz (x_train, y_train, x_test, y_test)."""
    path = _check_file(path)
    source = repr(str(path))
    keys = {"train_images": "x_train", "train_labels": "y_train",
            "test_images": "x_test", "test_labels": "y_test"}
    try:
        npz = np.load(path, allow_pickle=False)  # no pickles: nothing in the file can run code
        if not hasattr(npz, "files"):
            raise ArchiveError(f"{source} is a single .npy array, not an .npz archive; is it "
                               f"Keras' mnist.npz? {REDOWNLOAD}")
        with npz:
            missing = [k for k in keys.values() if k not in npz.files]
            if missing:
                raise ArchiveError(f"{source} has no {', '.join(missing)}; is it Keras' mnist.npz? "
                                   f"{REDOWNLOAD}")
            arrays = {role: npz[key] for role, key in keys.items()}
    except ArchiveError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # numpy's words for an object array or a pickle file
            raise ArchiveError(f"{source} is or holds pickled Python objects, refused as they could "
                               f"run code; is it Keras' mnist.npz? {REDOWNLOAD}") from exc
        raise _corrupt(source, exc) from exc
    except _CORRUPT as exc:
        raise _corrupt(source, exc) from exc
    return _mnist(source, arrays)
