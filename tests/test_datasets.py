import numpy as np
import pytest

from benchmark.data import DatasetError, list_datasets, load_dataset
from benchmark.data.protocols import plan_splits
from benchmark.errors import UsageError
from benchmark.data.image_folder import load_image_folder
from conftest import write_image


@pytest.mark.parametrize("name, n, shape, n_classes", [
    ("digits", 1797, (8, 8, 1), 10),
    ("faces", 200, (25, 25, 1), 2),
    ("textures", 768, (32, 32, 1), 3),
    ("shapes", 800, (32, 32, 3), 4),
])
def test_embedded_datasets(name, n, shape, n_classes):
    d = load_dataset(name)
    assert d.images.dtype == np.uint8 and d.images.shape == (n, *shape)
    assert len(d.labels) == n and len(d.classes) == n_classes
    assert name in dict(list_datasets())


def test_texture_patches_do_not_overlap():
    from skimage import data

    d = load_dataset("textures")
    brick = data.brick()
    # every brick patch is one exact tile of the 16x16 grid, each tile used once
    tiles = {brick[r:r + 32, c:c + 32].tobytes() for r in range(0, 512, 32) for c in range(0, 512, 32)}
    patches = [p[..., 0].tobytes() for p, label in zip(d.images, d.labels) if label == "brick"]
    assert len(patches) == 256 and set(patches) == tiles


def test_shapes_are_reproducible_from_the_seed():
    a, b, c = load_dataset("shapes", seed=3), load_dataset("shapes", seed=3), load_dataset("shapes", seed=4)
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_unknown_dataset_suggests_the_closest():
    with pytest.raises(UsageError, match="did you mean digits"):
        load_dataset("digts")


def test_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nope'}")


def test_folder_with_every_bad_input(tmp_path, rng):
    root = tmp_path / "messy"
    # good images in mixed sizes and colour modes
    write_image(root / "cats" / "rgb.jpg", rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    write_image(root / "cats" / "gray.png", rng.integers(0, 256, (20, 20), dtype=np.uint8))
    write_image(root / "cats" / "rgba.png", rng.integers(0, 256, (20, 20, 4), dtype=np.uint8))
    write_image(root / "dogs" / "deep" / "nested.bmp", rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).convert("P").save(root / "dogs" / "palette.gif")
    write_image(root / "dogs" / "photo.webp", rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    # bad ones
    (root / "dogs" / "empty.jpg").write_bytes(b"")
    good = (root / "cats" / "rgb.jpg").read_bytes()
    (root / "dogs" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "dogs" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (root / "dogs" / "notes.txt").write_text("not an image")
    (root / "empty-class").mkdir()
    (root / "dogs" / "loop").symlink_to(root, target_is_directory=True)  # a symlink loop

    d = load_image_folder(root, image_size=16)
    assert d.images.shape == (6, 16, 16, 3)  # 3 cats + 3 readable dogs; all converted to RGB
    assert sorted(d.class_counts.items()) == [("cats", 3), ("dogs", 3)]
    reasons = {path.split("/")[-1]: reason for path, reason in d.skipped}
    assert set(reasons) == {"empty.jpg", "truncated.jpg", "corrupt.png", "empty-class"}
    assert "0 bytes" in reasons["empty.jpg"] and reasons["empty-class"].startswith("empty class folder")
    with pytest.raises(DatasetError, match=r"class 'cats' has 3 image\(s\), .*fewer than the 5 folds; use --folds 3"):
        plan_splits(d, protocol="cv", folds=5)
    plan_splits(d, protocol="cv", folds=3)


def test_folder_default_size_is_the_most_common_capped_at_64(tmp_path, rng):
    for i in range(3):
        write_image(tmp_path / "a" / f"{i}.png", rng.integers(0, 256, (150, 100, 3), dtype=np.uint8))
    write_image(tmp_path / "b" / "x.png", rng.integers(0, 256, (30, 30, 3), dtype=np.uint8))
    assert load_image_folder(tmp_path).images.shape == (4, 64, 43, 3)


def test_folder_with_one_class_cannot_be_cross_validated(tmp_path, rng):
    for i in range(6):
        write_image(tmp_path / "only" / f"{i}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    with pytest.raises(DatasetError, match="has 1 class.*at least 2"):
        plan_splits(load_image_folder(tmp_path), protocol="cv", folds=5)
