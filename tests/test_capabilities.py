"""Declared capabilities (estimators.capabilities): the runner sets only what an estimator declares."""

import numpy as np
import pytest
from conftest import write_image
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.neighbors import KNeighborsClassifier

import estimators.registry as registry
from benchmark.execution.runner import RunConfig, run
from estimators import create_estimator, list_estimators, register
from estimators.capabilities import CAPABILITIES, capabilities, capability_parameter
from estimators.cnn import CNNClassifier


class FlipSigns(ClassifierMixin, BaseEstimator):
    """A plug-in whose `flip` means "negate the pixels", not mirror augmentation; it declares
    nothing. Every fit records the parameters it was fitted with (in this process: --jobs 1)."""

    fits = []

    def __init__(self, flip=True, random_state=123, n_threads=None):
        self.flip = flip
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, X, y):
        type(self).fits.append((type(self).__name__, self.get_params()))
        features = self._features(X)
        self.head_ = KNeighborsClassifier(1).fit(features, y)
        self.classes_ = self.head_.classes_
        return self

    def predict(self, X):
        return self.head_.predict(self._features(X))

    def _features(self, X):
        flat = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        return -flat if self.flip else flat


class DeclaredFlip(FlipSigns):
    """The same estimator, declaring its parameters' parts."""

    _benchmark_capabilities = {"seed": "random_state", "threads": "n_threads",
                               "mirror_augmentation": "flip"}


@pytest.fixture
def plugins(monkeypatch):
    registry.list_estimators()  # load the real entries first, so the copy holds them all
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(FlipSigns, "fits", [])
    register("flip-signs")(FlipSigns)
    register("declared-flip")(DeclaredFlip)
    return FlipSigns.fits


def fitted_params(fits, name):
    return [params for cls, params in fits if cls == name]


def test_an_undeclared_flip_is_never_touched_on_a_mirror_sensitive_dataset(tmp_path, plugins):
    result = run(RunConfig(["digits"], ["flip-signs"], folds=2, seed=7, threads_per_cell=1), tmp_path)
    assert not result.failed_cells
    params = fitted_params(plugins, "FlipSigns")
    assert len(params) == 2
    # nothing declared, so nothing set: not the flip, not the seed, not the threads
    assert all(p == {"flip": True, "random_state": 123, "n_threads": None} for p in params)


def test_declared_parameters_get_the_seed_threads_and_mirror_switch(tmp_path, plugins):
    digits = run(RunConfig(["digits"], ["declared-flip"], folds=2, seed=7, threads_per_cell=1),
                 tmp_path / "digits")
    faces = run(RunConfig(["faces"], ["declared-flip"], folds=2, seed=7, threads_per_cell=1),
                tmp_path / "faces")
    assert not digits.failed_cells and not faces.failed_cells
    params = fitted_params(plugins, "DeclaredFlip")
    assert len(params) == 4
    # digits' labels change under a mirror: the mirror switch is off there, on for faces
    assert [p["flip"] for p in params] == [False, False, True, True]
    assert all(p["random_state"] == 7 and p["n_threads"] == 1 for p in params)


def test_each_holdout_repeat_gives_its_own_seed_to_the_declared_parameter(tmp_path, plugins):
    rng = np.random.default_rng(0)
    for side, n in (("train", 10), ("test", 4)):
        for label, level in (("dark", 40), ("bright", 200)):
            for i in range(n):
                pixels = np.clip(rng.normal(level, 20, (8, 8, 3)), 0, 255).astype(np.uint8)
                write_image(tmp_path / "data" / side / label / f"{i}.png", pixels)
    config = RunConfig([f"folder:{tmp_path / 'data'}"], ["declared-flip", "flip-signs"],
                       protocol="holdout", repeats=3, seed=4, max_per_class=6,
                       folder_cache=False)  # a cap below the class sizes: 3 distinct repeats
    result = run(config, tmp_path / "run")
    assert len(result.cells) == 6 and not result.failed_cells
    # repeated holdout: seeds seed, seed + 1, ... reach the declared seed, not the other one
    assert [p["random_state"] for p in fitted_params(plugins, "DeclaredFlip")] == [4, 5, 6]
    assert [p["random_state"] for p in fitted_params(plugins, "FlipSigns")] == [123, 123, 123]


def test_heavy_cells_follow_the_family_not_a_parameter_name(tmp_path, plugins):
    # a classical estimator with an `n_threads` parameter is not heavy; a "cnn" family entry
    # without one is, and its cells run first although it is listed last
    register("threaded-classical")(FlipSigns)
    register("cnn-family", family="cnn")(lambda: DeclaredFlip(n_threads=1))
    run(RunConfig(["faces"], ["threaded-classical", "cnn-family"], folds=2, seed=0), tmp_path)
    assert [cls for cls, _ in plugins] == ["DeclaredFlip", "DeclaredFlip", "FlipSigns", "FlipSigns"]


def test_a_mistyped_declaration_fails_its_cells_with_a_clear_reason(tmp_path, plugins):
    class Mistyped(FlipSigns):
        _benchmark_capabilities = {"seed": "randomstate"}

    register("mistyped")(Mistyped)
    result = run(RunConfig(["faces"], ["mistyped", "flip-signs"], folds=2), tmp_path)
    failed = result.failed_cells
    assert [c.estimator for c in failed] == ["mistyped", "mistyped"]
    assert "declares benchmark capabilities {'seed': 'randomstate'}" in failed[0].error


def test_capabilities_reads_and_checks_the_declaration():
    assert capabilities(FlipSigns()) == {}
    assert capabilities(DeclaredFlip()) == DeclaredFlip._benchmark_capabilities
    assert capability_parameter(DeclaredFlip(), "mirror_augmentation") == "flip"
    assert capability_parameter(FlipSigns(), "seed") is None

    class Unknown(FlipSigns):
        _benchmark_capabilities = {"colour": "flip"}

    with pytest.raises(ValueError, match=r"unknown benchmark capabilities \['colour'\]"):
        capabilities(Unknown())
    with pytest.raises(ValueError, match="unknown benchmark capability 'speed'"):
        capability_parameter(FlipSigns(), "speed")


def test_built_in_estimators_declare_what_they_have():
    for name in list_estimators():
        estimator = create_estimator(name)
        declared = capabilities(estimator)  # valid for every entry: no error
        assert set(declared) <= set(CAPABILITIES)
        params = estimator.get_params(deep=False)
        # every built-in seed, thread count and mirror switch is declared
        assert ("seed" in declared) == ("random_state" in params), name
        assert ("threads" in declared) == ("n_threads" in params), name
        assert ("mirror_augmentation" in declared) == ("flip" in params), name
        if isinstance(estimator, CNNClassifier):
            assert declared["seed"] == "random_state" and declared["threads"] == "n_threads"
    assert capability_parameter(create_estimator("cnn-fast"), "mirror_augmentation") == "flip"
    assert capability_parameter(create_estimator("cnn-vgg"), "mirror_augmentation") == "flip"
    assert capability_parameter(create_estimator("cnn-simple"), "mirror_augmentation") is None
    assert capability_parameter(create_estimator("bagged-trees-hog-color"), "seed") == "random_state"
