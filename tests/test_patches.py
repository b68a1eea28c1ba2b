"""Coates & Ng's learned patch features (estimators/patches.py): what is learned, and from what."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.model_selection import ParameterSampler, train_test_split

from benchmark.data.protocols import Split
from benchmark.execution.cells import CellTask, run_cell
from estimators import create_estimator
from estimators import patches
from estimators.patches import PatchEncoder, PatchKMeansImageClassifier
from estimators.tags import benchmark_tags
from features import RawPixels


def striped_images(n, rng, low, high):
    """n 12x12 RGB images with pixels in [low, high]: even ones striped across, odd ones down."""
    images = rng.integers(low, (low + high) // 2, (n, 12, 12, 3))
    images[0::2, ::3] += (high - low) // 2
    images[1::2, :, ::3] += (high - low) // 2
    return images.astype(np.uint8), np.array(["across", "down"] * (n // 2))


def test_dictionary_and_whitening_learn_from_training_images_only(monkeypatch):
    """Under the runner (features cached for the whole dataset, rows picked per fold), every
    patch that reaches the whitening and the dictionary comes from a training image: the test
    images carry a marker (pixels >= 128, training pixels are <= 127) that none of them shows."""
    rng = np.random.default_rng(0)
    train_images, train_labels = striped_images(40, rng, 0, 127)
    test_images, test_labels = striped_images(20, rng, 128, 255)
    images = np.concatenate([train_images, test_images])
    labels = np.concatenate([train_labels, test_labels])
    order = rng.permutation(len(images))  # interleave them, as folds of a dataset are
    images, labels = images[order], labels[order]
    is_test = order >= len(train_images)

    fitting, seen_in_fit, seen_later, kmeans_rows = [False], [], [], []
    real_normalise, real_fit = patches._normalise, PatchEncoder.fit

    def spy_normalise(raw):
        (seen_in_fit if fitting[0] else seen_later).append(np.array(raw))
        return real_normalise(raw)

    def spy_fit(self, X, y=None):
        fitting[0] = True
        try:
            return real_fit(self, X, y)
        finally:
            fitting[0] = False

    class SpyKMeans(patches.MiniBatchKMeans):
        def fit(self, X, y=None, sample_weight=None):
            kmeans_rows.append(len(X))
            return super().fit(X, y, sample_weight)

    monkeypatch.setattr(patches, "_normalise", spy_normalise)
    monkeypatch.setattr(PatchEncoder, "fit", spy_fit)
    monkeypatch.setattr(patches, "MiniBatchKMeans", SpyKMeans)

    features = RawPixels().transform(images)  # what the feature cache holds
    split = Split(np.flatnonzero(~is_test), np.flatnonzero(is_test), 0)
    template = create_estimator("logreg-kmeans-patches", n_centroids=8, n_patches=500)
    task = CellTask("striped", "logreg-kmeans-patches", 0, "key", template, split, images.shape[1:],
                    (0.0, "memory"), threads=1)
    cell = run_cell(task, features, labels)

    assert cell.status == "ok", cell.error
    assert cell.scores["accuracy"] >= 0.8  # the stripes were learned (chance: 0.5)
    # the sampled patches the whitening and dictionary are learned from: 500 of the training
    # images' 40 x 7 x 7 positions, 6x6x3 values each, none with a test image's pixel
    assert len(seen_in_fit) == 1 and seen_in_fit[0].shape == (500, 108)
    assert seen_in_fit[0].max() <= 127 / 255
    assert kmeans_rows == [500]
    # the spy would have seen the marker: predicting on the test rows encodes it
    assert max(raw.max() for raw in seen_later) >= 128 / 255


def naive_encoding(encoder, image):
    """The encoder's features of one image, patch by patch with scipy's cdist: the definition."""
    ph, pw = encoder.patch_shape_
    rows, cols = image.shape[0] - ph + 1, image.shape[1] - pw + 1
    pooled = np.zeros((2, 2, encoder.n_centroids_))
    for r in range(rows):
        for c in range(cols):
            patch = image[r : r + ph, c : c + pw].transpose(2, 0, 1).ravel().astype(np.float64)
            patch = (patch - patch.mean()) / np.sqrt(patch.var() + patches.NORM_EPSILON)
            z = cdist([(patch - encoder.mean_) @ encoder.whitening_], encoder.centroids_)[0]
            pooled[int(r >= rows // 2), int(c >= cols // 2)] += np.maximum(0, z.mean() - z)
    return pooled.ravel()


def test_encoding_is_the_triangle_code_summed_over_quadrants():
    rng = np.random.default_rng(1)
    images = rng.random((30, 11, 9, 3)).astype(np.float32)
    encoder = PatchEncoder((11, 9, 3), patch_size=3, n_centroids=7, random_state=0)
    encoder.fit(images.reshape(30, -1))
    assert encoder.patch_shape_ == (3, 3) and encoder.n_centroids_ == 7
    encoded = encoder.transform(images[:3].reshape(3, -1))
    assert encoded.shape == (3, 4 * 7) and encoded.dtype == np.float32
    expected = np.stack([naive_encoding(encoder, image) for image in images[:3]])
    np.testing.assert_allclose(encoded, expected, rtol=1e-4, atol=1e-3)


def test_whitening_decorrelates_the_training_patches():
    rng = np.random.default_rng(2)
    images = rng.random((50, 8, 8, 1)).astype(np.float32)
    images = images + np.roll(images, 1, axis=2)  # neighbouring pixels correlated
    encoder = PatchEncoder((8, 8, 1), patch_size=4, n_centroids=5, whiten_epsilon=1e-6,
                           random_state=0).fit(images.reshape(50, -1))
    windows = np.lib.stride_tricks.sliding_window_view(images, (4, 4), axis=(1, 2))
    normalised = patches._normalise(windows.reshape(-1, 16))
    whitened = (normalised - encoder.mean_) @ encoder.whitening_
    covariance = np.cov(whitened, rowvar=False)
    # all 50 x 5 x 5 patches were sampled (fewer than n_patches); the mean removal leaves one
    # direction with zero variance, every other one has variance 1
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(covariance))[1:], 1, atol=1e-2)


def test_accuracy_on_the_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.images[..., np.newaxis] * (255 / 16)).astype(np.uint8)
    X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.25,
                                                        stratify=digits.target, random_state=0)
    estimator = create_estimator("logreg-kmeans-patches", n_centroids=100).fit(X_train, y_train)
    assert estimator.head_["patches"].patch_shape_ == (4, 4)  # capped at half the 8-pixel side
    assert estimator.n_iter_[0] >= 1
    assert np.mean(estimator.predict(X_test) == y_test) >= 0.97


def test_same_random_state_same_model_and_threads_do_not_change_it(monkeypatch):
    rng = np.random.default_rng(3)
    X, y = striped_images(40, rng, 0, 255)
    fit = lambda seed, **kw: create_estimator("logreg-kmeans-patches", n_centroids=12, n_patches=800,  # noqa: E731
                                              random_state=seed, **kw).fit(X[:30], y[:30])
    first, second, other = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(first.head_["patches"].centroids_, second.head_["patches"].centroids_)
    np.testing.assert_array_equal(first.predict_proba(X[30:]), second.predict_proba(X[30:]))
    assert not np.allclose(first.head_["patches"].centroids_, other.head_["patches"].centroids_)
    # many small chunks on 2 threads: the same features as one chunk on 1 thread (to float32
    # rounding: BLAS sums in another order on matrices of other shapes)
    encoder, rows = first.head_["patches"], X.reshape(len(X), -1) / np.float32(255)
    alone = encoder.set_params(n_jobs=1).transform(rows)
    monkeypatch.setattr(patches, "CHUNK_ELEMENTS", 2000)  # 3 images a chunk
    np.testing.assert_allclose(encoder.set_params(n_jobs=2).transform(rows), alone, rtol=1e-4, atol=1e-5)


def test_the_search_space_names_parameters_the_estimator_has():
    estimator = create_estimator("logreg-kmeans-patches")
    space = benchmark_tags(PatchKMeansImageClassifier()).search_space
    for params in ParameterSampler(space, 5, random_state=0):
        assert set(params) <= set(estimator.get_params())
        estimator.set_params(**params)


def test_predict_refuses_images_of_another_size():
    rng = np.random.default_rng(4)
    X, y = striped_images(20, rng, 0, 255)
    estimator = create_estimator("logreg-kmeans-patches", n_centroids=4).fit(X, y)
    with pytest.raises(ValueError, match="resize"):
        estimator.predict(X[:, :8, :8])


def test_the_ridge_classifier_streams_the_codes_of_a_large_dictionary():
    """`classifier="ridge"` (the 4,000-centroid setting's classifier) fits the streamed ridge on
    the same codes: 4 x centroids features, and digits at least as well as the default."""
    from sklearn.datasets import load_digits

    from estimators.normal_equations import StreamingRidgeClassifier

    digits = load_digits()
    X = (digits.images[..., np.newaxis] * (255 / 16)).astype(np.uint8)
    X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.25,
                                                        stratify=digits.target, random_state=0)
    estimator = create_estimator("logreg-kmeans-patches", n_centroids=300, classifier="ridge")
    estimator.fit(X_train, y_train)
    assert isinstance(estimator.head_, StreamingRidgeClassifier)
    assert estimator.head_.n_random_features_ == 4 * 300
    assert np.mean(estimator.predict(X_test) == y_test) >= 0.97
    np.testing.assert_allclose(estimator.predict_proba(X_test).sum(axis=1), 1, rtol=1e-6)
