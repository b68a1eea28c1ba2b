"""The field's datasets by name: CIFAR-10/100 (and the CIFAR-100 study's 5-class task), MNIST,
Fashion-MNIST and TrashNet.

Where a dataset comes from, tried in order:

1. a local data directory - `--data-dir`, else the `IMAGE_BENCHMARK_DATA` environment variable
   (several directories separated by the path separator), else `dir` in the `[data]` section
   of `~/.config/image-benchmark/config.ini` - holding the original archive (CIFAR python-pickle
   tar.gz, MNIST idx .gz files or Keras' mnist.npz) or an image folder named after the dataset
   (`<dir>/cifar10/{train,test}/<class>/...` or `<dir>/trashnet/<class>/...`);
2. the download cache (`~/.cache/image-benchmark/downloads`), filled by
3. the official download, from the addresses `keras.datasets` uses, with a bounded timeout.

A dataset found nowhere is reported missing with the exact file names and the directory to put
them in. Archives are read by `benchmark.data.archives` (no code execution from pickles, no
path-traversal, clear errors for truncated files).
"""

import configparser
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from features.cache import default_cache_dir

from benchmark.data.archives import CIFAR_ORIGIN, CIFAR_URL, MNIST_ARCHIVES, has_mnist_files
from benchmark.data.dataset import Dataset, DatasetError
from benchmark.errors import UsageError

ENV_DATA_DIR = "IMAGE_BENCHMARK_DATA"
ENV_OFFLINE = "IMAGE_BENCHMARK_OFFLINE"  # set to 1: never try a download
CONFIG_FILE = Path("~/.config/image-benchmark/config.ini")
DOWNLOAD_TIMEOUT = 30  # seconds without progress before a download is given up

KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot")
HERBIVORES_OMNIVORES = ("camel", "cattle", "chimpanzee", "elephant", "kangaroo")
HERBIVORES_OMNIVORES_COARSE = 11  # CIFAR-100 superclass "large omnivores and herbivores"


@dataclass(frozen=True)
class NamedDataset:
    name: str
    description: str
    classes: int
    images: str  # what the full dataset holds, for `datasets`
    image_size: str
    licence: str
    archives: tuple  # file names that hold it, looked for in each data directory
    folder: str  # image-folder name looked for in each data directory
    downloads: tuple = ()  # (file name, address) pairs; empty: no official download
    homepage: str = ""
    max_per_class: int = None  # default sample cap per class (and per split side)
    mirror_invariant: bool = True
    loader: str = ""  # name of the function below that reads it
    options: dict = field(default_factory=dict)
    download_subdir: str = ""  # sub-folder of the download cache its files go to


def _cifar(name, description, classes, archive, folder, **fields):
    """A CIFAR entry: what every CIFAR dataset shares (size, licence, homepage, download)."""
    return NamedDataset(
        name, description, classes, fields.pop("images", "50,000 train + 10,000 test"), "32x32x3",
        "CIFAR (Krizhevsky 2009): free for research", (archive,), folder,
        ((archive, CIFAR_ORIGIN + archive),), CIFAR_URL,
        **fields,
    )


CATALOG = {d.name: d for d in [
    _cifar("cifar10", "CIFAR-10: 60,000 32x32 colour photos of 10 object classes", 10,
           "cifar-10-python.tar.gz", "cifar10", max_per_class=200, loader="cifar10"),
    _cifar("cifar100", "CIFAR-100: 60,000 32x32 colour photos of 100 fine classes", 100,
           "cifar-100-python.tar.gz", "cifar100", max_per_class=30, loader="cifar100",
           options={"labels": "fine"}),
    _cifar("cifar100-coarse", "CIFAR-100 with its 20 coarse superclasses as labels", 20,
           "cifar-100-python.tar.gz", "cifar100-coarse", max_per_class=100, loader="cifar100",
           options={"labels": "coarse"}),
    _cifar("cifar100-herbivores-omnivores",
           "CIFAR-100 superclass 11, large omnivores and herbivores: camel, cattle, chimpanzee, "
           "elephant, kangaroo (the CIFAR-100 study's 5-class task)", 5,
           "cifar-100-python.tar.gz", "cifar100", images="2,500 train + 500 test",
           max_per_class=None, loader="cifar100", options={"labels": "herbivores-omnivores"}),
    NamedDataset(
        "mnist", "MNIST: 70,000 28x28 grayscale handwritten digits",
        10, "60,000 train + 10,000 test", "28x28x1", "MNIST (LeCun et al.): CC BY-SA 3.0",
        ("mnist.npz", *MNIST_ARCHIVES), "mnist", (("mnist.npz", KERAS_ORIGIN + "mnist.npz"),),
        "http://yann.lecun.com/exdb/mnist/", max_per_class=200, mirror_invariant=False,
        loader="mnist",
    ),
    NamedDataset(
        "fashion-mnist", "Fashion-MNIST: 70,000 28x28 grayscale photos of 10 clothing classes",
        10, "60,000 train + 10,000 test", "28x28x1", "Fashion-MNIST (Zalando): MIT",
        MNIST_ARCHIVES, "fashion-mnist",
        tuple((f, KERAS_ORIGIN + "fashion-mnist/" + f) for f in MNIST_ARCHIVES),
        "https://github.com/zalandoresearch/fashion-mnist", max_per_class=200, loader="mnist",
        options={"names": FASHION_NAMES}, download_subdir="fashion-mnist",
    ),
    NamedDataset(
        "trashnet", "TrashNet: 2,527 photos of garbage in 6 classes (the garbage study's data)",
        6, "2,527 (no official split)", "512x384x3 originals", "TrashNet (Thung & Yang 2016): MIT",
        (), "trashnet", (), "https://github.com/garythung/trashnet", loader="folder",
    ),
]}


# -- where to look ---------------------------------------------------------------------------
def data_dirs(explicit=None):
    """The local data directories, in the order they are searched, and where the list came from.

    `explicit` (the --data-dir option) must exist; directories named by the environment
    variable or the config file that do not exist are skipped.
    """
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_dir():
            raise UsageError(f"--data-dir {str(path)!r} is not an existing directory; "
                             "create it or point --data-dir at the folder holding the datasets")
        return [path], "--data-dir"
    if os.environ.get(ENV_DATA_DIR):
        paths = [Path(p).expanduser() for p in os.environ[ENV_DATA_DIR].split(os.pathsep) if p]
        return [p for p in paths if p.is_dir()], f"${ENV_DATA_DIR}"
    config = CONFIG_FILE.expanduser()
    if config.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read(config)
        except configparser.Error as exc:
            raise UsageError(f"cannot read {config}: {str(exc).splitlines()[0]}; fix or delete it")
        value = parser.get("data", "dir", fallback="")
        paths = [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]
        return [p for p in paths if p.is_dir()], str(config)
    return [], "no data directory configured"


def download_dir():
    return default_cache_dir() / "downloads"


def downloads_allowed():
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in ("1", "true", "yes")


@dataclass
class Availability:
    status: str  # "available" | "downloadable" | "missing"
    where: str  # the file or folder it would be read from, or the download address
    reason: str = ""  # for "missing": what was looked for and what to do


def _found_archive(spec, directory):
    names = spec.archives
    if spec.loader == "mnist":  # Keras' single npz file, or the four idx files in <folder>/
        if "mnist.npz" in names and (directory / "mnist.npz").is_file():
            return directory / "mnist.npz"
        base = directory / spec.folder
        return base if has_mnist_files(base) else None
    for name in names:
        if (directory / name).is_file():
            return directory / name
    return None


def _found_folder(spec, directory):
    folder = directory / spec.folder
    return folder if folder.is_dir() and any(p.is_dir() for p in folder.iterdir()) else None


def locate(spec, dirs):
    """The path a named dataset would be read from (archive, idx directory or image folder)."""
    for directory in [*dirs, download_dir() / spec.download_subdir]:
        found = _found_archive(spec, directory) if spec.archives else None
        if found is None:
            found = _found_folder(spec, directory)
        if found is not None:
            return found
    return None


def availability(name, dirs, dirs_origin=""):
    spec = CATALOG[name]
    found = locate(spec, dirs)
    if found is not None:
        return Availability("available", str(found))
    if spec.downloads and downloads_allowed():
        return Availability("downloadable", ", ".join(url for _, url in spec.downloads))
    return Availability("missing", "", missing_message(spec, dirs, dirs_origin))


def missing_message(spec, dirs, dirs_origin="", download_error=None):
    target = dirs[0] if dirs else download_dir()
    if spec.loader == "mnist":
        idx = f"{spec.folder}/ with {', '.join(MNIST_ARCHIVES)}"
        files = f"mnist.npz or {idx}" if "mnist.npz" in spec.archives else idx
    else:
        files = ", ".join(spec.archives)
    what = f"{files}, or " if spec.archives else ""
    looked = ", ".join(str(d) for d in [*dirs, download_dir()])
    message = (f"{spec.name} not found: put {what}an image folder {spec.folder}/<class>/... (or "
               f"{spec.folder}/{{train,test}}/<class>/...) in {target}")
    if spec.homepage:
        message += f" (get it from {spec.homepage})"
    message += f"; looked in {looked}"
    if download_error:
        message += f"; download failed: {download_error}"
    elif spec.downloads and not downloads_allowed():
        message += f"; downloads are off (${ENV_OFFLINE})"
    return message


# -- download --------------------------------------------------------------------------------
def download(spec, timeout=DOWNLOAD_TIMEOUT):
    """Fetch the dataset's files into the download cache; return the directory.

    Written with urllib rather than `keras.datasets` / `keras.utils.get_file`: those have no
    timeout (a dead network would hang the run), import TensorFlow, and Keras' CIFAR loader
    unpickles the archive with the unrestricted pickle module. The addresses are Keras'.
    """
    target = download_dir() / spec.download_subdir
    target.mkdir(parents=True, exist_ok=True)
    for filename, url in spec.downloads:
        path = target / filename
        if path.is_file():
            continue
        fd, tmp = tempfile.mkstemp(dir=target, prefix=f".{filename}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                shutil.copyfileobj(response, out, length=1 << 20)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target


# -- loading ---------------------------------------------------------------------------------
def load_named(name, *, data_dir=None, image_size=None, cache_dir=True):
    """Load a named dataset from the first source that has it; DatasetError when none does."""
    spec = CATALOG[name]
    dirs, origin = data_dirs(data_dir)
    found = locate(spec, dirs)
    if found is None:
        if not (spec.downloads and downloads_allowed()):
            raise DatasetError(missing_message(spec, dirs, origin))
        try:
            download(spec)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DatasetError(missing_message(spec, dirs, origin, f"{type(exc).__name__}: {reason}"))
        found = locate(spec, dirs)
    dataset = _LOADERS[spec.loader](spec, found, image_size=image_size, cache_dir=cache_dir)
    dataset.name = spec.name
    dataset.description = spec.description
    dataset.licence = spec.licence
    dataset.mirror_invariant = spec.mirror_invariant
    dataset.source = str(found)
    return dataset


def _from_arrays(spec, train_x, train_y, test_x, test_y, names):
    """One Dataset (train then test images) with string labels and the official split."""
    names = np.asarray([str(n) for n in names])
    images = np.concatenate([train_x, test_x])
    if images.ndim == 3:
        images = images[..., np.newaxis]
    labels = names[np.concatenate([train_y, test_y]).astype(np.int64)]
    split = np.array(["train"] * len(train_y) + ["test"] * len(test_y))
    return Dataset(spec.name, np.ascontiguousarray(images, dtype=np.uint8), labels, split=split)


def _load_folder(spec, path, image_size=None, cache_dir=True):
    from benchmark.data.image_folder import load_image_folder

    return load_image_folder(path, image_size=image_size, name=spec.name, cache_dir=cache_dir)


def _load_cifar10(spec, path, image_size=None, cache_dir=True):
    if path.is_dir():
        return _load_folder(spec, path, image_size, cache_dir)
    from benchmark.data.archives import read_cifar10

    data = read_cifar10(path)
    return _from_arrays(spec, data.train_images, data.train_labels, data.test_images,
                        data.test_labels, data.label_names)


def _load_cifar100(spec, path, image_size=None, cache_dir=True):
    which = spec.options["labels"]
    if path.is_dir():
        dataset = _load_folder(spec, path, image_size, cache_dir)
        if which == "herbivores-omnivores":
            keep = np.isin(dataset.labels, HERBIVORES_OMNIVORES)
            missing = sorted(set(HERBIVORES_OMNIVORES) - set(dataset.labels[keep]))
            if missing:
                raise DatasetError(f"{path} has no folder for {', '.join(missing)}; the "
                                   f"herbivores-omnivores task needs {', '.join(HERBIVORES_OMNIVORES)}")
            dataset = dataset.subset(np.flatnonzero(keep))
        return dataset
    from benchmark.data.archives import read_cifar100

    data = read_cifar100(path)
    if which == "coarse":
        return _from_arrays(spec, data.train_images, data.train_coarse, data.test_images,
                            data.test_coarse, data.coarse_names)
    dataset = _from_arrays(spec, data.train_images, data.train_fine, data.test_images,
                           data.test_fine, data.fine_names)
    if which == "herbivores-omnivores":
        coarse = np.concatenate([data.train_coarse, data.test_coarse])
        keep = coarse == HERBIVORES_OMNIVORES_COARSE
        dataset = dataset.subset(np.flatnonzero(keep))
        if sorted(set(dataset.labels)) != sorted(HERBIVORES_OMNIVORES):
            raise DatasetError(f"{path}: coarse class {HERBIVORES_OMNIVORES_COARSE} holds "
                               f"{sorted(set(dataset.labels))}, not {list(HERBIVORES_OMNIVORES)}; "
                               "is it the original CIFAR-100 archive?")
    return dataset


def _load_mnist(spec, path, image_size=None, cache_dir=True):
    from benchmark.data.archives import read_mnist_dir, read_mnist_npz

    if path.is_dir() and not has_mnist_files(path):
        return _load_folder(spec, path, image_size, cache_dir)
    (train_x, train_y), (test_x, test_y) = (read_mnist_dir(path) if path.is_dir()
                                            else read_mnist_npz(path))
    names = spec.options.get("names") or [str(i) for i in range(10)]
    return _from_arrays(spec, train_x, train_y, test_x, test_y, names)


_LOADERS = {"cifar10": _load_cifar10, "cifar100": _load_cifar100, "mnist": _load_mnist,
            "folder": _load_folder}
