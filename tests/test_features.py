import numpy as np
import pytest
from scipy import stats
from skimage.feature import hog, local_binary_pattern
from sklearn.pipeline import FeatureUnion

from features import HOG, LBP, ColorHistogram, ColorMoments, RawPixels, make_features


def skimage_hog(images, **params):
    return np.stack([
        hog(x, channel_axis=-1, **params) if x.shape[-1] > 1 else hog(x[..., 0], **params)
        for x in images
    ])


@pytest.mark.parametrize(
    "shape, dtype, params",
    [
        ((6, 32, 32, 3), np.uint8, dict(pixels_per_cell=(8, 8), cells_per_block=(2, 2))),
        ((6, 25, 25, 1), np.uint8, dict(pixels_per_cell=(6, 6), cells_per_block=(2, 2), block_norm="L2")),
        ((6, 33, 41, 3), np.float32, dict(pixels_per_cell=(5, 7), cells_per_block=(3, 2), block_norm="L1")),
        ((6, 8, 8, 1), np.float64, dict(pixels_per_cell=(2, 2), cells_per_block=(2, 2), block_norm="L1-sqrt")),
        ((6, 24, 24, 3), np.uint8, dict(orientations=7, pixels_per_cell=(4, 4), cells_per_block=(1, 1))),
        ((6, 24, 20, 3), np.uint8, dict(orientations=12, pixels_per_cell=(6, 5), cells_per_block=(2, 2), transform_sqrt=True)),
    ],
)
def test_hog_equals_skimage(rng, shape, dtype, params):
    images = rng.integers(0, 256, shape).astype(dtype)
    if dtype != np.uint8:
        images = (images / 255).astype(dtype)
    ours = HOG(**params).transform(images)
    reference = skimage_hog(images, **params)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=1e-6, rtol=0)


def test_hog_equals_skimage_on_real_photo():
    from skimage.data import astronaut

    image = astronaut()[::4, ::4][np.newaxis]  # 128x128 RGB with real edges
    params = dict(pixels_per_cell=(16, 16), cells_per_block=(3, 3))
    np.testing.assert_allclose(HOG(**params).transform(image), skimage_hog(image, **params),
                               atol=1e-6, rtol=0)


def test_hog_auto_cells_give_a_four_by_four_grid(rng):
    for side in (8, 32, 64):
        images = rng.integers(0, 256, (2, side, side, 1), dtype=np.uint8)
        assert HOG().transform(images).shape == (2, 3 * 3 * 2 * 2 * 9)


def test_hog_too_small_image_says_the_minimum():
    with pytest.raises(ValueError, match=r"at least 16x16 pixels.*got 10x10"):
        HOG(pixels_per_cell=(8, 8)).transform(np.zeros((1, 10, 10, 3), np.uint8))


def test_color_moments_equal_scipy(rng):
    images = rng.integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)
    ours = ColorMoments().transform(images).reshape(5, 4, 4)  # (image, plane, moment)
    x = images.reshape(5, -1, 3) / 255.0
    lum = x @ np.array([0.2125, 0.7154, 0.0721])
    planes = [x[..., 0], x[..., 1], x[..., 2], lum]
    for p, plane in enumerate(planes):
        np.testing.assert_allclose(ours[:, p, 0], plane.mean(axis=1), atol=1e-6)
        np.testing.assert_allclose(ours[:, p, 1], plane.var(axis=1), atol=1e-6)
        np.testing.assert_allclose(ours[:, p, 2], stats.skew(plane, axis=1), atol=1e-4)
        np.testing.assert_allclose(ours[:, p, 3], stats.kurtosis(plane, axis=1), atol=1e-4)


def test_color_moments_of_a_flat_image_are_finite():
    out = ColorMoments().transform(np.full((1, 4, 4, 1), 7, np.uint8))
    np.testing.assert_allclose(out, [[7 / 255, 0, 0, 0]], atol=1e-7)


def test_color_histogram_equals_numpy(rng):
    images = rng.integers(0, 256, (3, 9, 7, 3), dtype=np.uint8)
    ours = ColorHistogram(bins=8).transform(images).reshape(3, 3, 8)
    for i in range(3):
        for c in range(3):
            counts, _ = np.histogram(images[i, ..., c], bins=8, range=(0, 256))
            np.testing.assert_allclose(ours[i, c], counts / 63, atol=1e-7)


def test_lbp_equals_skimage_histogram(rng):
    images = rng.integers(0, 256, (3, 20, 20, 1), dtype=np.uint8)
    ours = LBP(n_points=8, radius=1).transform(images)
    for i in range(3):
        codes = local_binary_pattern(images[i, ..., 0], 8, 1, method="uniform")
        counts = np.bincount(codes.astype(int).ravel(), minlength=10)
        np.testing.assert_allclose(ours[i], counts / counts.sum(), atol=1e-7)
    assert LBP(grid=2).transform(images).shape == (3, 40)


def test_raw_pixels_scale_integers_and_keep_floats(rng):
    images = rng.integers(0, 256, (2, 3, 3, 3), dtype=np.uint8)
    np.testing.assert_allclose(RawPixels().transform(images), images.reshape(2, -1) / 255, atol=1e-7)
    floats = images / 255.0
    np.testing.assert_allclose(RawPixels().transform(floats), floats.reshape(2, -1), atol=1e-7)


def test_feature_spec_builds_a_union_of_the_named_extractors(rng):
    union = make_features("hog+color-moments")
    assert isinstance(union, FeatureUnion)
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    expected = np.hstack([HOG().transform(images), ColorMoments().transform(images)])
    np.testing.assert_array_equal(union.fit_transform(images), expected)
    with pytest.raises(ValueError, match="unknown feature 'sift'.*choose from"):
        make_features("hog+sift")


def test_threads_do_not_change_features(rng):
    images = rng.integers(0, 256, (1500, 16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(HOG(n_jobs=1).transform(images), HOG(n_jobs=2).transform(images))


@pytest.mark.parametrize("bad, message", [
    (np.zeros((0, 8, 8, 3)), "0 sample"),
    (np.full((2, 8, 8, 3), np.nan), "NaN"),
    (np.zeros((2, 8, 8, 3, 1)), "shape"),
])
def test_bad_image_batches_are_refused_with_a_reason(bad, message):
    with pytest.raises(ValueError, match=message):
        RawPixels().transform(bad)
