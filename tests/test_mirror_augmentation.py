"""Mirror augmentation of classical estimators (features/mirror.py, estimators/base.py): features of
mirrors cached like any others, the training rows doubled only where a mirror keeps the labels,
the test fold never touched, and the report saying what was done."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from benchmark import run_benchmark
from benchmark.execution.code_identity import estimator_identity
from estimators import create_estimator
from estimators.base import FeatureClassifier
from features import HOG, RawPixels, make_features
from features.cache import FeatureCache
from features.mirror import Mirrored, with_mirror, without_mirror

from test_patches import striped_images  # tests/ is on sys.path


class MirrorLogReg(FeatureClassifier):
    """Logistic regression on pixels with a mirror switch, and a spy on what its head sees."""

    def __init__(self, mirror=True, features="pixels"):
        self.mirror = mirror
        self.features = features

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.parameters.mirror_augmentation = "mirror"
        return tags

    def _make_head(self):
        return SpyLogReg()


class SpyLogReg(LogisticRegression):
    rows = []

    def fit(self, X, y):
        SpyLogReg.rows.append(np.array(X))
        return super().fit(X, y)


def test_mirror_features_are_the_features_of_the_mirrored_images_beside_the_originals():
    images, _ = striped_images(6, np.random.default_rng(0), 0, 255)
    extractor = make_features("hog+color-moments")
    both = with_mirror(extractor).transform(images)
    plain = extractor.transform(images)
    np.testing.assert_array_equal(both[:, : plain.shape[1]], plain)
    np.testing.assert_array_equal(both[:, plain.shape[1] :], extractor.transform(images[:, :, ::-1]))
    assert without_mirror(with_mirror(extractor)) is extractor


def test_the_cache_shares_the_original_half_and_keys_the_mirror_apart(tmp_path):
    images, _ = striped_images(6, np.random.default_rng(1), 0, 255)
    cache = FeatureCache(tmp_path)
    _, first = cache.transform(with_mirror(HOG()), images, "fp")
    assert first.source == "computed"
    _, plain = cache.transform(HOG(), images, "fp")  # the image half, computed once already
    assert plain.source == "memory"
    assert len(list(tmp_path.glob("*.npy"))) == 2  # HOG of the images, HOG of their mirrors
    _, other = cache.transform(Mirrored(RawPixels()), images, "fp")
    assert other.source == "computed"


def test_training_rows_are_doubled_and_test_predictions_averaged():
    images, labels = striped_images(20, np.random.default_rng(2), 0, 255)
    SpyLogReg.rows.clear()
    estimator = MirrorLogReg().fit(images, labels)
    assert len(SpyLogReg.rows[0]) == 40 and estimator.augmentation_ == "mirror (train + test)"
    pixels = RawPixels().transform(images)
    mirrors = RawPixels().transform(images[:, :, ::-1])
    np.testing.assert_array_equal(SpyLogReg.rows[0], np.concatenate([pixels, mirrors]))
    expected = (estimator.head_.predict_proba(pixels) + estimator.head_.predict_proba(mirrors)) / 2
    np.testing.assert_allclose(estimator.predict_proba(images), expected)
    np.testing.assert_array_equal(estimator.predict(images), estimator.classes_[expected.argmax(axis=1)])

    train_only = MirrorLogReg(mirror="train").fit(images, labels)
    assert train_only.augmentation_ == "mirror (train only)"
    np.testing.assert_allclose(train_only.predict_proba(images), train_only.head_.predict_proba(pixels))

    SpyLogReg.rows.clear()
    off = MirrorLogReg(mirror=False).fit(images, labels)
    assert len(SpyLogReg.rows[0]) == 20 and off.augmentation_ == "none"
    assert create_estimator("logreg-pixels").fit(images, labels).augmentation_ is None  # no switch


def test_a_mirror_value_that_is_not_a_mode_is_one_line():
    images, labels = striped_images(20, np.random.default_rng(3), 0, 255)
    with pytest.raises(ValueError, match=r"mirror must be one of False, True or 'train'; got 'both'"):
        MirrorLogReg(mirror="both").fit(images, labels)


def test_the_mirror_module_is_part_of_a_mirroring_estimators_code_identity():
    files = estimator_identity(create_estimator("ridge-random-features"))["modules"]
    assert any(path.endswith("features/mirror.py") for path in files)


@pytest.mark.slow
def test_the_runner_mirrors_only_where_a_mirror_keeps_the_labels_and_the_report_says_so(tmp_path):
    name = "ridge-random-features[n_filters=8]"
    result = run_benchmark(["digits", "shapes"], [name], folds=2, seed=0, out=tmp_path / "run")
    cells = {(c.dataset, c.fold): c for c in result.cells}
    assert all(c.status == "ok" for c in cells.values())
    for fold in (0, 1):
        assert cells["shapes", fold].diagnostics["augmentation"] == "mirror (train + test)"
        assert cells["digits", fold].diagnostics["augmentation"] == "none"
        # the test fold's predictions are one per test image: nothing of it was doubled
        assert len(cells["shapes", fold].y_pred) == cells["shapes", fold].n_test == 400
    report = (tmp_path / "run" / "report.md").read_text().replace("\\", "")  # Markdown escapes
    assert (f"Mirror augmentation of the classical estimators: {name}: not applied (a mirror "
            "changes this dataset's labels).") in report
    assert f"{name}: mirror (train + test)." in report
