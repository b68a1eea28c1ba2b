"""The convolutional networks: every registered estimator of family "cnn", with tiny settings.

TensorFlow is imported only inside the tests (through the estimators or `keras_for`), so
collecting this file stays fast; the lazy-import test checks that the command line and the
registry never load it.
"""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate

import estimators.registry as registry
from estimators import create_estimator, list_estimators, register
from estimators.cnn import CNNClassifier, inner_split
from estimators.tags import benchmark_tags

pytestmark = pytest.mark.slow  # every test here trains a CNN or starts processes

CNN_NAMES = list_estimators(family="cnn")
REPO = Path(__file__).resolve().parents[1]


def min_size(estimator):
    return int(benchmark_tags(estimator).min_input_size or 8)


def tiny(name, **overrides):
    """`name` with tiny training settings; only the parameters the estimator has are set."""
    estimator = create_estimator(name)
    wanted = {"epochs": 2, "batch_size": 8, "input_size": max(8, min_size(estimator)), "verbose": 0}
    wanted.update(overrides)
    params = estimator.get_params()
    return estimator.set_params(**{k: v for k, v in wanted.items() if k in params})


def two_classes(n, size=12, seed=0, labels=("cat", "dog"), channels=3):
    """Trivially separable noisy images: the second class is 140 grey levels brighter."""
    rng = np.random.default_rng(seed)
    y = np.array(labels)[np.arange(n) % 2]
    X = rng.integers(0, 100, (n, size, size, channels), dtype=np.uint8)
    X[y == labels[1]] += 140
    return X, y


def as_bytes(images):
    return {image.tobytes() for image in images}


@pytest.fixture
def keras_fit_calls(monkeypatch):
    """Record (training images, validation images or None) of every keras Model.fit call."""
    from estimators.cnn import keras_for

    keras = keras_for()
    calls, original = [], keras.Model.fit

    def spy(self, x=None, y=None, *args, validation_data=None, **kwargs):
        calls.append((np.array(x), None if validation_data is None else np.array(validation_data[0])))
        return original(self, x, y, *args, validation_data=validation_data, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    return calls


def spying_subclass(base):
    """A subclass of `base` that records the images each `fit` receives (clone keeps it)."""
    return type(f"Spying{base.__name__}", (base,), {
        "fitted_on": [],
        "fit": lambda self, X, y: (type(self).fitted_on.append(np.array(X)), base.fit(self, X, y))[1],
    })


# -- fitted once per estimator on 256 separable 12x12 images with string labels ----------------
@pytest.fixture(scope="module", params=CNN_NAMES)
def fitted(request):
    X, y = two_classes(256)
    estimator = tiny(request.param)
    assert estimator.fit(X, y) is estimator
    return request.param, estimator, X, y


def test_every_cnn_is_a_cnn_classifier():
    assert {"cnn-simple", "cnn-vgg"} <= set(CNN_NAMES)
    for name in CNN_NAMES:
        assert isinstance(create_estimator(name), CNNClassifier)


def test_learns_separable_images_with_string_labels(fitted):
    name, estimator, _, _ = fitted
    X_test, y_test = two_classes(40, seed=1)
    assert list(estimator.classes_) == ["cat", "dog"]
    predicted = estimator.predict(X_test)
    assert predicted.dtype.kind == "U" and set(predicted) <= {"cat", "dog"}
    assert np.mean(predicted == y_test) == 1.0
    proba = estimator.predict_proba(X_test)
    assert proba.shape == (40, 2) and np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    assert np.mean(proba[np.arange(40), (y_test == "dog").astype(int)]) > 0.5


def test_history_has_per_epoch_training_and_validation_metrics(fitted):
    name, estimator, X, _ = fitted
    history = estimator.history_
    assert 1 <= estimator.n_epochs_ <= estimator.epochs
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(history[key]) == estimator.n_epochs_, key
        assert all(isinstance(v, float) and np.isfinite(v) for v in history[key]), key
    assert all(0 <= v <= 1 for v in history["accuracy"] + history["val_accuracy"])
    assert history["accuracy"][-1] >= 0.9
    assert history["loss"][-1] < history["loss"][0]
    assert estimator.n_validation_ > 0 and estimator.n_train_ + estimator.n_validation_ == len(X)
    json.dumps(history)  # plain floats: the runner can save it


def test_same_random_state_gives_identical_probabilities(fitted):
    name, estimator, X, y = fitted
    X_test, _ = two_classes(40, seed=1)
    again = clone(estimator).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X_test), estimator.predict_proba(X_test))
    assert again.history_ == estimator.history_


def test_clone_is_unfitted_with_identical_params(fitted):
    name, estimator, _, _ = fitted
    copy = clone(estimator)
    assert type(copy) is type(estimator) and copy.get_params() == estimator.get_params()
    assert not any(hasattr(copy, a) for a in ("model_", "classes_", "history_", "input_size_"))
    with pytest.raises(NotFittedError):
        copy.predict_proba(two_classes(2)[0])


def test_pickle_round_trip_keeps_predictions_and_leaves_the_original_fitted(fitted):
    name, estimator, _, _ = fitted
    X_test, _ = two_classes(20, seed=2)
    expected = estimator.predict_proba(X_test)
    before = dict(vars(estimator))
    try:
        restored = pickle.loads(pickle.dumps(estimator))
        assert set(vars(estimator)) == set(before), "pickling changed the original estimator"
        np.testing.assert_array_equal(estimator.predict_proba(X_test), expected)
    finally:  # keep the module's fitted estimator usable whatever happened
        vars(estimator).clear()
        vars(estimator).update(before)
    np.testing.assert_allclose(restored.predict_proba(X_test), expected, rtol=1e-6, atol=1e-7)


def test_nan_and_inf_pixels_are_refused(fitted):
    name, estimator, _, _ = fitted
    X, y = two_classes(8, seed=3)
    X = X.astype(np.float64) / 255
    for bad, word in ((np.nan, "NaN"), (np.inf, "infinity")):
        X_bad = X.copy()
        X_bad[3, 2, 2, 0] = bad
        with pytest.raises(ValueError, match=word):
            clone(estimator).fit(X_bad, y)
        with pytest.raises(ValueError, match=word):
            estimator.predict(X_bad)


# -- scikit-learn tools ------------------------------------------------------------------------
@pytest.mark.parametrize("name", CNN_NAMES)
def test_grid_search_over_epochs_and_learning_rate(name):
    X, y = two_classes(32, size=8)
    estimator = tiny(name)
    assert {"epochs", "learning_rate"} <= set(estimator.get_params())
    rate = estimator.learning_rate
    grid = [{"epochs": [1], "learning_rate": [rate]}, {"epochs": [2], "learning_rate": [rate / 2]}]
    search = GridSearchCV(estimator, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    best = search.best_estimator_
    assert best.get_params()["epochs"] in (1, 2)
    assert (best.epochs, best.learning_rate) in ((1, rate), (2, rate / 2))
    assert best.n_epochs_ <= best.epochs and len(best.history_["loss"]) == best.n_epochs_
    assert search.predict(X).shape == (32,)


# -- no leakage ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CNN_NAMES)
def test_no_test_fold_image_reaches_fit_and_validation_comes_from_training(name, keras_fit_calls):
    """cross_validate: `fit` sees exactly the training fold; keras trains on part of it and
    validates on the rest of it (inputs are already at the network's size, so compared as-is)."""
    side = max(16, min_size(create_estimator(name)))
    X, y = two_classes(24, size=side, seed=4)
    spy = spying_subclass(type(create_estimator(name)))
    estimator = spy(**tiny(name, input_size=side, epochs=1, validation_fraction=0.25).get_params())
    folds = list(StratifiedKFold(2, shuffle=True, random_state=0).split(X, y))
    cross_validate(estimator, X, y, cv=folds)
    assert len(spy.fitted_on) == 2 and len(keras_fit_calls) == 2
    for fit_images, (train_x, val_x) in zip(spy.fitted_on, keras_fit_calls):
        seen = as_bytes(fit_images)
        train, test = next((tr, te) for tr, te in folds if len(seen & as_bytes(X[tr])) > 0)
        assert seen == as_bytes(X[train])
        assert not seen & as_bytes(X[test])
        assert val_x is not None and len(val_x) > 0
        assert as_bytes(train_x) <= seen and as_bytes(val_x) <= seen
        assert not as_bytes(train_x) & as_bytes(val_x)
        assert len(train_x) + len(val_x) == len(fit_images)


def test_inner_split_is_a_stratified_partition_of_the_training_positions():
    y = np.array([0] * 20 + [1] * 10 + [2])  # class 2 has a single image
    train, val = inner_split(y, 0.2, seed=0)
    assert sorted(np.concatenate([train, val])) == list(range(len(y)))
    assert not set(train) & set(val)
    assert np.bincount(y[val], minlength=3).tolist() == [4, 2, 0]
    assert 30 in train  # the single image stays in training
    again = inner_split(y, 0.2, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((train, val), again))
    train, val = inner_split(y, 0, seed=0)
    assert len(val) == 0 and len(train) == len(y)


@pytest.fixture(scope="module")
def runner_run(tmp_path_factory):
    """The runner on a 24-image folder with a spying, tiny cnn-simple; 2 folds."""
    from benchmark.execution.runner import RunConfig, run

    root = tmp_path_factory.mktemp("cnn-run")
    rng = np.random.default_rng(5)
    for label, level in (("dark", 40), ("bright", 200)):
        (root / "data" / label).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(rng.normal(level, 20, size=(16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "data" / label / f"{i}.png")
    spy = spying_subclass(type(create_estimator("cnn-simple")))
    params = tiny("cnn-simple", input_size=16, epochs=2, validation_fraction=0.25).get_params()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
        register("spy-cnn")(lambda: spy(**params))
        dataset = f"folder:{root / 'data'}"
        result = run(RunConfig([dataset], ["spy-cnn"], folds=2, seed=0), root / "run")
    return result, dataset, spy.fitted_on


def test_runner_never_fits_a_cnn_on_test_fold_images(runner_run):
    from benchmark.data import load_dataset

    result, dataset, fitted_on = runner_run
    assert [c.status for c in result.cells] == ["ok", "ok"], [c.error for c in result.cells]
    images = load_dataset(dataset).images
    fits = [as_bytes(f) for f in fitted_on]
    assert len(fits) == 2 and all(len(f) == 12 for f in fits)
    for cell in result.cells:
        test_images = as_bytes(images[cell.test_index])
        assert len(test_images) == cell.n_test == 12 and cell.n_train == 12
        # the fit of this cell saw every other image of the dataset, and none of its test fold
        assert (as_bytes(images) - test_images) in fits
        assert sum(not (f & test_images) for f in fits) == 1


def test_runner_cell_json_keeps_the_per_epoch_history(runner_run):
    from benchmark.execution.store import RunStore

    result, _, _ = runner_run
    for cell in result.cells:
        saved = json.loads(RunStore(result.run_dir).cell_path(cell.dataset, cell.estimator, cell.fold).read_text())
        history = saved["history"]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert len(history[key]) == 2 and all(np.isfinite(history[key])), key
        assert history == cell.history


# -- importing, listing and --help never load TensorFlow ---------------------------------------
LAZY = """
import runpy, sys
import estimators, benchmark.cli
from estimators import create_estimator, list_estimators
from sklearn.base import clone
list_estimators()
for name in list_estimators(family="cnn"):
    clone(create_estimator(name)).get_params()
for argv in (["list"], ["--help"], ["run", "--help"]):
    sys.argv = ["benchmark", *argv]
    try:
        runpy.run_module("benchmark", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        assert exc.code in (0, None), (argv, exc.code)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")))
"""


def test_registry_list_and_help_do_not_import_tensorflow():
    out = subprocess.run([sys.executable, "-c", LAZY], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "cnn-simple" in out.stdout and "usage:" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"
    for argv in (["list"], ["--help"]):
        out = subprocess.run([sys.executable, "-X", "importtime", "-m", "benchmark", *argv],
                             cwd=REPO, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
        assert "benchmark.cli" in imported  # the import log is there
        assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "keras")}, argv


# -- awkward input -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", CNN_NAMES)
def test_predict_before_fit_raises_not_fitted(name):
    X, _ = two_classes(4)
    for method in ("predict", "predict_proba"):
        with pytest.raises(NotFittedError):
            getattr(create_estimator(name), method)(X)


@pytest.mark.parametrize("name", CNN_NAMES)
def test_input_size_below_the_minimum_is_a_clear_error(name):
    minimum = min_size(create_estimator(name))
    X, y = two_classes(8, size=32)
    with pytest.raises(ValueError, match=rf"input_size >= {minimum}\b"):
        tiny(name, input_size=minimum - 1).fit(X, y)


@pytest.mark.parametrize("name", CNN_NAMES)
def test_images_smaller_than_the_minimum_are_resized_up(name):
    X, y = two_classes(32, size=4, seed=6)
    estimator = tiny(name, input_size=None, epochs=1).fit(X, y)
    assert estimator.input_size_ >= min_size(estimator)
    assert estimator.predict(X[:5]).shape == (5,)
    assert estimator.predict_proba(two_classes(3, size=40)[0]).shape == (3, 2)  # any size


@pytest.mark.parametrize("name", CNN_NAMES)
def test_fitting_on_a_single_image_is_a_clear_error(name):
    X, y = two_classes(2)
    with pytest.raises(ValueError, match="at least 2 classes.*one class"):
        tiny(name).fit(X[:1], y[:1])


@pytest.mark.parametrize("name", CNN_NAMES)
def test_a_class_with_one_image_is_kept_in_training_and_absent_from_validation(name):
    X, y = two_classes(30, size=8, seed=7)
    X[-1], y[-1] = 255, "owl"  # one image of a third class
    estimator = tiny(name, epochs=1, validation_fraction=0.3).fit(X, y)
    assert list(estimator.classes_) == ["cat", "dog", "owl"]
    assert estimator.n_validation_ > 0 and estimator.n_train_ + estimator.n_validation_ == 30
    assert np.isfinite(estimator.history_["val_loss"]).all()
    proba = estimator.predict_proba(X[-3:])
    assert proba.shape == (3, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)


@pytest.mark.parametrize("name", CNN_NAMES)
def test_grayscale_images_work_with_or_without_a_channel_axis(name):
    X, y = two_classes(32, size=8, seed=8, channels=1)
    estimator = tiny(name, epochs=1).fit(X[..., 0], y)  # (n, h, w)
    assert estimator.image_shape_ == (8, 8, 1)
    np.testing.assert_array_equal(estimator.predict_proba(X[..., 0]), estimator.predict_proba(X))
    with pytest.raises(ValueError, match="1 channel|channels"):
        estimator.predict(np.repeat(X, 3, axis=-1))
