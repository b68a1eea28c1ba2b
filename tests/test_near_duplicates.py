"""Near-duplicate detection (benchmark.data.near_duplicates) and how runs report and use it."""

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmark.data.near_duplicates import (
    NearDuplicates,
    cached_near_duplicates,
    describe,
    find_near_duplicates,
)
from benchmark.data.protocols import Split

COLOUR = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
          "retina", "logo")
GRAY = ("camera", "coins", "moon", "text", "page", "brick", "grass", "gravel")
SIDE = 96
# noise-like textures: their copies cropped by 5% no longer line up within a pixel at 32x32
# (the detector's documented misses); every other copy must be found
NOISE_LIKE = ("brick", "gravel")
CROPPED = ("crop5", "crop8-centre", "everything")


def _photos():
    """scikit-image's bundled photographs, squashed to SIDE x SIDE RGB uint8."""
    from skimage import data
    from skimage.transform import resize

    photos = []
    for name in COLOUR + GRAY:
        image = getattr(data, name)()
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        image = image[..., :3]
        photos.append((resize(image, (SIDE, SIDE), anti_aliasing=True, preserve_range=True)).astype(np.uint8))
    return np.stack(photos)


def _jpeg(image, quality):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _crop(image, share, corner):
    """`share` of each side cut off at `corner` (0..3), resized back."""
    h, w = image.shape[:2]
    dy, dx = round(share * h), round(share * w)
    top, left = (corner // 2) * dy, (corner % 2) * dx
    cropped = Image.fromarray(image).crop((left, top, left + w - dx, top + h - dy))
    return np.asarray(cropped.resize((w, h), Image.BILINEAR))


def _brightness(image, shift):
    return np.clip(image.astype(np.int16) + shift, 0, 255).astype(np.uint8)


def _resized(image, side):
    small = Image.fromarray(image).resize((side, side), Image.BILINEAR)
    return np.asarray(small.resize(image.shape[:2][::-1], Image.BILINEAR))


TRANSFORMS = {
    "jpeg60": lambda x, i: _jpeg(x, 60),
    "jpeg30": lambda x, i: _jpeg(x, 30),
    "crop5": lambda x, i: _crop(x, 0.05, i % 4),
    "crop8-centre": lambda x, i: _crop(_crop(x, 0.04, 0), 0.04, 3),
    "brighter": lambda x, i: _brightness(x, 20),
    "darker": lambda x, i: _brightness(x, -25),
    "resized": lambda x, i: _resized(x, 80),
    "everything": lambda x, i: _jpeg(_brightness(_crop(x, 0.05, (i + 1) % 4), -15), 60),
}


@pytest.fixture(scope="module")
def photos():
    return _photos()


@pytest.mark.parametrize("kind", sorted(TRANSFORMS))
def test_every_transformed_copy_is_found_and_no_two_photos_pair(photos, kind):
    copies = np.stack([TRANSFORMS[kind](p, i) for i, p in enumerate(photos)])
    n = len(photos)
    found = find_near_duplicates(np.concatenate([photos, copies]))
    pairs = {tuple(p) for p in found.pairs.tolist()}
    names = COLOUR + GRAY
    expected = [i for i in range(n) if not (kind in CROPPED and names[i] in NOISE_LIKE)]
    missed = [names[i] for i in expected if (i, n + i) not in pairs]
    assert missed == [], f"{kind}: copies of photos {missed} not found"
    # specificity: every pair found is a photo and its own copy (or two copies of one photo)
    assert all(a % n == b % n for a, b in pairs), sorted(pairs)
    assert found.similarity.min() >= 0.95 and found.similarity.max() <= 1.0


def test_distinct_views_of_one_photo_are_not_near_duplicates(photos):
    """Tiles of one photograph, shifted by a quarter of their side, share half their pixels but
    are not copies of each other: none may pair."""
    from skimage import data

    big = data.astronaut()
    tiles = np.stack([big[y:y + 128, x:x + 128] for y in range(0, 384, 32) for x in range(0, 384, 96)])
    found = find_near_duplicates(tiles)
    assert len(found.pairs) == 0, found.pairs


def test_exact_copies_pair_with_similarity_one(photos):
    found = find_near_duplicates(np.concatenate([photos[:3], photos[:3]]))
    assert sorted(map(tuple, found.pairs.tolist())) == [(0, 3), (1, 4), (2, 5)]
    assert np.allclose(found.similarity, 1.0, atol=1e-4)


def test_images_too_small_to_tell_are_not_checked():
    images = np.zeros((10, 8, 8, 1), np.uint8)
    found = find_near_duplicates(images)
    assert len(found.pairs) == 0 and "8 pixels" in found.not_checked


def test_flat_images_pair_only_with_flat_images_of_the_same_colour():
    flat = np.full((4, 32, 32, 3), 0, np.uint8)
    flat[0], flat[1], flat[2] = 100, 104, 180  # 0 ~ 1 (within 8 levels); 2 and 3 other colours
    rng = np.random.default_rng(0)
    textured = rng.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    found = find_near_duplicates(np.concatenate([flat, textured]))
    assert [tuple(p) for p in found.pairs.tolist()] == [(0, 1)]


def _made(pairs, n, similarity=None):
    pairs = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return NearDuplicates(pairs, np.full(len(pairs), 0.97) if similarity is None else np.array(similarity), n)


def test_clusters_are_chains_numbered_by_first_image():
    found = _made([(1, 4), (4, 6), (2, 3)], 7)
    assert found.clusters().tolist() == [0, 1, 2, 2, 1, 3, 1]


def test_keep_one_keeps_the_first_image_or_the_preferred_one():
    found = _made([(1, 4), (4, 6), (2, 3)], 7)
    assert found.keep_one().tolist() == [0, 1, 2, 5]
    prefer = np.array([True, False, False, True, True, True, True])  # e.g. "in the training split"
    assert found.keep_one(prefer).tolist() == [0, 3, 4, 5]


def test_restrict_renumbers_the_pairs_within_rows():
    found = _made([(1, 4), (4, 6), (2, 3)], 7, [0.96, 0.97, 0.98])
    inner = found.restrict([6, 4, 0, 2])
    assert inner.n_images == 4
    assert inner.pairs.tolist() == [[0, 1]] and inner.similarity.tolist() == [0.97]


def test_leaks_counts_test_images_with_a_training_near_duplicate():
    found = _made([(0, 5), (1, 2), (3, 4)], 6)
    assert found.leaks(train=[0, 1, 3], test=[2, 4, 5]).tolist() == [2, 4, 5]
    assert found.leaks(train=[0, 5], test=[1, 2, 3, 4]).tolist() == []  # pairs within one side


def test_describe_counts_per_split_examples_and_label_conflicts():
    found = _made([(0, 5), (1, 2), (3, 4)], 6, [0.99, 0.96, 0.98])
    labels = np.array(["a", "a", "a", "b", "c", "a"])
    names = np.array([f"img{i}.png" for i in range(6)])
    splits = [Split(np.array([0, 1, 3]), np.array([2, 4, 5]), 0), Split(np.array([2, 4, 5]), np.array([0, 1, 3]), 0)]
    facts, rows = describe(found, labels, names, splits)
    assert facts["pairs"] == 3 and facts["clusters"] == 3 and facts["images_in_clusters"] == 6
    assert facts["test_images"] == 6 and facts["test_images_with_train_near_duplicate"] == 6
    assert [s["with_train_near_duplicate"] for s in facts["per_split"]] == [3, 3]
    # the most alike first (ties by name), each pair once though each side is tested in turn
    assert [(e["test"], e["train"], e["similarity"]) for e in facts["examples"]] == [
        ("img0.png", "img5.png", 0.99), ("img3.png", "img4.png", 0.98), ("img1.png", "img2.png", 0.96)]
    assert facts["examples"][0]["labels"] == ["a", "a"]
    assert facts["cross_class_pairs"] == 1
    assert facts["label_conflicts"] == [{"names": ["img3.png", "img4.png"], "labels": ["b", "c"], "similarity": 0.98}]
    assert rows[0] == ("img0.png", "img5.png", "a", "a", 0.99)


def test_the_cache_returns_what_was_computed_and_survives_a_damaged_file(tmp_path, photos):
    images = np.concatenate([photos[:4], photos[:2]])
    first = cached_near_duplicates(images, "abc", tmp_path)
    stored = list(tmp_path.glob("*.npz"))
    assert len(stored) == 1
    again = cached_near_duplicates(images, "abc", tmp_path)
    assert np.array_equal(first.pairs, again.pairs) and first.pairs.tolist() == [[0, 4], [1, 5]]
    stored[0].write_bytes(b"damaged")
    assert cached_near_duplicates(images, "abc", tmp_path).pairs.tolist() == [[0, 4], [1, 5]]


# ---- through a run -----------------------------------------------------------------------


def _folder_with_copies(root, photos):
    """Two classes of 32 photo tiles each (8 colour photos, 8 grayscale ones, 4 tiles each), and a
    JPEG copy of the first 4 tiles of each class: 8 near-duplicate pairs."""
    from skimage.transform import resize

    paths = []
    for c, names in enumerate((COLOUR, GRAY)):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        tiles = [photo[y:y + 48, x:x + 48] for photo in photos[c * 8:(c + 1) * 8] for y in (0, 48) for x in (0, 48)]
        for i, tile in enumerate(tiles):
            tile = resize(tile, (32, 32), anti_aliasing=True, preserve_range=True).astype(np.uint8)
            Image.fromarray(tile).save(folder / f"tile{i:02d}.png")
            if i < 4:
                Image.fromarray(_jpeg(tile, 60)).save(folder / f"copy{i:02d}.jpg", quality=95)
                paths.append((f"class{c}/copy{i:02d}.jpg", f"class{c}/tile{i:02d}.png"))
    return paths


def test_a_run_reports_near_duplicates_and_writes_every_pair(tmp_path, photos):
    from benchmark.api import run_benchmark

    copies = _folder_with_copies(tmp_path / "data", photos)
    out = tmp_path / "run"
    results = run_benchmark([f"folder:{tmp_path / 'data'}"], ["knn-pixels"], folds=2, out=out)
    meta = json.loads((out / "run.json").read_text())
    (facts,) = [s["near_duplicates"] for s in meta["datasets"].values()]
    with open(out / facts["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert {tuple(sorted((r["image_a"], r["image_b"]))) for r in rows} == {tuple(sorted(p)) for p in copies}
    assert facts["pairs"] == 8 and facts["cross_class_pairs"] == 0
    # each copy and its tile are in different folds or the same one; over the two folds every
    # image is tested once, so the leaking test images are those whose partner was in training
    leaked = facts["test_images_with_train_near_duplicate"]
    assert leaked == sum(s["with_train_near_duplicate"] for s in facts["per_split"]) > 0
    report = (out / "report.md").read_text()
    assert f"{leaked} of 72 ({leaked / 72:.1%})" in report
    assert f"{leaked} of 72 test images ({leaked / 72:.1%}) have a near-duplicate" in report
    assert "near-duplicates/" in report and ".csv" in report
    # the notebook's table: 72 images in the folder, each tested once over the two folds
    (row,) = results.near_duplicates.to_dict("records")
    assert row["checked"] and row["test_images"] == 72 and row["pairs"] == len(rows) == 8
    assert row["test_images_with_train_near_duplicate"] == leaked and row["share"] == pytest.approx(leaked / 72)
    assert row["csv"] == facts["csv"] and pd.isna(row["dedupe_dropped_images"])


def test_dedupe_drops_the_copies_before_splitting(tmp_path, photos):
    from benchmark.api import run_benchmark

    copies = _folder_with_copies(tmp_path / "data", photos)
    out = tmp_path / "run"
    results = run_benchmark([f"folder:{tmp_path / 'data'}"], ["knn-pixels"], folds=2, out=out, dedupe=True)
    meta = json.loads((out / "run.json").read_text())
    (summary,) = meta["datasets"].values()
    csv_path = summary["near_duplicates"]["csv"]
    assert summary["images"] == 64 and summary["sampling"]["dedupe"] == {
        "dropped_images": 8, "clusters": 8, "images_before": 72, "cross_class_conflicts": 0,
        "conflicts": [], "csv": csv_path}
    assert summary["near_duplicates"]["pairs"] == 0
    # every dropped image is listed with the one kept of its pair: each cluster keeps its
    # first image, here the JPEG copy (copy00.jpg sorts before tile00.png)
    rows = _csv_rows(out / csv_path)
    assert {(r["kind"], r["image_a"], r["image_b"], r["label_a"], r["label_b"]) for r in rows} == {
        ("dropped", tile, copy, tile.split("/")[0], tile.split("/")[0]) for copy, tile in copies}
    assert all(0.95 <= float(r["similarity"]) <= 1 and r["action"] == f"dropped; kept {r['image_b']}"
               for r in rows)
    report = (out / "report.md").read_text()
    assert "--dedupe dropped 8 near-duplicate(s) of 8 cluster(s) before splitting" in report
    assert ("--dedupe dropped 8 of 72 images, near-duplicates of an image kept from each of 8 "
            "cluster(s); every dropped file: [") in report and f"]({csv_path})." in report
    assert results.summary.iloc[0]["folds_ok"] == 2
    (row,) = results.near_duplicates.to_dict("records")  # the notebook's table: the CSV's rows
    assert row["dedupe_dropped_images"] == len(rows) == 8 and row["dedupe_images_before"] == 64 + 8
    assert row["dedupe_clusters"] == 8 and row["dedupe_cross_class_conflicts"] == 0 and row["pairs"] == 0
    assert row["dedupe_csv"] == csv_path
    plain = tmp_path / "plain"
    run_benchmark([f"folder:{tmp_path / 'data'}"], ["knn-pixels"], folds=2, out=plain)
    keys = {json.loads(p.read_text())["key"] for p in (out / "cells").rglob("fold-0.json")}
    plain_keys = {json.loads(p.read_text())["key"] for p in (plain / "cells").rglob("fold-0.json")}
    assert keys.isdisjoint(plain_keys)


def _csv_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_dedupe_lists_a_cross_class_conflict_it_resolved(tmp_path, photos):
    from benchmark.api import run_benchmark

    _folder_with_copies(tmp_path / "data", photos)
    # a copy of class0's first tile filed under class1: near-duplicates under two classes
    (tmp_path / "data" / "class0" / "copy00.jpg").rename(tmp_path / "data" / "class1" / "moved00.jpg")
    out = tmp_path / "run"
    run_benchmark([f"folder:{tmp_path / 'data'}"], ["knn-pixels"], folds=2, out=out, dedupe=True)
    (summary,) = json.loads((out / "run.json").read_text())["datasets"].values()
    dedupe = summary["sampling"]["dedupe"]
    assert dedupe["dropped_images"] == 8 and dedupe["cross_class_conflicts"] == 1
    (conflict,) = dedupe["conflicts"]
    assert {k: conflict[k] for k in ("dropped", "kept", "labels")} == {
        "dropped": "class1/moved00.jpg", "kept": "class0/tile00.png", "labels": ["class1", "class0"]}
    rows = _csv_rows(out / dedupe["csv"])
    (row,) = [r for r in rows if r["kind"] == "dropped-conflict"]
    assert (row["image_a"], row["image_b"], row["label_a"], row["label_b"]) == (
        "class1/moved00.jpg", "class0/tile00.png", "class1", "class0")
    assert row["action"] == "cross-class conflict: dropped as class1; kept class0/tile00.png as class0"
    assert len(rows) == 8 and sum(r["kind"] == "dropped" for r in rows) == 7
    report = (out / "report.md").read_text()
    assert ("(1 cross-class conflict(s), near-duplicates under two classes, each resolved by keeping one "
            "image under its own class: class1/moved00.jpg (class1) dropped, class0/tile00.png (class0) "
            "kept); every dropped file: [") in report
    problems = report.split("## Problems")[1]
    assert (": label conflict resolved by --dedupe: class1/moved00.jpg (class1) dropped, near-duplicate "
            f"of class0/tile00.png (class0, kept; {conflict['similarity']:.2f})") in problems


def test_groups_near_duplicates_keeps_each_copy_with_its_original(tmp_path, photos):
    from benchmark.api import run_benchmark

    copies = _folder_with_copies(tmp_path / "data", photos)
    out = tmp_path / "run"
    run_benchmark([f"folder:{tmp_path / 'data'}"], ["knn-pixels"], folds=2, out=out, groups="near-duplicates")
    meta = json.loads((out / "run.json").read_text())
    (summary,) = meta["datasets"].values()
    assert summary["near_duplicates"]["pairs"] == 8
    assert summary["near_duplicates"]["test_images_with_train_near_duplicate"] == 0
    grouping = summary["sampling"]["grouping"]
    assert grouping["by"] == "near-duplicate clusters" and grouping["groups"] == 64
    assert len(copies) == 8


def test_small_images_say_not_checked_in_the_report(tmp_path):
    from benchmark.api import run_benchmark

    out = tmp_path / "run"
    results = run_benchmark(["digits"], ["knn-pixels"], folds=2, out=out, max_per_class=10)
    report = (out / "report.md").read_text()
    assert "not checked: images of 8 pixels a side are too small to tell a copy from a look-alike" in report
    (row,) = results.near_duplicates.to_dict("records")
    assert not row["checked"] and row["not_checked"].startswith("images of 8 pixels a side")
    assert pd.isna(row["test_images"]) and pd.isna(row["share"])


def test_report_lines_say_how_many_leak_and_skip_conflicts_already_listed_as_identical():
    from benchmark.reporting.near_duplicates import near_duplicate_cell, near_duplicate_problems

    facts = {"not_checked": None, "test_images": 2527, "test_images_with_train_near_duplicate": 74,
             "examples": [{"test": "a/1.jpg", "train": "a/2.jpg", "similarity": 0.991, "labels": ["a", "a"]}],
             "csv": "near-duplicates/trash.csv", "cross_class_pairs": 3,
             "label_conflicts": [{"names": ["g/1.jpg", "m/1.jpg"], "labels": ["g", "m"], "similarity": 1.0},
                                 {"names": ["g/2.jpg", "m/2.jpg"], "labels": ["g", "m"], "similarity": 0.97},
                                 {"names": ["g/3.jpg", "p/3.jpg"], "labels": ["g", "p"], "similarity": 0.96}]}
    assert near_duplicate_cell(facts) == "74 of 2,527 (2.9%)"
    assert near_duplicate_cell({**facts, "test_images_with_train_near_duplicate": 0}) == "none of 2,527"
    assert near_duplicate_cell(None) == "not checked"
    lines = near_duplicate_problems("trash", facts, identical=[["g/1.jpg", "m/1.jpg"]])
    assert lines[0].startswith("trash: 74 of 2,527 test images (2.9%) have a near-duplicate on the training side")
    assert "e.g. a/1.jpg ~ a/2.jpg (0.99); every pair in near-duplicates/trash.csv" in lines[0]
    assert lines[1:] == ["trash: label conflict, near-duplicates under classes g, m: g/2.jpg, m/2.jpg (0.97)",
                         "trash: label conflict, near-duplicates under classes g, p: g/3.jpg, p/3.jpg (0.96)"]
    assert near_duplicate_problems("x", {**facts, "not_checked": "too small"}) == []
