"""Random convolutional features and their streamed ridge classifier (estimators/random_features.py,
estimators/normal_equations.py): the definition, the reference solvers, what is learned from what."""

import numpy as np
import pytest
from scipy import linalg
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split

from benchmark.data import load_dataset
from benchmark.data.protocols import Split
from benchmark.execution.cells import CellTask, run_cell
from estimators import create_estimator, normal_equations, random_features
from estimators.normal_equations import StreamingRidgeClassifier, TiledGram
from estimators.random_features import RandomConvFeatures
from features import RawPixels

from test_patches import striped_images  # tests/ is on sys.path


def naive_features(encoder, image):
    """The encoder's features of one image, patch by patch: the definition (float64)."""
    from estimators import patches

    ph, pw = encoder.patch_shape_
    rows, cols = image.shape[0] - ph + 1, image.shape[1] - pw + 1
    n_filters = encoder.weights_.shape[1]
    pooled = np.zeros((2, 2, 2, n_filters))
    for r in range(rows):
        for c in range(cols):
            patch = image[r : r + ph, c : c + pw].transpose(2, 0, 1).ravel().astype(np.float64)
            patch = (patch - patch.mean()) / np.sqrt(patch.var() + patches.NORM_EPSILON)
            z = patch @ encoder.weights_ - encoder.offset_
            where = (int(r >= rows // 2), int(c >= cols // 2))
            pooled[0][where] += np.maximum(z - encoder.bias, 0)
            pooled[1][where] += np.maximum(-z - encoder.bias, 0)
    return pooled.reshape(2, 4, n_filters).ravel()


@pytest.mark.parametrize("images_per_task, filter_block", [(1, 3), (4, 256), (7, 5)])
def test_chunked_encoding_equals_the_patch_by_patch_definition(monkeypatch, images_per_task, filter_block):
    monkeypatch.setattr(random_features, "IMAGES_PER_TASK", images_per_task)
    monkeypatch.setattr(random_features, "FILTER_BLOCK", filter_block)
    rng = np.random.default_rng(0)
    images = rng.random((20, 11, 9, 3)).astype(np.float32)
    encoder = RandomConvFeatures((11, 9, 3), n_filters=13, patch_size=3, random_state=0)
    encoder.fit(images.reshape(20, -1))
    assert encoder.n_features_out() == 2 * 4 * 13
    encoded = encoder.transform(images[:9].reshape(9, -1))
    assert encoded.shape == (9, 104) and encoded.dtype == np.float32
    expected = np.stack([naive_features(encoder, image) for image in images[:9]])
    np.testing.assert_allclose(encoded, expected, rtol=1e-4, atol=1e-3)
    # about half the responses clear the bias of a quarter of each filter's spread
    assert 0.2 < np.mean(encoded > 0) <= 1


@pytest.mark.parametrize("tile", [64, 100, 4096])
def test_the_tiled_normal_equations_equal_a_dense_solve(tile):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 257)).astype(np.float32) + 2
    gram = TiledGram(257, tile)
    for start in range(0, 400, 61):
        gram.add(X[start : start + 61])
    dense = X.astype(np.float64).T @ X
    np.testing.assert_allclose(gram.diagonal(), np.diag(dense), rtol=1e-5)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    gram.centre_scale(mean, scale, 400, 7.0)
    system = (dense - 400 * np.outer(mean, mean)) / np.outer(scale, scale) + 7 * np.eye(257)
    rhs = rng.standard_normal((257, 3))
    np.testing.assert_allclose(gram.cholesky().solve(rhs), linalg.solve(system, rhs, assume_a="pos"),
                               rtol=1e-3, atol=1e-4)
    assert TiledGram.bytes_needed(257, tile) == sum(a.nbytes for a in gram.tiles.values())  # float64 now


def test_streamed_ridge_equals_scikit_learn_ridge_on_the_whole_feature_matrix(monkeypatch):
    """Chunks of 7 rows and tiles of 50 features give scikit-learn's Ridge on standardised
    features with the same penalty: the same scores, the same predictions."""
    monkeypatch.setattr("estimators.normal_equations.TILE", 50)
    rng = np.random.default_rng(2)
    images, labels = striped_images(60, rng, 0, 255)
    labels = labels.copy()
    labels[::5] = "plain"
    X = RawPixels().transform(images)
    encoder = RandomConvFeatures((12, 12, 3), n_filters=20, patch_size=4, random_state=0)
    head = StreamingRidgeClassifier(encoder, alpha=3.0, chunk_size=7, n_holdout=0).fit(X, labels)
    features = head.encoder_.transform(X)
    assert features.shape[1] == head.n_random_features_ == 160
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    targets = (labels[:, np.newaxis] == head.classes_).astype(float)
    reference = Ridge(alpha=3.0).fit((features - mean) / scale, targets)
    expected = reference.predict((features - mean) / scale)
    np.testing.assert_allclose(head.decision_function(X), expected, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(head.predict(X), head.classes_[expected.argmax(axis=1)])
    assert head.temperature_ == 1.0  # no held-out rows: nothing to fit it on


def test_the_temperature_comes_from_held_out_scores_of_a_model_that_did_not_see_them():
    """The block downdate gives the held-out rows' scores of the ridge fitted without them:
    the same as fitting that ridge (same centring and scale) and scoring them; the temperature
    is the best (log loss) for those scores."""
    from scipy.special import log_softmax

    rng = np.random.default_rng(3)
    images, labels = striped_images(80, rng, 0, 255)
    labels = labels.copy()
    labels[::6] = np.where(labels[::6] == "across", "down", "across")  # some noise: errors held out
    X = RawPixels().transform(images)
    encoder = RandomConvFeatures((12, 12, 3), n_filters=10, patch_size=4, random_state=0)
    head = StreamingRidgeClassifier(encoder, alpha=1.0, n_holdout=8, random_state=0).fit(X, labels)
    held = head._held_out(len(X))
    assert len(held) == 8
    features = head.encoder_.transform(X).astype(np.float64)
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    z = (features - mean) / scale
    targets = (labels[:, np.newaxis] == head.classes_).astype(float)
    rest = np.setdiff1d(np.arange(len(X)), held)
    system = z[rest].T @ z[rest] + 1.0 * np.eye(z.shape[1])
    # the rest's own sums, around the whole training set's centre (as the downdate keeps it)
    weights = linalg.solve(system, z[rest].T @ (targets[rest] - targets.mean(axis=0)))
    expected = z[held] @ weights + targets.mean(axis=0)
    np.testing.assert_allclose(head.holdout_scores_, expected, rtol=1e-3, atol=1e-3)
    codes = np.searchsorted(head.classes_, labels[held])

    def loss(t):
        return -log_softmax(t * expected, axis=1)[np.arange(len(held)), codes].mean()

    grid = np.exp(np.linspace(-3, 6, 2000))
    assert loss(head.temperature_) <= min(loss(t) for t in grid) + 1e-4


def test_paired_halves_hold_out_an_image_with_its_mirror():
    head = StreamingRidgeClassifier(None, n_holdout=5, paired_halves=True, random_state=0)
    held = head._held_out(200)
    assert len(held) == 10
    np.testing.assert_array_equal(held[5:], held[:5] + 100)


def test_filters_whitening_and_classifier_see_only_training_images(monkeypatch):
    """Under the runner (pixels cached for the whole dataset, rows picked per fold), every
    image the encoder is fitted on and every row the ridge is accumulated from is a training
    image or its mirror: the test images carry a marker (pixels >= 128) none of them shows."""
    rng = np.random.default_rng(4)
    train_images, train_labels = striped_images(40, rng, 0, 127)
    test_images, test_labels = striped_images(20, rng, 128, 255)
    images = np.concatenate([train_images, test_images])
    labels = np.concatenate([train_labels, test_labels])
    order = rng.permutation(len(images))
    images, labels, is_test = images[order], labels[order], order >= len(train_images)

    seen = {"encoder fit": [], "ridge rows": [], "after fit": []}
    fitting = [False]
    real_encoder_fit, real_transform = RandomConvFeatures.fit, RandomConvFeatures.transform
    real_head_fit = StreamingRidgeClassifier.fit

    def spy_encoder_fit(self, X, y=None):
        seen["encoder fit"].append(np.array(X))
        return real_encoder_fit(self, X, y)

    def spy_transform(self, X):
        seen["ridge rows" if fitting[0] else "after fit"].append(np.array(X))
        return real_transform(self, X)

    def spy_head_fit(self, X, y):
        fitting[0] = True
        try:
            return real_head_fit(self, X, y)
        finally:
            fitting[0] = False

    monkeypatch.setattr(RandomConvFeatures, "fit", spy_encoder_fit)
    monkeypatch.setattr(RandomConvFeatures, "transform", spy_transform)
    monkeypatch.setattr(StreamingRidgeClassifier, "fit", spy_head_fit)

    template = create_estimator("ridge-random-features", n_filters=16)
    features = template.cell_extractor().transform(images)  # what the feature cache holds
    split = Split(np.flatnonzero(~is_test), np.flatnonzero(is_test), 0)
    task = CellTask("striped", "ridge-random-features", 0, "key", template, split, images.shape[1:],
                    (0.0, "memory"), threads=1)
    cell = run_cell(task, features, labels)

    assert cell.status == "ok", cell.error
    assert cell.scores["accuracy"] >= 0.8
    assert cell.diagnostics["augmentation"] == "mirror (train + test)"
    fitted_on = seen["encoder fit"][0]
    assert len(fitted_on) == 80 and fitted_on.max() <= 127 / 255  # 40 images and their mirrors
    rows = np.concatenate(seen["ridge rows"])
    assert len(rows) == 80 and rows.max() <= 127 / 255
    training = RawPixels().transform(images[~is_test])
    mirrors = RawPixels().transform(images[~is_test][:, :, ::-1])
    assert {r.tobytes() for r in rows} == {r.tobytes() for r in np.concatenate([training, mirrors])}
    assert max(x.max() for x in seen["after fit"]) >= 128 / 255  # the spy would have seen the marker


def test_too_many_features_for_the_memory_is_refused_before_any_work(monkeypatch):
    monkeypatch.setattr(normal_equations, "available_memory", lambda: 2 * 2**30)
    encoded = []
    monkeypatch.setattr(RandomConvFeatures, "fit", lambda self, X, y=None: encoded.append(X))
    images, labels = striped_images(40, np.random.default_rng(5), 0, 255)
    estimator = create_estimator("ridge-random-features", n_filters=4096)  # 32,768 features
    with pytest.raises(ValueError) as error:
        estimator.fit(images, labels)
    message = str(error.value)
    assert message.startswith("32,768 random features need 5.3 GiB for the normal equations")
    assert "2.0 GiB is available; use at most" in message
    largest = int(message.split("use at most ")[1].split(" ")[0].replace(",", ""))
    assert StreamingRidgeClassifier.memory_needed(largest, 8, 1024) <= 2 * 2**30
    assert 10_000 < largest < 32_768 and not encoded


def test_images_smaller_than_the_patch_get_patches_of_half_their_side():
    rng = np.random.default_rng(6)
    images = rng.integers(0, 255, (30, 3, 3, 1)).astype(np.uint8)
    labels = np.array(["a", "b"] * 15)
    estimator = create_estimator("ridge-random-features", n_filters=8).fit(images, labels)
    assert estimator.head_.encoder_.patch_shape_ == (1, 1)
    assert estimator.predict_proba(images).shape == (30, 2)


def test_same_seed_same_scores():
    images, labels = striped_images(40, np.random.default_rng(7), 0, 255)
    first = create_estimator("ridge-random-features", n_filters=16).fit(images, labels)
    second = create_estimator("ridge-random-features", n_filters=16).fit(images, labels)
    np.testing.assert_array_equal(first.predict_proba(images), second.predict_proba(images))


@pytest.mark.parametrize("dataset, floor", [("digits", 0.97), ("shapes", 0.45)])
def test_accuracy_floor_on_the_embedded_datasets(dataset, floor):
    """Held-out accuracy of the run --all defaults (chance: 0.10 on digits, 0.25 on shapes; on
    shapes, the best classical estimator of run --all reaches about 0.57)."""
    data = load_dataset(dataset)
    mirror = data.mirror_invariant
    X_train, X_test, y_train, y_test = train_test_split(data.images, data.labels, test_size=0.3,
                                                        stratify=data.labels, random_state=0)
    estimator = create_estimator("ridge-random-features", mirror=mirror).fit(X_train, y_train)
    assert estimator.augmentation_ == ("mirror (train + test)" if mirror else "none")
    assert np.mean(estimator.predict(X_test) == y_test) >= floor
