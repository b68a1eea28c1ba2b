import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.data import image_folder
from benchmark.data import Dataset, DatasetError
from benchmark.data.duplicates import find_duplicates
from benchmark.errors import UsageError
from benchmark.data.image_folder import load_image_folder, read_image_folder
from conftest import write_image

TRASHNET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "trashnet"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """The default cache folder of these tests is their own, never the user's."""
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(tmp_path / "default-cache"))
    return tmp_path / "default-cache" / "folders"


def noise(rng, shape=(12, 12, 3)):
    return rng.integers(0, 256, shape, dtype=np.uint8)


def make_folder(root, rng, layout):
    """Write `layout` {relative dir: number of images} as PNG noise images."""
    for directory, n in layout.items():
        for i in range(n):
            write_image(root / directory / f"{i}.png", noise(rng))
    return root


def test_flat_folder_has_no_official_split(tmp_path, rng):
    root = make_folder(tmp_path / "flat", rng, {"cats": 2, "dogs": 3, "dogs/nested": 1})
    folder = read_image_folder(root, cache_dir=None)
    assert folder.split is None
    assert folder.paths.tolist() == ["cats/0.png", "cats/1.png", "dogs/0.png", "dogs/1.png",
                                     "dogs/2.png", "dogs/nested/0.png"]
    assert folder.labels.tolist() == ["cats"] * 2 + ["dogs"] * 4
    d = load_image_folder(root)
    assert not d.has_official_split and d.images.shape == (6, 12, 12, 3)


@pytest.mark.parametrize("held_out", ["test", "val", "valid", "validation", "Test"])
def test_train_and_held_out_folders_are_an_official_split(tmp_path, rng, held_out):
    root = make_folder(tmp_path / "split", rng, {"train/a": 3, "train/b": 2, f"{held_out}/a": 1, f"{held_out}/b": 2})
    d = load_image_folder(root, image_size=8)
    assert d.has_official_split
    assert d.split.tolist() == ["train"] * 5 + ["test"] * 3
    assert d.labels.tolist() == ["a", "a", "a", "b", "b", "a", "b", "b"]
    assert d.summary()["official_split"] == {"train": 5, "test": 3}
    assert f"{held_out}/ is test" in d.description


def test_test_folder_wins_over_val_which_joins_training_and_said_so(tmp_path, rng):
    root = make_folder(tmp_path / "three", rng, {"train/a": 2, "train/b": 2, "valid/a": 4, "valid/b": 4,
                                                 "test/a": 1, "test/b": 1})
    d = load_image_folder(root)
    assert d.split.tolist().count("test") == 2 and d.split.tolist().count("train") == 12
    assert "valid/ is used as training images" in d.description and "only test/ is scored" in d.description


def test_the_third_split_is_said_in_the_report(tmp_path, rng):
    from benchmark.cli import main

    root = make_folder(tmp_path / "three", rng, {"train/a": 6, "train/b": 6, "validation/a": 3,
                                                 "validation/b": 3, "test/a": 3, "test/b": 3})
    out = tmp_path / "run"
    assert main(["run", "--datasets", f"folder:{root}", "--estimators", "logreg-pixels", "--protocol",
                 "holdout", "--out", str(out), "--quiet", "--no-cache", "--jobs", "1"]) == 0
    report = (out / "report.md").read_text()
    assert "validation/ is used as training images" in report


def test_split_with_different_classes_is_a_clear_error(tmp_path, rng):
    root = make_folder(tmp_path / "odd", rng, {"train/a": 2, "train/b": 2, "train/c": 1, "val/a": 1, "val/d": 1})
    with pytest.raises(DatasetError) as error:
        load_image_folder(root)
    message = str(error.value)
    assert "train/ and val/ have different classes" in message
    assert "train/ has no images of 'd'" in message and "val/ has no images of 'b', 'c'" in message
    assert "add the missing class folders" in message


def test_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_image_folder(tmp_path / "nope")


def test_parallel_decoding_equals_serial(tmp_path, rng):
    root = tmp_path / "photos"
    for i in range(40):
        write_image(root / "ab"[i % 2] / f"{i}.jpg", noise(rng, (50, 40, 3)))
    one = load_image_folder(root, image_size=20, n_threads=1, cache_dir=None)
    four = load_image_folder(root, image_size=20, n_threads=4, cache_dir=None)
    assert one.images.shape == (40, 20, 20, 3) and one.images.dtype == np.uint8
    assert np.array_equal(one.images, four.images) and np.array_equal(one.labels, four.labels)


# -- cache -------------------------------------------------------------------------------------
def test_cache_hit_returns_identical_arrays_without_decoding(tmp_path, rng, monkeypatch, private_cache):
    root = make_folder(tmp_path / "split", rng, {"train/a": 3, "train/b": 3, "test/a": 2, "test/b": 2})
    (root / "train" / "a" / "empty.png").write_bytes(b"")
    first = read_image_folder(root)
    assert not first.from_cache and len(list(private_cache.glob("*.npz"))) == 1
    monkeypatch.setattr(image_folder, "_decode_into", lambda *a: pytest.fail("decoded on a cache hit"))
    monkeypatch.setattr(image_folder, "_probe", lambda *a: pytest.fail("probed on a cache hit"))
    second = read_image_folder(root)
    assert second.from_cache
    for field in ("images", "labels", "paths", "split"):
        a, b = getattr(first, field), getattr(second, field)
        assert a.dtype == b.dtype and np.array_equal(a, b), field
    assert second.skipped == first.skipped == [(str(root / "train" / "a" / "empty.png"), "empty file (0 bytes)")]
    with np.load(next(private_cache.glob("*.npz")), allow_pickle=False) as data:  # no pickled objects
        assert data["images"].dtype == np.uint8


def test_cache_key_follows_the_content_of_each_file_not_its_times(tmp_path, rng):
    root = make_folder(tmp_path / "f", rng, {"a": 2, "b": 2})
    cache = tmp_path / "my-cache"
    target = root / "a" / "0.bmp"  # first in load order; a BMP's size depends only on its shape
    write_image(target, np.zeros((12, 12, 3), np.uint8))
    stat = target.stat()
    assert not read_image_folder(root, cache_dir=cache).from_cache

    # rewritten with the same size and modification time, as `cp -p` or `rsync -a` leave it:
    # the old cache keyed on (size, mtime) served the black image here
    write_image(target, np.full((12, 12, 3), 255, np.uint8))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_size == stat.st_size and target.stat().st_mtime_ns == stat.st_mtime_ns
    fresh = read_image_folder(root, cache_dir=cache)
    assert not fresh.from_cache and fresh.images[0].min() == 255
    assert read_image_folder(root, cache_dir=cache).from_cache

    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched only
    touched = read_image_folder(root, cache_dir=cache)
    assert touched.from_cache and touched.images[0].min() == 255  # same bytes, same pixels

    write_image(root / "b" / "new.png", noise(rng))  # added
    added = read_image_folder(root, cache_dir=cache)
    assert not added.from_cache and len(added.labels) == 6
    (root / "b" / "0.png").unlink()  # removed
    removed = read_image_folder(root, cache_dir=cache)
    assert not removed.from_cache and "b/0.png" not in removed.paths.tolist()
    assert len(list(cache.glob("*.npz"))) == 1  # one slot per folder and size, overwritten


def test_cache_slot_depends_on_the_requested_size_and_can_be_switched_off(tmp_path, rng, private_cache):
    root = make_folder(tmp_path / "f", rng, {"a": 2, "b": 2})
    small = load_image_folder(root, image_size=6)
    large = load_image_folder(root, image_size=10)
    assert small.images.shape[1:3] == (6, 6) and large.images.shape[1:3] == (10, 10)
    assert len(list(private_cache.glob("*.npz"))) == 2
    for off in (None, False):
        assert not read_image_folder(root, image_size=7, cache_dir=off).from_cache
    assert len(list(private_cache.glob("*.npz"))) == 2


def test_damaged_cache_file_is_decoded_again(tmp_path, rng, private_cache):
    root = make_folder(tmp_path / "f", rng, {"a": 2, "b": 2})
    expected = load_image_folder(root).images
    slot = next(private_cache.glob("*.npz"))
    slot.write_bytes(slot.read_bytes()[:100])
    again = read_image_folder(root)
    assert not again.from_cache and np.array_equal(again.images, expected)
    assert read_image_folder(root).from_cache


# -- bad input ---------------------------------------------------------------------------------
def test_other_formats_named_jpg_or_png_are_skipped_as_placeholders(tmp_path, rng):
    root = make_folder(tmp_path / "f", rng, {"a": 2, "b": 2})
    Image.fromarray(noise(rng)).convert("P").save(root / "a" / "photo.jpg", format="GIF")
    Image.fromarray(noise(rng)).save(root / "b" / "photo.png", format="JPEG")
    write_image(root / "b" / "real.gif", noise(rng), fmt="GIF")  # a GIF named .gif is fine
    d = load_image_folder(root, cache_dir=None)
    assert dict(d.skipped) == {
        str(root / "a" / "photo.jpg"): "a GIF file named .jpg (placeholder?)",
        str(root / "b" / "photo.png"): "a JPEG file named .png (placeholder?)",
    }
    assert d.class_counts == {"a": 2, "b": 3}


def test_empty_file_is_skipped_with_a_reason(tmp_path, rng):
    root = make_folder(tmp_path / "f", rng, {"a": 2, "b": 2})
    (root / "a" / "empty.jpg").write_bytes(b"")
    for size in (None, 8):  # with and without the header pass that picks the size
        d = load_image_folder(root, image_size=size, cache_dir=None)
        assert d.skipped == [(str(root / "a" / "empty.jpg"), "empty file (0 bytes)")]
        assert len(d.labels) == 4


def test_symlink_loops_terminate_and_looping_links_are_skipped(tmp_path, rng):
    root = make_folder(tmp_path / "f", rng, {"a": 2, "b": 2})
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)  # folder link below a class
    (root / "again").symlink_to(root, target_is_directory=True)  # a "class" that is the root
    (root / "b" / "x.jpg").symlink_to(root / "b" / "y.jpg")  # two file links pointing at each other
    (root / "b" / "y.jpg").symlink_to(root / "b" / "x.jpg")
    result = {}
    worker = threading.Thread(target=lambda: result.update(d=load_image_folder(root, cache_dir=None)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "loading a folder with link loops did not finish"
    d = result["d"]
    assert d.class_counts == {"a": 2, "b": 2}
    reasons = dict(d.skipped)
    assert "a loop" in reasons[str(root / "again")]
    assert reasons[str(root / "b" / "x.jpg")] == "cannot read (Too many levels of symbolic links)"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="runs as root, and root reads files whatever their mode (see the simulated test)")
def test_unreadable_file_is_skipped(tmp_path, rng):
    root = make_folder(tmp_path / "f", rng, {"a": 2, "b": 2})
    locked = root / "a" / "1.png"
    locked.chmod(0)
    try:
        d = load_image_folder(root, cache_dir=None)
    finally:
        locked.chmod(0o644)
    assert d.skipped == [(str(locked), "cannot read (permission denied)")]


def test_unreadable_file_is_skipped_simulated(tmp_path, rng, monkeypatch):
    root = make_folder(tmp_path / "f", rng, {"a": 2, "b": 2})
    locked = root / "a" / "1.png"
    real_open = Image.open

    def guarded_open(path, *args, **kwargs):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Image, "open", guarded_open)
    for size in (None, 8):
        d = load_image_folder(root, image_size=size, cache_dir=None)
        assert d.skipped == [(str(locked), "cannot read (permission denied)")]
        assert d.class_counts == {"a": 1, "b": 2}


def test_folder_without_usable_images_is_a_clear_error(tmp_path, rng):
    root = tmp_path / "flat"
    write_image(root / "loose.png", noise(rng))
    (root / "a").mkdir()
    (root / "a" / "notes.txt").write_text("no images")
    with pytest.raises(DatasetError, match=r"no images in class folders; its 1 image file\(s\) at the top "
                                           r"level belong in class folders: lay it out as .*/<class>/<images>"):
        load_image_folder(root, cache_dir=None)
    (root / "a" / "empty.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"none of its 1 image file\(s\) can be used \(first: .*empty.jpg: empty"):
        load_image_folder(root, cache_dir=None)


# -- duplicates --------------------------------------------------------------------------------
def test_find_duplicates_within_a_class_and_across_classes(tmp_path, rng):
    root = make_folder(tmp_path / "dups", rng, {"cats": 3, "dogs": 3})
    (root / "cats" / "copy.png").write_bytes((root / "cats" / "0.png").read_bytes())
    (root / "dogs" / "cat.png").write_bytes((root / "cats" / "1.png").read_bytes())
    folder = read_image_folder(root, cache_dir=None)
    found = find_duplicates(folder.images, folder.labels, names=folder.paths)
    assert [(g.names, g.labels) for g in found.within_class] == [(["cats/0.png", "cats/copy.png"], ["cats", "cats"])]
    assert [(g.names, g.labels) for g in found.label_conflicts] == [(["cats/1.png", "dogs/cat.png"], ["cats", "dogs"])]

    summary = load_image_folder(root, cache_dir=None).summary()
    json.dumps(summary)
    conflict_index = [folder.paths.tolist().index(p) for p in ("cats/1.png", "dogs/cat.png")]
    assert summary["duplicates"] == {
        "within_class_groups": 1, "within_class_copies": 1, "label_conflict_groups": 1,
        "label_conflicts": [{"indices": conflict_index, "labels": ["cats", "dogs"],
                             "names": ["cats/1.png", "dogs/cat.png"]}],
    }


def test_find_duplicates_compares_shape_as_well_as_bytes():
    flat = np.zeros((1, 4, 4, 1), np.uint8)
    images = [flat[0], flat[0].reshape(2, 8, 1), flat[0].copy()]
    found = find_duplicates(images, np.array(["x", "y", "x"]))
    assert [g.indices for g in found.within_class] == [[0, 2]] and found.label_conflicts == []
    assert Dataset("d", np.zeros((2, 2, 2, 3), np.uint8), np.array(["a", "b"])).summary()["duplicates"][
        "label_conflicts"] == [{"indices": [0, 1], "labels": ["a", "b"]}]


@pytest.mark.skipif(not TRASHNET.is_dir(), reason=f"the shared TrashNet copy is not at {TRASHNET}")
def test_trashnet_has_exactly_three_cross_class_copies():
    folder = read_image_folder(TRASHNET, cache_dir=None)
    found = find_duplicates(folder.images, folder.labels, names=folder.paths)
    assert sorted(sorted(g.names) for g in found.label_conflicts) == [
        ["glass/glass115.jpg", "metal/metal91.jpg"],
        ["glass/glass176.jpg", "plastic/plastic152.jpg"],
        ["glass/glass389.jpg", "plastic/plastic332.jpg"],
    ]


def test_run_directories_of_this_tool_inside_the_folder_are_left_out_and_listed(tmp_path, rng):
    root = make_folder(tmp_path / "imgs", rng, {"cats": 2, "dogs": 2})
    for run in (root / "results" / "20261207-101500", root / "cats" / "my-run"):  # cd imgs; run --out
        (run / "cells").mkdir(parents=True)
        (run / "run.json").write_text("{}")
        write_image(run / "plots" / "f1.png", noise(rng))  # the report's plots are PNGs
    (root / "results" / "latest").symlink_to("20261207-101500")
    (root / "results" / "README.md").write_text("runs")
    not_a_run = root / "dogs" / "plots"  # a folder that merely looks like output stays a folder of images
    write_image(not_a_run / "x.png", noise(rng))

    from benchmark.execution.store import is_run_directory

    assert sorted(set(load_image_folder(root, cache_dir=None).labels.tolist())) == ["cats", "dogs", "results"]
    dataset = load_image_folder(root, cache_dir=tmp_path / "cache", leave_out=is_run_directory)  # as the runner
    assert sorted(set(dataset.labels.tolist())) == ["cats", "dogs"]  # no "results" class
    assert sorted(dataset.paths.tolist()) == ["cats/0.png", "cats/1.png", "dogs/0.png", "dogs/1.png", "dogs/plots/x.png"]
    assert sorted(p for p, _ in dataset.excluded) == ["cats/my-run", "results", "results/20261207-101500"]
    assert dict(dataset.excluded)["results"].startswith("left out: it holds only run directories")
    assert dataset.skipped == []  # results/ is not reported as an empty class
    assert dataset.summary()["excluded_folders"][0]["reason"].startswith("left out:")
