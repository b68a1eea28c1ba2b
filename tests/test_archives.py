"""The archive readers on tiny archives built here in the original formats, and on bad ones."""

import gzip
import io
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest

from benchmark.data.archives import (ArchiveError, iter_tar_members, open_tar, read_cifar10,
                                read_cifar100, read_idx, read_mnist_dir, read_mnist_npz,
                                safe_pickle_load)
from benchmark.data import DatasetError


class _Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 byte strings (BINSTRING), as the original CIFAR batches
    (pickled by Python 2) hold them; the stdlib pickler has no such mode, so this overrides the
    pure-Python pickler's dispatch for the two types."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_string(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = dispatch[bytes] = _save_string


def dump(obj, style):
    """Pickle bytes: "py2" as Python 2 with numpy 1 wrote CIFAR, or a Python 3 protocol (2 or 5)."""
    if style != "py2":
        return pickle.dumps(obj, protocol=style)
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    # numpy 1 named its array reconstructor numpy.core.multiarray._reconstruct.
    return buffer.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def make_tar(path, members, mode="w:gz"):
    """A tar archive of {name: bytes, or a TarInfo for special entries}."""
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            if isinstance(data, tarfile.TarInfo):
                tar.addfile(data)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def cifar_rows(rng, n):
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def as_images(rows):
    """The expected (n, 32, 32, 3) images, pixel by pixel from the documented row layout."""
    images = np.empty((len(rows), 32, 32, 3), np.uint8)
    for i, row in enumerate(rows):
        for channel in range(3):
            for y in range(32):
                images[i, y, :, channel] = row[channel * 1024 + y * 32: channel * 1024 + y * 32 + 32]
    return images


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar10_members(rng, style=2, keys=bytes, n_train_batches=5):
    """{member name: pickle bytes} of a CIFAR-10 python archive with 10 images per batch."""
    k = (lambda s: s.encode()) if keys is bytes else str
    top = "cifar-10-batches-py/"
    batches = {f"{top}data_batch_{i}": (cifar_rows(rng, 10), rng.integers(0, 10, 10).tolist())
               for i in range(1, n_train_batches + 1)}
    batches[top + "test_batch"] = (cifar_rows(rng, 10), rng.integers(0, 10, 10).tolist())
    members = {name: dump({k("batch_label"): k(name), k("data"): rows, k("labels"): labels,
                           k("filenames"): [k(f"{i}.png") for i in range(10)]}, style)
               for name, (rows, labels) in batches.items()}
    members[top + "batches.meta"] = dump({k("label_names"): [k(n) for n in CIFAR10_NAMES],
                                          k("num_cases_per_batch"): 10, k("num_vis"): 3072}, style)
    return members, batches


@pytest.mark.parametrize("style", ["py2", 2, 5])
def test_cifar10_round_trip(tmp_path, rng, style):
    members, batches = cifar10_members(rng, style)
    data = read_cifar10(make_tar(tmp_path / "cifar-10-python.tar.gz", members))
    train = [batches[f"cifar-10-batches-py/data_batch_{i}"] for i in range(1, 6)]
    rows, labels = batches["cifar-10-batches-py/test_batch"]
    assert data.train_images.dtype == np.uint8 and data.train_images.shape == (50, 32, 32, 3)
    np.testing.assert_array_equal(data.train_images, as_images(np.concatenate([r for r, _ in train])))
    np.testing.assert_array_equal(data.train_labels, sum((y for _, y in train), []))
    np.testing.assert_array_equal(data.test_images, as_images(rows))
    np.testing.assert_array_equal(data.test_labels, labels)
    assert data.label_names == CIFAR10_NAMES and data.test_labels.dtype == np.int64


def test_cifar10_str_keys_and_dot_slash_member_names(tmp_path, rng):
    members, batches = cifar10_members(rng, 5, keys=str)
    data = read_cifar10(make_tar(tmp_path / "c.tar.gz", {"./" + k: v for k, v in members.items()}))
    np.testing.assert_array_equal(data.test_images, as_images(batches["cifar-10-batches-py/test_batch"][0]))


@pytest.mark.parametrize("style", ["py2", 5])
def test_cifar100_round_trip(tmp_path, rng, style):
    k = str.encode
    fine_names, coarse_names = [f"fine{i}" for i in range(100)], [f"coarse{i}" for i in range(20)]
    splits = {split: (cifar_rows(rng, n), rng.integers(0, 100, n).tolist(), rng.integers(0, 20, n).tolist())
              for split, n in (("train", 12), ("test", 7))}
    members = {f"cifar-100-python/{split}": dump({k("data"): rows, k("fine_labels"): fine,
                                                 k("coarse_labels"): coarse}, style)
               for split, (rows, fine, coarse) in splits.items()}
    members["cifar-100-python/meta"] = dump({k("fine_label_names"): [k(n) for n in fine_names],
                                             k("coarse_label_names"): [k(n) for n in coarse_names]}, style)
    data = read_cifar100(make_tar(tmp_path / "cifar-100-python.tar.gz", members))
    for split in ("train", "test"):
        rows, fine, coarse = splits[split]
        np.testing.assert_array_equal(getattr(data, f"{split}_images"), as_images(rows))
        np.testing.assert_array_equal(getattr(data, f"{split}_labels"), fine)
        np.testing.assert_array_equal(getattr(data, f"{split}_fine"), fine)
        np.testing.assert_array_equal(getattr(data, f"{split}_coarse"), coarse)
    assert data.fine_names == data.label_names == fine_names and data.coarse_names == coarse_names


def assert_refused(path, reader, *words):
    with pytest.raises(ArchiveError) as info:
        reader(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message, message
    for word in words:
        assert word in message, message
    assert isinstance(info.value, DatasetError)
    return message


def test_truncated_tar_gz(tmp_path, rng):
    path = make_tar(tmp_path / "cifar-10-python.tar.gz", cifar10_members(rng)[0])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_refused(path, read_cifar10, "truncated or corrupt", "download it again")


def test_not_an_archive_and_missing_file(tmp_path):
    garbage = tmp_path / "cifar-10-python.tar.gz"
    garbage.write_bytes(b"<html>not found</html>" * 50)
    assert_refused(garbage, read_cifar10, "truncated or corrupt")
    assert_refused(tmp_path / "absent.tar.gz", read_cifar10, "does not exist")


def special(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize("entry, reason", [
    (special("cifar-10-batches-py/../../evil", tarfile.DIRTYPE), "'..' component"),
    ("../evil", "'..' component"),
    ("/tmp/evil", "absolute path"),
    (special("cifar-10-batches-py/link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
    (special("cifar-10-batches-py/hard", tarfile.LNKTYPE, "/etc/passwd"), "hard link"),
    (special("cifar-10-batches-py/dev", tarfile.CHRTYPE), "device"),
])
def test_path_traversal_entry_refuses_whole_archive(tmp_path, rng, entry, reason):
    members, _ = cifar10_members(rng)  # a complete, readable archive...
    name = entry if isinstance(entry, str) else entry.name
    members[name] = b"evil" if isinstance(entry, str) else entry  # ...plus one bad entry at its end
    path = make_tar(tmp_path / "cifar-10-python.tar.gz", members)
    message = assert_refused(path, read_cifar10, "path-traversal entry", repr(name), reason)
    assert "refusing the whole archive" in message
    assert_refused(path, open_tar)
    assert not (tmp_path / "evil").exists()


def test_missing_member(tmp_path, rng):
    members, _ = cifar10_members(rng, n_train_batches=4)
    path = make_tar(tmp_path / "cifar-10-python.tar.gz", members)
    assert_refused(path, read_cifar10, "'cifar-10-batches-py/data_batch_5'")


def test_iter_tar_members_reads_in_memory(tmp_path):
    path = make_tar(tmp_path / "plain.tar", {"b": b"second", "a/x": b"first"}, mode="w")
    assert list(iter_tar_members(path, ["a/x", "b"])) == [("b", b"second"), ("a/x", b"first")]
    assert sorted(os.listdir(tmp_path)) == ["plain.tar"]


class _Evil:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("style", [2, 5])
def test_pickle_calling_os_system_is_refused(tmp_path, rng, style):
    marker = tmp_path / "pwned"
    members, _ = cifar10_members(rng)
    members["cifar-10-batches-py/data_batch_3"] = dump(
        {b"data": _Evil(f"echo pwned > {marker}"), b"labels": []}, style)
    path = make_tar(tmp_path / "cifar-10-python.tar.gz", members)
    message = assert_refused(path, read_cifar10, "forbidden callable", f"{os.system.__module__}.system",
                             "may be malicious", "data_batch_3")
    assert not marker.exists(), message


@pytest.mark.parametrize("payload, what", [
    (pickle.dumps((eval, ("1",))), "builtins.eval"),
    (pickle.dumps(np.load, protocol=2), "numpy.load"),
    # _codecs.encode is allowed only as the latin1 encoding that Python 3 protocol-2 pickles use
    (b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x04\x00\x00\x00zip2\x86R.", "_codecs.encode"),
])
def test_safe_pickle_load_refuses_other_callables(payload, what):
    with pytest.raises(ArchiveError) as info:
        safe_pickle_load(io.BytesIO(payload), "'source.pkl'")
    message = str(info.value)
    assert message.startswith("'source.pkl' is a pickle") and f"forbidden callable {what}" in message


def test_safe_pickle_load_loads_numpy_and_plain_data():
    obj = {"a": np.arange(6, dtype=np.uint8).reshape(2, 3), "b": [1, 2.5, "s", b"x", None, (True,)],
           "c": np.int64(7)}
    for protocol in (2, 5):
        out = safe_pickle_load(io.BytesIO(pickle.dumps(obj, protocol)), "x")
        np.testing.assert_array_equal(out["a"], obj["a"])
        assert out["b"] == obj["b"] and out["c"] == 7
    with pytest.raises(ArchiveError, match="'t.pkl' is truncated or corrupt"):
        safe_pickle_load(io.BytesIO(pickle.dumps(obj)[:50]), "'t.pkl'")


def idx_bytes(array, dtype_code=0x08):
    return struct.pack(">HBB", 0, dtype_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) \
        + array.astype(np.uint8).tobytes()


def write_mnist(directory, rng, gz=True):
    directory.mkdir(exist_ok=True)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 6, dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 4, dtype=np.uint8)}
    for name, array in arrays.items():
        if gz:
            (directory / (name + ".gz")).write_bytes(gzip.compress(idx_bytes(array)))
        else:
            (directory / name).write_bytes(idx_bytes(array))
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_dir_round_trip(tmp_path, rng, gz):
    arrays = write_mnist(tmp_path / "mnist", rng, gz)
    (train_x, train_y), (test_x, test_y) = read_mnist_dir(tmp_path / "mnist")
    np.testing.assert_array_equal(train_x, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(train_y, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(test_x, arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(test_y, arrays["t10k-labels-idx1-ubyte"])
    assert train_x.dtype == np.uint8 and train_x.shape == (6, 28, 28) and train_y.dtype == np.int64


def test_idx_errors(tmp_path, rng):
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    raw = tmp_path / "train-images-idx3-ubyte"
    raw.write_bytes(idx_bytes(images)[:-5])
    assert_refused(raw, read_idx, "truncated or corrupt", "2347 bytes of data", "2352")
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(idx_bytes(images))[:-100])
    assert_refused(gz, read_idx, "truncated or corrupt")
    raw.write_bytes(idx_bytes(images, dtype_code=0x0D))
    assert_refused(raw, read_idx, "dtype code 0x0d")
    raw.write_bytes(b"PK\x03\x04" + idx_bytes(images))
    assert_refused(raw, read_idx, "not an MNIST idx file", "0x504b0304")
    raw.write_bytes(b"\x00\x00")
    assert_refused(raw, read_idx, "truncated or corrupt")


def test_mnist_dir_missing_file_and_mismatched_lengths(tmp_path, rng):
    write_mnist(tmp_path / "mnist", rng)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert_refused(tmp_path / "mnist", read_mnist_dir, "t10k-labels-idx1-ubyte.gz")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros(5, np.uint8))))
    assert_refused(tmp_path / "mnist", read_mnist_dir, "test labels for 4 test images")


def test_mnist_npz(tmp_path, rng):
    arrays = {"x_train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, 5, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, 2, dtype=np.uint8)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    (train_x, train_y), (test_x, test_y) = read_mnist_npz(tmp_path / "mnist.npz")
    for got, key in ((train_x, "x_train"), (train_y, "y_train"), (test_x, "x_test"), (test_y, "y_test")):
        np.testing.assert_array_equal(got, arrays[key])

    np.savez(tmp_path / "short.npz", x_train=arrays["x_train"], y_train=arrays["y_train"])
    assert_refused(tmp_path / "short.npz", read_mnist_npz, "x_test, y_test")
    np.savez(tmp_path / "objects.npz", **{**arrays, "y_test": np.array([_Evil("true")], dtype=object)})
    assert_refused(tmp_path / "objects.npz", read_mnist_npz, "pickled Python objects")
    np.save(tmp_path / "single.npy", arrays["x_train"])
    assert_refused(tmp_path / "single.npy", read_mnist_npz, "single .npy array")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "mnist.npz").read_bytes()[:3000])
    assert_refused(tmp_path / "cut.npz", read_mnist_npz, "truncated or corrupt")
