"""The bag of visual words: its dense descriptors, its codebook (training fold only), its scores."""

import numpy as np
import pytest
from skimage.feature import hog
from sklearn.cluster import MiniBatchKMeans
from sklearn.model_selection import ParameterSampler

from benchmark.data.protocols import Split
from benchmark.execution.cells import CellTask, run_cell
from estimators import create_estimator
from estimators.bovw import BagOfVisualWordsImageClassifier, VisualWords
from estimators.tags import benchmark_tags
from features import DenseHOG, make_features


def test_dense_hog_descriptors_are_skimage_hog_blocks(rng):
    images = rng.integers(0, 256, (3, 32, 40, 3), dtype=np.uint8)
    dense = DenseHOG(orientations=8, pixels_per_cell=4, cells_per_block=4)
    out = dense.transform(images)
    assert dense.grid_shape(images.shape[1:]) == (5, 7)
    assert out.shape == (3, 5 * 7 * 128) and out.dtype == np.float32
    for image, row in zip(images, out):
        blocks = hog(image, orientations=8, pixels_per_cell=(4, 4), cells_per_block=(4, 4),
                     block_norm="L2-Hys", feature_vector=False, channel_axis=-1)
        np.testing.assert_allclose(row.reshape(5, 7, 128), blocks.reshape(5, 7, 128), atol=1e-6)


def test_dense_hog_is_deterministic_and_per_image(rng):
    images = rng.integers(0, 256, (5, 24, 24, 1), dtype=np.uint8)
    dense = make_features("dense-hog")
    whole = dense.transform(images)
    np.testing.assert_array_equal(whole, dense.transform(images))
    np.testing.assert_array_equal(whole[2:3], dense.transform(images[2:3]))


def test_dense_hog_degrades_gracefully_on_small_images(rng):
    dense = DenseHOG()  # 4-pixel cells, 4x4 cells per block, at least 3 blocks a side
    # 8x8 digits: the cells shrink to 1 pixel so that a 3x3 grid of 4x4-pixel blocks fits
    assert dense.cell_size((8, 8)) == 1 and dense.grid_shape((8, 8)) == (5, 5)
    assert dense.transform(rng.integers(0, 256, (2, 8, 8, 1))).shape == (2, 25 * 128)
    # a 1-pixel-high row (tabular data) is edge-padded to one block
    rows = rng.normal(size=(3, 6))
    assert dense.grid_shape((1, 6, 1)) == (1, 3)
    out = dense.transform(rows)
    assert out.shape == (3, 3 * 128) and np.isfinite(out).all()
    assert dense.transform(rows[:, :5]).shape == (3, 2 * 128)


def test_visual_words_histograms_are_normalised_per_level(rng):
    descriptors = rng.random((20, 4 * 4 * 3)).astype(np.float32)  # 20 images, 4x4 grid, 3 values
    words = VisualWords(grid_shape=(4, 4), descriptor_size=3, n_words=8, soft_neighbors=1).fit(descriptors)
    hist = words.transform(descriptors)
    assert hist.shape == (20, 8 + 4 * 8)
    np.testing.assert_allclose(hist[:, :8].sum(axis=1), 1, rtol=1e-5)  # the whole grid
    np.testing.assert_allclose(hist[:, 8:].sum(axis=1), 1, rtol=1e-5)  # its four quarters
    # hard assignment (one neighbour) counts each descriptor's nearest word, as KMeans says
    nearest = words.codebook_.predict(descriptors.reshape(-1, 3)).reshape(20, 16)
    expected = np.stack([np.bincount(n, minlength=8) / 16 for n in nearest])
    np.testing.assert_allclose(hist[:, :8], expected, atol=1e-6)
    # the top-left quarter holds grid points (0, 0), (0, 1), (1, 0), (1, 1)
    top_left = np.stack([np.bincount(n[[0, 1, 4, 5]], minlength=8) / 4 / 4 for n in nearest])
    np.testing.assert_allclose(hist[:, 8:16], top_left, atol=1e-6)


def striped(n, seed, vertical):
    """n noisy 32x32 grey images of stripes, vertical or horizontal."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (n, 32, 32, 1)).astype(np.uint8)
    stripes = (np.arange(32) // 4 % 2 == 0)
    if vertical:
        images[:, :, stripes] += 150
    else:
        images[:, stripes] += 150
    return images


def test_codebook_sees_only_the_training_fold(monkeypatch):
    # Train and test images are distinct noisy images, so their descriptors are distinct;
    # the runner's cell fits on cached features of all images, rows selected by the split.
    images = np.concatenate([striped(40, 0, True), striped(40, 1, False)])
    labels = np.array(["v"] * 40 + ["h"] * 40)
    train = np.r_[0:30, 40:70]
    test = np.r_[30:40, 70:80]
    seen = []
    original_fit = MiniBatchKMeans.fit

    def spy_fit(self, X, *args, **kwargs):
        seen.append(np.array(X, copy=True))
        return original_fit(self, X, *args, **kwargs)

    monkeypatch.setattr(MiniBatchKMeans, "fit", spy_fit)
    estimator = create_estimator("svm-bovw")
    features = estimator.feature_extractor().transform(images)
    task = CellTask("stripes", "svm-bovw", 0, "key", estimator, Split(train, test, 0),
                    images.shape[1:], (0.0, "computed"), threads=1)
    cell = run_cell(task, features, labels)
    assert cell.status == "ok", cell.error
    assert cell.scores["accuracy"] == 1.0
    assert len(seen) == 1
    descriptor_size = DenseHOG().descriptor_size
    clustered = {row.tobytes() for row in seen[0]}
    train_descriptors = {row.tobytes() for row in features[train].reshape(-1, descriptor_size)}
    test_descriptors = {row.tobytes() for row in features[test].reshape(-1, descriptor_size)}
    test_only = test_descriptors - train_descriptors
    assert len(test_only) > 0.9 * len(test) * 25  # the test images are told apart from training
    assert clustered <= train_descriptors
    assert not clustered & test_only


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    return np.rint(data.images * 255 / 16).astype(np.uint8), data.target.astype(str)


@pytest.mark.slow
def test_accuracy_on_digits_is_above_a_floor(digits):
    images, labels = digits
    estimator = create_estimator("svm-bovw").fit(images[:1000], labels[:1000])
    accuracy = np.mean(estimator.predict(images[1000:]) == labels[1000:])
    assert accuracy >= 0.9  # measured 0.957; ten classes, so chance is 0.1
    proba = estimator.predict_proba(images[1000:])
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)


@pytest.mark.slow
def test_same_random_state_same_predictions(digits):
    images, labels = digits
    images, labels, test = images[:300], labels[:300], images[300:500]
    first = create_estimator("svm-bovw", random_state=3).fit(images, labels)
    second = create_estimator("svm-bovw", random_state=3).fit(images, labels)
    np.testing.assert_array_equal(first.predict_proba(test), second.predict_proba(test))
    other = create_estimator("svm-bovw", random_state=4).fit(images, labels)
    assert not np.array_equal(first.head_["words"].words_, other.head_["words"].words_)


def test_colour_histograms_are_appended_to_the_words(rng):
    images = rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    labels = np.array(["a", "b", "c"] * 10)
    estimator = create_estimator("svm-bovw-color-hist", n_words=16).fit(images, labels)
    encoded = estimator.head_[:-2].transform(estimator.feature_extractor().transform(images))
    assert encoded.shape == (30, 16 * 5 + 3 * 16)
    np.testing.assert_allclose(encoded[:, 16 * 5:].reshape(30, 3, 16).sum(axis=2), 1, rtol=1e-5)


def test_features_must_start_with_dense_descriptors():
    with pytest.raises(ValueError, match="must start with dense local descriptors"):
        BagOfVisualWordsImageClassifier(features="hog").fit(np.zeros((4, 16, 16, 1), np.uint8), [0, 1, 0, 1])


def test_search_space_names_constructor_parameters():
    space = benchmark_tags(BagOfVisualWordsImageClassifier()).search_space
    assert set(space) <= set(BagOfVisualWordsImageClassifier().get_params())
    for params in ParameterSampler(space, n_iter=5, random_state=0):
        assert create_estimator("svm-bovw", **params).get_params()["n_words"] == params["n_words"]


def test_auto_cells_grow_with_large_images_and_keep_4_pixels_up_to_64():
    dense = DenseHOG()
    assert [dense.cell_size((s, s, 3)) for s in (32, 64, 128, 256)] == [4, 4, 8, 16]
    assert dense.grid_shape((128, 128, 3)) == (13, 13) == dense.grid_shape((64, 64, 3))
    with pytest.raises(ValueError, match="pixels_per_cell must be 'auto' or a whole number"):
        DenseHOG(pixels_per_cell="big").transform(np.zeros((1, 32, 32, 3), np.uint8))
