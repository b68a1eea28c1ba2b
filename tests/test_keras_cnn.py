"""`KerasCNN`: a user's CNN in one short file - the README's example, run by the benchmark.

TensorFlow is imported only inside the tests that fit, so collecting this file stays fast.
"""

import csv
import importlib
import inspect
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

import estimators.registry as registry
from estimators import KerasCNN, list_estimators
from estimators.budget import StepBudget
from estimators.capabilities import capabilities
from estimators.cnn import CNNClassifier

pytestmark = pytest.mark.slow  # every test here trains a CNN or starts processes

README = Path(__file__).resolve().parents[1] / "README.md"
COMMON = ["batch_size", "epochs", "input_size", "label_smoothing", "learning_rate", "n_threads",
          "random_state", "validation_fraction", "verbose"]


def readme_cnn_example():
    """The README's Python block that registers `tiny-cnn`, verbatim."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    found = [block for block in blocks if 'register("tiny-cnn"' in block]
    assert len(found) == 1, "the README has one code block registering tiny-cnn"
    return found[0]


@pytest.fixture
def readme_module(tmp_path, monkeypatch):
    """The README example written as `tiny_cnn.py` and imported, into a copy of the registry."""
    registry.list_estimators()  # load the real entries first, so the copy holds them all
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "tiny_cnn.py").write_text(readme_cnn_example())
    monkeypatch.syspath_prepend(str(tmp_path / "plugin"))
    monkeypatch.delitem(sys.modules, "tiny_cnn", raising=False)
    module = importlib.import_module("tiny_cnn")
    yield module
    sys.modules.pop("tiny_cnn", None)


def test_the_readme_cnn_runs_in_a_benchmark_and_beats_chance(readme_module, tmp_path, monkeypatch):
    from benchmark.cli import main

    assert "tiny-cnn" in list_estimators(family="cnn")
    # fewer epochs than the default budget's 100 on faces, to keep the test short
    declared = readme_module.TinyCNN.__benchmark_tags__

    def short(self):
        tags = declared(self)
        tags.step_budget = StepBudget(batch_size=16, epochs=25, min_steps=0, max_epochs=25)
        return tags

    monkeypatch.setattr(readme_module.TinyCNN, "__benchmark_tags__", short)
    out = tmp_path / "run"
    code = main(["run", "--datasets", "faces", "--estimators", "tiny-cnn,knn-pixels", "--folds", "2",
                 "--out", str(out), "--quiet", "--no-cache", "--jobs", "1"])
    assert code == 0
    with open(out / "summary.csv", newline="") as f:
        rows = {row["estimator"]: row for row in csv.DictReader(f)}
    tiny = rows["tiny-cnn"]
    assert tiny["dataset"] == "faces" and tiny["folds_ok"] == "2"
    assert float(tiny["accuracy_mean"]) >= 0.75  # faces: 2 balanced classes, chance is 0.5
    assert "tiny-cnn" in (out / "report.md").read_text()


def test_a_subclass_without_init_has_the_common_parameters(readme_module):
    TinyCNN = readme_module.TinyCNN
    assert "__init__" not in vars(TinyCNN)  # the README's class writes only the network
    assert sorted(TinyCNN().get_params()) == COMMON
    assert TinyCNN().get_params() == KerasCNN().get_params()
    estimator = TinyCNN(epochs=3, learning_rate=0.01)
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params() and copy.epochs == 3
    assert capabilities(estimator) == {"seed": "random_state", "threads": "n_threads"}


def test_a_fitted_user_cnn_predicts_pickles_and_reports_its_training(readme_module):
    rng = np.random.default_rng(0)
    y = np.array(["dark", "bright"] * 40)
    X = rng.integers(0, 100, (80, 12, 12, 3), dtype=np.uint8)
    X[y == "bright"] += 140
    estimator = readme_module.TinyCNN(epochs=15, batch_size=16, learning_rate=0.01, n_threads=1).fit(X, y)
    assert estimator.budget_.epochs == 15 and len(estimator.history_["loss"]) == 15
    assert estimator.history_["loss"][-1] < estimator.history_["loss"][0]
    assert (estimator.predict(X) == y).mean() >= 0.9
    proba = estimator.predict_proba(X)
    assert proba.shape == (80, 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    again = pickle.loads(pickle.dumps(estimator))
    np.testing.assert_allclose(again.predict_proba(X), proba, atol=1e-6)


def test_optimizer_hook_is_used():
    class SGDNet(KerasCNN):
        def build(self, keras, input_shape, n_classes):
            return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                                     keras.layers.Dense(n_classes)])

        def optimizer(self, keras):
            return keras.optimizers.SGD(0.05)

    X = np.random.default_rng(1).integers(0, 255, (20, 8, 8, 1), dtype=np.uint8)
    y = np.arange(20) % 2
    estimator = SGDNet(epochs=1, batch_size=10, validation_fraction=0, n_threads=1).fit(X, y)
    assert type(estimator.model_.optimizer).__name__ == "SGD"


def test_a_subclass_without_build_says_what_to_write():
    X = np.zeros((8, 8, 8, 1), np.uint8)
    with pytest.raises(NotImplementedError, match=r"must define build\(self, keras, input_shape, n_classes\)"):
        KerasCNN(epochs=1, n_threads=1).fit(X, np.arange(8) % 2)


def test_every_hook_the_cnn_base_docstring_names_exists():
    named = set(re.findall(r"`(_\w+)\(", inspect.getdoc(CNNClassifier) + inspect.getdoc(KerasCNN)))
    named |= set(re.findall(r"`(\w+)\(keras", inspect.getdoc(KerasCNN)))
    assert {"_build", "_callbacks", "_predict_proba_batch", "build", "optimizer"} <= named
    missing = [name for name in named if not hasattr(KerasCNN, name)]
    assert missing == []
