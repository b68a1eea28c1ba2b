import sys

import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

import estimators.registry as registry
from estimators import create_estimator, estimator_spec, list_estimators, register


@pytest.fixture
def clean_registry():
    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def test_builtin_estimators_are_registered_with_family_and_description():
    names = list_estimators()
    for expected in ("logreg-pixels", "knn-hog", "knn-hog-tuned", "bagged-trees-art-moments",
                     "bagged-trees-hog-color", "logreg-hog-color", "knn-pixels"):
        assert expected in names
    spec = estimator_spec("bagged-trees-art-moments")
    assert spec.family == "classical" and "art study" in spec.description
    art = create_estimator("bagged-trees-art-moments")
    assert (art.n_estimators, art.max_depth, art.max_samples, art.max_features) == (21, 7, 0.3, 0.7)
    assert list_estimators("knn-*") == ["knn-hog", "knn-hog-tuned", "knn-pixels"]


def test_unknown_name_suggests_the_closest(clean_registry):
    with pytest.raises(KeyError, match="did you mean knn-hog"):
        create_estimator("knn-hgo")


def test_decorator_registers_a_class_and_refuses_a_second_owner(clean_registry):
    @register("dummy-majority", description="always the most frequent class")
    class Majority(ClassifierMixin, BaseEstimator):
        pass

    assert create_estimator("dummy-majority").__class__ is Majority
    with pytest.raises(ValueError, match="already registered"):
        register("dummy-majority")(type("Other", (ClassifierMixin, BaseEstimator), {}))


def test_entry_point_plugins_join_the_registry(tmp_path, monkeypatch, clean_registry):
    (tmp_path / "my_plugin.py").write_text(
        "from sklearn.base import BaseEstimator, ClassifierMixin\n"
        "class Plugged(ClassifierMixin, BaseEstimator):\n"
        "    '''An estimator from another package.'''\n"
    )
    dist = tmp_path / "my_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{registry.ENTRY_POINT_GROUP}]\nplugged = my_plugin:Plugged\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_loaded", False)
    assert "plugged" in list_estimators()
    assert estimator_spec("plugged").description == "An estimator from another package."
    sys.modules.pop("my_plugin", None)
