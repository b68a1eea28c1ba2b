"""Declared capabilities (estimators.capabilities, from estimators.tags): the runner sets only
what an estimator declares, by whatever name. Facts about the built-in estimators are in
test_builtin_estimators.py."""

import numpy as np
import pytest
from conftest import write_image
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.neighbors import KNeighborsClassifier

import estimators.registry as registry
from benchmark.execution.runner import RunConfig, run
from estimators import create_estimator, list_estimators, register
from estimators.capabilities import CAPABILITIES, capabilities, capability_parameter
from estimators.tags import BenchmarkTags, ParameterTags


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

    def __benchmark_tags__(self):
        return BenchmarkTags(parameters=ParameterTags(seed="random_state", threads="n_threads",
                                                      mirror_augmentation="flip"))


class OtherNames(ClassifierMixin, BaseEstimator):
    """A plug-in whose seed and threads parameters have names of its own."""

    def __init__(self, seed=None, workers=None):
        self.seed = seed
        self.workers = workers

    def __benchmark_tags__(self):
        return BenchmarkTags(parameters=ParameterTags(seed="seed", threads="workers"))


class CNNFamily(DeclaredFlip):
    """A plug-in of family "cnn" (heavy) although it is no CNNClassifier."""

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.family = "cnn"
        return tags


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
    # is, and its cells run first although it is listed last
    register("threaded-classical")(FlipSigns)
    register("cnn-family")(lambda: CNNFamily(n_threads=1))
    run(RunConfig(["faces"], ["threaded-classical", "cnn-family"], folds=2, seed=0), tmp_path)
    assert [cls for cls, _ in plugins] == ["CNNFamily", "CNNFamily", "FlipSigns", "FlipSigns"]


def test_a_mistyped_declaration_is_refused_when_registered(plugins):
    class Mistyped(FlipSigns):
        def __benchmark_tags__(self):
            return BenchmarkTags(parameters=ParameterTags(seed="randomstate"))

    with pytest.raises(ValueError, match=r"estimator 'mistyped': Mistyped declares the parameters "
                                         r"\{'seed': 'randomstate'\} but has no such parameters"):
        register("mistyped")(Mistyped)
    assert "mistyped" not in list_estimators()


def test_a_declaration_the_tags_replaced_is_refused_not_ignored(plugins):
    class OldStyle(FlipSigns):
        _benchmark_capabilities = {"seed": "random_state"}

    with pytest.raises(ValueError, match="OldStyle declares _benchmark_capabilities, which "
                                         "__benchmark_tags__ replaced"):
        register("old-style")(OldStyle)


def test_capabilities_reads_and_checks_the_declaration():
    assert CAPABILITIES == ("seed", "threads", "mirror_augmentation")
    assert capabilities(FlipSigns()) == {}
    assert capabilities(DeclaredFlip()) == {"seed": "random_state", "threads": "n_threads",
                                            "mirror_augmentation": "flip"}
    assert capabilities(OtherNames()) == {"seed": "seed", "threads": "workers"}
    assert capability_parameter(DeclaredFlip(), "mirror_augmentation") == "flip"
    assert capability_parameter(FlipSigns(), "seed") is None
    with pytest.raises(ValueError, match="unknown benchmark capability 'speed'"):
        capability_parameter(FlipSigns(), "speed")


def test_any_parameter_name_gets_the_seed_and_threads(tmp_path, plugins):
    fits = []

    class Recording(OtherNames):
        def fit(self, X, y):
            fits.append(self.get_params())
            self.classes_ = np.unique(y)
            return self

        def predict(self, X):
            return np.full(len(X), self.classes_[0])

    register("other-names")(Recording)
    result = run(RunConfig(["faces"], ["other-names"], folds=2, seed=3, threads_per_cell=1), tmp_path)
    assert not result.failed_cells
    assert fits == [{"seed": 3, "workers": 1}] * 2  # k-fold: every split has the run's seed


def test_every_registered_estimator_keeps_the_contract():
    """What the contract says, for every entry, plug-ins included: the declared parameters
    exist (whatever their names) and the family is known."""
    from estimators.registry import estimator_spec
    from estimators.tags import FAMILIES, benchmark_tags, declaration_problems

    for name in list_estimators():
        estimator = create_estimator(name)
        assert declaration_problems(estimator) == [], name
        assert set(capabilities(estimator)) <= set(CAPABILITIES)
        assert estimator_spec(name).family == benchmark_tags(estimator).family in FAMILIES
