"""Named datasets: found in a data directory (archive or image folder), downloaded into the cache,
or reported missing with where to put them - built from small archives made on the fly."""

import dataclasses
import functools
import http.server
import re
import threading
import time

import numpy as np
import pytest

from benchmark.data import catalog
from benchmark.cli import main
from benchmark.data import DatasetError, load_dataset
from conftest import write_image
from test_archives import dump, make_tar, write_mnist

HERBIVORES = dict(zip((15, 19, 21, 31, 38), ("camel", "cattle", "chimpanzee", "elephant", "kangaroo")))


def cifar10_archive(directory, per_batch=20, test=20):
    """cifar-10-python.tar.gz with 5 train batches; labels cycle over the 10 classes."""
    rng = np.random.default_rng(0)
    top = "cifar-10-batches-py/"
    members, images = {}, []
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", test)]:
        rows = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        images.append(rows)
        members[top + name] = dump({b"data": rows, b"labels": [i % 10 for i in range(n)]}, "py2")
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
             b"ship", b"truck"]
    members[top + "batches.meta"] = dump({b"label_names": names}, "py2")
    directory.mkdir(parents=True, exist_ok=True)
    return make_tar(directory / "cifar-10-python.tar.gz", members), np.concatenate(images)


def cifar100_archive(directory, n_train=100, n_test=40):
    """cifar-100-python.tar.gz: fine label i % 100; coarse 11 for the five herbivore classes."""
    fine_names = [HERBIVORES.get(i, f"fine{i}").encode() for i in range(100)]
    coarse_names = [f"coarse{i}".encode() for i in range(20)]
    rng = np.random.default_rng(1)
    members = {}
    for side, n in (("train", n_train), ("test", n_test)):
        fine = [i % 100 for i in range(n)]
        coarse = [11 if f in HERBIVORES else f % 20 if f % 20 != 11 else 0 for f in fine]
        rows = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        members[f"cifar-100-python/{side}"] = dump(
            {b"data": rows, b"fine_labels": fine, b"coarse_labels": coarse}, "py2")
    members["cifar-100-python/meta"] = dump(
        {b"fine_label_names": fine_names, b"coarse_label_names": coarse_names}, "py2")
    directory.mkdir(parents=True, exist_ok=True)
    return make_tar(directory / "cifar-100-python.tar.gz", members)


def test_cifar10_from_the_original_archive(tmp_path):
    _, rows = cifar10_archive(tmp_path)
    d = load_dataset("cifar10", data_dir=tmp_path)
    assert d.images.shape == (120, 32, 32, 3) and d.images.dtype == np.uint8
    # row layout: 1024 red, 1024 green, 1024 blue values, each row-major
    assert np.array_equal(d.images[7, :, :, 1], rows[7, 1024:2048].reshape(32, 32))
    assert d.labels[:3].tolist() == ["airplane", "automobile", "bird"]
    assert (d.split == "train").sum() == 100 and (d.split == "test").sum() == 20
    assert d.split[-20:].tolist() == ["test"] * 20 and d.mirror_invariant
    assert d.source == str(tmp_path / "cifar-10-python.tar.gz") and "CIFAR" in d.licence


def test_cifar100_fine_coarse_and_herbivores_omnivores(tmp_path):
    cifar100_archive(tmp_path)
    fine = load_dataset("cifar100", data_dir=tmp_path)
    coarse = load_dataset("cifar100-coarse", data_dir=tmp_path)
    task = load_dataset("cifar100-herbivores-omnivores", data_dir=tmp_path)
    assert len(fine.classes) == 100 and len(fine.labels) == 140
    assert len(coarse.classes) == 20 and np.array_equal(coarse.images, fine.images)
    assert sorted(task.classes) == ["camel", "cattle", "chimpanzee", "elephant", "kangaroo"]
    assert len(task.labels) == 5 + 5  # each of the 5 classes once in train (100) and test (40)
    assert sorted(task.split.tolist()) == ["test"] * 5 + ["train"] * 5


@pytest.mark.parametrize("name, layout", [("mnist", "npz"), ("mnist", "idx"), ("fashion-mnist", "idx")])
def test_mnist_family(tmp_path, rng, name, layout):
    if layout == "npz":
        x, y = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), np.arange(10) % 10
        np.savez(tmp_path / "mnist.npz", x_train=x[:6], y_train=y[:6], x_test=x[6:], y_test=y[6:])
    else:
        write_mnist(tmp_path / name, rng)
    d = load_dataset(name, data_dir=tmp_path)
    assert d.images.shape == (10, 28, 28, 1) and (d.split == "test").sum() == 4
    assert d.mirror_invariant == (name == "fashion-mnist")
    if name == "fashion-mnist":
        assert set(d.labels) <= set(catalog.FASHION_NAMES)
    else:
        assert set(d.labels) <= set("0123456789")


def test_mnist_idx_files_named_with_dots_are_found(tmp_path, rng):
    """Some mirrors unzip to 'train-images.idx3-ubyte'; the reader takes those, so the catalog
    must find them too (it reported the dataset missing)."""
    arrays = write_mnist(tmp_path / "mnist", rng, gz=False)
    for name in arrays:
        (tmp_path / "mnist" / name).rename(tmp_path / "mnist" / name.replace("-idx", ".idx"))
    found = catalog.availability("mnist", [tmp_path])
    assert (found.status, found.where) == ("available", str(tmp_path / "mnist"))
    d = load_dataset("mnist", data_dir=tmp_path)
    np.testing.assert_array_equal(d.images[:6, ..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(d.labels[6:], arrays["t10k-labels-idx1-ubyte"].astype(str))


def test_image_folder_under_the_datasets_name(tmp_path, rng):
    for side, n in (("train", 3), ("test", 2)):
        for label in ("cardboard", "glass"):
            for i in range(n):
                write_image(tmp_path / "trashnet" / side / label / f"{i}.png",
                            rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    d = load_dataset("trashnet", data_dir=tmp_path)
    assert d.name == "trashnet" and len(d.labels) == 10 and (d.split == "test").sum() == 4


def test_data_dir_from_the_environment_and_the_config_file(tmp_path, monkeypatch):
    env_dir, config_dir = tmp_path / "env", tmp_path / "config"
    cifar10_archive(env_dir)
    cifar10_archive(config_dir)
    config = tmp_path / "config.ini"
    config.write_text(f"[data]\ndir = {config_dir}\n")
    monkeypatch.setattr(catalog, "CONFIG_FILE", config)
    assert load_dataset("cifar10").source.startswith(str(config_dir))
    monkeypatch.setenv(catalog.ENV_DATA_DIR, str(env_dir))  # the variable wins over the file
    assert load_dataset("cifar10").source.startswith(str(env_dir))
    assert load_dataset("cifar10", data_dir=config_dir).source.startswith(str(config_dir))


def test_missing_dataset_says_what_to_put_where(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    message = str(err.value)
    assert "cifar-10-python.tar.gz" in message and f"in {tmp_path}" in message
    assert "downloads are off" in message and "\n" not in message


def test_data_dir_that_does_not_exist_is_a_usage_error(tmp_path, capsys):
    assert main(["datasets", "--data-dir", str(tmp_path / "nope")]) == 2
    assert "is not an existing directory" in capsys.readouterr().err


def test_unreachable_download_fails_fast_and_reports_missing(tmp_path, monkeypatch):
    monkeypatch.setenv(catalog.ENV_OFFLINE, "0")
    spec = catalog.CATALOG["cifar10"]
    dead = [("cifar-10-python.tar.gz", "http://127.0.0.1:9/cifar-10-python.tar.gz")]  # discard port
    monkeypatch.setitem(catalog.CATALOG, "cifar10", dataclasses.replace(spec, downloads=tuple(dead)))
    start = time.perf_counter()
    with pytest.raises(DatasetError, match="download failed: URLError"):
        load_dataset("cifar10", data_dir=tmp_path)
    assert time.perf_counter() - start < catalog.DOWNLOAD_TIMEOUT
    assert not list((catalog.download_dir()).glob("*.part"))  # no half-written file left behind


def test_download_goes_to_the_cache_once(tmp_path, monkeypatch):
    served = tmp_path / "server"
    cifar10_archive(served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/cifar-10-python.tar.gz"
    monkeypatch.setenv(catalog.ENV_OFFLINE, "0")
    spec = catalog.CATALOG["cifar10"]
    monkeypatch.setitem(catalog.CATALOG, "cifar10", dataclasses.replace(
        spec, downloads=(("cifar-10-python.tar.gz", url),)))
    try:
        first = load_dataset("cifar10")
    finally:
        server.shutdown()
        server.server_close()
    assert first.source == str(catalog.download_dir() / "cifar-10-python.tar.gz")
    second = load_dataset("cifar10")  # the server is gone: read from the cache
    assert second.fingerprint == first.fingerprint


def test_datasets_command_lists_every_dataset(tmp_path, capsys):
    cifar10_archive(tmp_path)
    assert main(["datasets", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line and line.split()[0] in
            {"digits", "cifar10", "cifar100", "mnist", "fashion-mnist", "trashnet"}}
    assert "available" in rows["digits"] and "embedded" in rows["digits"]
    assert "available" in rows["cifar10"] and str(tmp_path / "cifar-10-python.tar.gz") in rows["cifar10"]
    for name in ("cifar100", "mnist", "fashion-mnist", "trashnet"):
        assert "missing" in rows[name]
    assert "- mnist: mnist not found: put mnist.npz or mnist/ with" in out


@pytest.mark.slow
def test_run_all_runs_the_available_named_datasets_and_lists_the_missing(tmp_path, capsys):
    cifar10_archive(tmp_path / "data", per_batch=40, test=40)
    out = tmp_path / "run"
    code = main(["run", "--all", "--estimators", "knn-pixels", "--data-dir", str(tmp_path / "data"),
                 "--out", str(out), "--no-cache", "--quiet", "--max-per-class", "15"])
    assert code == 0
    captured = capsys.readouterr()
    assert "not run: mnist: mnist not found" in captured.out and "not run" not in captured.err
    board = (out / "report.md").read_text()
    assert "## Dataset: cifar10" in board and "## Dataset: digits" in board
    # cifar10 has 200 images, so auto means cross-validation; the cap keeps 15 per class
    assert re.search(r"\| cifar10 +\| 150 +\| 32x32x3 +\| 10 +\| 5-fold cross-validation; 150 of 240 "
                     r"images used \(at most 15 per class\)", board)
    assert "## Datasets not run" in board and "- trashnet: trashnet not found" in board


def test_herbivores_omnivores_from_an_image_folder(tmp_path, rng):
    for side in ("train", "test"):
        for label in ("camel", "cattle", "chimpanzee", "elephant", "kangaroo", "apple"):
            write_image(tmp_path / "cifar100" / side / label / "0.png",
                        rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    d = load_dataset("cifar100-herbivores-omnivores", data_dir=tmp_path)
    assert sorted(d.classes) == sorted(HERBIVORES.values()) and len(d.labels) == 10
    assert len(d.paths) == 10 and all("apple" not in p for p in d.paths)
    assert sorted(d.split.tolist()) == ["test"] * 5 + ["train"] * 5
