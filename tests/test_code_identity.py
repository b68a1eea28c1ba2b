"""Code identity (benchmark.execution.code_identity): a cell computed by code that was since
edited, or by other library versions, is recomputed on a rerun, and the run says why."""

import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import BaseEstimator

import benchmark.execution.code_identity as code_identity
from benchmark.cli import main
from benchmark.execution.cell_record import read_cell
from benchmark.execution.recompute import NO_IDENTITY
from benchmark.execution.runner import RunConfig, run
from benchmark.execution.store import RunStore
from estimators import create_estimator
from features.cache import FeatureCache, cache_key

PLUGIN = '''"""A user's own estimator, in a file of its own (a plug-in)."""
from sklearn.tree import DecisionTreeClassifier

from estimators import FeatureClassifier, register

DEPTH = {depth}  # a module-level constant, read by a module-level helper: what users edit


def _depth():
    return DEPTH


@register("my-tree", description="a decision tree on raw pixels")
class MyTree(FeatureClassifier):
    def __init__(self, features="pixels", random_state=0):
        self.features = features
        self.random_state = random_state

    def _make_head(self):
        return DecisionTreeClassifier(max_depth=_depth(), random_state=self.random_state)
'''

EXTRACTOR = '''"""A user's own feature extractor."""
import numpy as np

from features.base import ImageFeatures

SCALE = {scale}


class Brightness(ImageFeatures):
    def __init__(self, n_jobs=None):
        self.n_jobs = n_jobs

    def _extract(self, images):
        return (images.reshape(len(images), -1).mean(axis=1, keepdims=True) * SCALE).astype(np.float32)
'''


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch, fresh_registry):
    """A folder on sys.path for plug-in modules; `load(name, source)` writes one and imports it
    as a new process would (registering its estimators again)."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    # edits in the same second, of the same size, must not load a stale .pyc
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    loaded = []

    def load(name, source):
        (folder / f"{name}.py").write_text(source)
        sys.modules.pop(name, None)
        fresh_registry._REGISTRY.pop("my-tree", None)  # a new process starts without it
        importlib.invalidate_caches()
        loaded.append(name)
        return importlib.import_module(name)

    yield load
    for name in loaded:
        sys.modules.pop(name, None)


def _run_cli(out, capsys):
    code = main(["run", "--datasets", "digits", "--estimators", "my-tree", "--folds", "2",
                 "--max-per-class", "20", "--seed", "0", "--out", str(out), "--no-cache",
                 "--jobs", "1", "--quiet"])
    captured = capsys.readouterr()
    cells = sorted(RunStore(out).stored_cells()[0].values(), key=lambda c: c.fold)
    return code, captured.err, cells


@pytest.mark.slow
def test_an_edited_plugin_is_recomputed_not_served_stale(tmp_path, plugin_dir, capsys):
    plugin_dir("my_plugin", PLUGIN.format(depth=1))
    code, err, first = _run_cli(tmp_path / "run", capsys)
    assert code == 0 and [c.status for c in first] == ["ok", "ok"], [c.error for c in first]
    assert "my_plugin.py" in first[0].code["modules"]
    assert "estimators/base.py" in first[0].code["modules"]  # FeatureClassifier's module
    assert "features/pixels.py" in first[0].code["modules"]  # its feature extractor's

    # an unchanged rerun reuses every cell and recomputes none
    code, err, again = _run_cli(tmp_path / "run", capsys)
    assert code == 0 and "2 cell(s) reused" in err and "recomputed" not in err
    assert [c.scores for c in again] == [c.scores for c in first]

    # the user edits the helper's constant: both cells are computed again, with the new code
    plugin_dir("my_plugin", PLUGIN.format(depth=8))
    code, err, edited = _run_cli(tmp_path / "run", capsys)
    assert code == 0
    assert "0 cell(s) reused" in err
    assert ("2 stored cell(s) recomputed: estimator code changed (my-tree: my_plugin.py) [2 cells]"
            in err)
    # a depth-1 tree tells at most 2 of the 10 digits apart; a depth-8 one most of them
    assert all(c.scores["f1_macro"] < 0.2 for c in first)
    assert all(c.scores["f1_macro"] > 0.5 for c in edited)
    _, _, fresh = _run_cli(tmp_path / "fresh", capsys)  # what the edited code computes
    assert [c.scores for c in edited] == [c.scores for c in fresh]

    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["reused_cells"] == 0
    assert meta["recomputed"] == {"count": 2, "reasons": {
        "estimator code changed (my-tree: my_plugin.py)": 2}}
    report = (tmp_path / "run" / "report.md").read_text()
    assert ("0 stored cell(s) reused; 2 stored cell(s) recomputed: estimator code changed "
            "(my-tree: my\\_plugin.py) \\[2 cells\\]") in report
    # the old results are kept aside, never mixed in
    assert len(list((tmp_path / "run" / "replaced").rglob("fold-*.json"))) == 2


def test_a_file_edited_while_its_module_stays_imported_is_refused_not_run_stale(tmp_path, plugin_dir, capsys):
    plugin_dir("my_plugin", PLUGIN.format(depth=1))
    assert _run_cli(tmp_path / "run", capsys)[0] == 0
    # edited on disk, not imported again (a notebook that did not reload it): this process
    # holds depth 1, the file says 8, and a run would key depth 1's scores as depth 8's
    (tmp_path / "plugins" / "my_plugin.py").write_text(PLUGIN.format(depth=8))
    code, err, cells = _run_cli(tmp_path / "again", capsys)
    assert code == 2 and cells == []
    assert err == ("error: my_plugin.py changed after this Python process imported it, so its cells "
                   "would run the old code: start a new process (a notebook: restart its kernel, or "
                   "importlib.reload the module) and run again\n")
    plugin_dir("my_plugin", PLUGIN.format(depth=8))  # imported anew: runs, in fresh workers
    code, err, cells = _run_cli(tmp_path / "again", capsys)
    assert code == 0, err
    assert all(c.scores["f1_macro"] > 0.5 for c in cells)


def test_a_library_version_change_recomputes_with_the_versions_named(tmp_path, monkeypatch):
    real = code_identity.library_versions
    config = RunConfig(["digits"], ["knn-pixels"], folds=2, max_per_class=10)
    with monkeypatch.context() as patch:
        patch.setattr(code_identity, "library_versions",
                      lambda names: {**real(names), "scikit-learn": "1.0.0"})
        first = run(config, tmp_path)
    assert first.recomputed == 0 and {c.code["libraries"]["scikit-learn"] for c in first.cells} == {"1.0.0"}
    again = run(config, tmp_path)
    installed = real(["scikit-learn"])["scikit-learn"]
    assert (again.reused, again.recomputed) == (0, 2)
    assert again.recompute_reasons == {f"library versions changed: scikit-learn 1.0.0 -> {installed}": 2}
    assert {c.code["libraries"]["scikit-learn"] for c in again.cells} == {installed}
    assert run(config, tmp_path).reused == 2  # and the next run reuses them


def test_cells_stored_before_code_identity_are_recomputed_with_that_reason(tmp_path):
    config = RunConfig(["digits"], ["knn-pixels"], folds=2, max_per_class=10)
    run(config, tmp_path)
    for path in (tmp_path / "cells").rglob("fold-*.json"):  # as an earlier version wrote them
        record = json.loads(path.read_text())
        del record["code"]
        path.write_text(json.dumps(record))
        assert read_cell(path).code is None
    again = run(config, tmp_path)
    assert (again.reused, again.recomputed, again.recompute_reasons) == (0, 2, {NO_IDENTITY: 2})


def test_a_parameter_change_is_told_from_a_code_change(tmp_path):
    run(RunConfig(["digits"], ["knn-pixels"], folds=2, max_per_class=10), tmp_path)
    again = run(RunConfig(["digits"], ["knn-pixels"], folds=2, max_per_class=10,
                          params={"knn-pixels": {"n_neighbors": 3}}), tmp_path)
    assert again.recompute_reasons == {"its data, parameters, split or run options changed": 2}


def test_the_identity_holds_the_estimators_modules_and_its_libraries_only():
    knn = code_identity.estimator_identity(create_estimator("knn-hog"))
    assert {"estimators/knn.py", "estimators/base.py", "features/hog.py", "features/base.py",
            "benchmark/execution/metrics.py"} <= set(knn["modules"])
    assert not any(path.startswith(("sklearn", "numpy", "benchmark/cli")) for path in knn["modules"])
    assert set(knn["libraries"]) == {"python", "numpy", "scipy", "scikit-learn", "scikit-image"}
    assert knn["libraries"]["python"] == "{}.{}".format(*sys.version_info[:2])
    cnn = code_identity.estimator_identity(create_estimator("cnn-simple"), keras_backend="tensorflow")
    assert {"estimators/cnn.py", "estimators/cnn_simple.py"} <= set(cnn["modules"])
    assert {"keras", "tensorflow"} <= set(cnn["libraries"]) and "keras" not in knn["libraries"]
    jax = code_identity.estimator_identity(create_estimator("cnn-simple"), keras_backend="jax")
    assert {"jax", "jaxlib"} <= set(jax["libraries"]) and "tensorflow" not in jax["libraries"]
    tuned = code_identity.estimator_identity(create_estimator("knn-hog"), tuned=True)
    assert set(tuned["modules"]) - set(knn["modules"]) == {"estimators/tuning.py"}
    # the same code gives the same identity
    assert code_identity.estimator_identity(create_estimator("knn-hog")) == knn


def test_identifying_every_estimator_imports_no_keras_in_the_parent_process():
    """The CNN recipes import their Keras layers module inside `fit`; the identity names it
    (its file is hashed) without importing it, which would load TensorFlow - and its start-up
    log on the terminal - into the process that only schedules the cells."""
    script = (
        "import sys\n"
        "from benchmark.execution.code_identity import estimator_identity\n"
        "from estimators import create_estimator, list_estimators\n"
        "ids = {n: estimator_identity(create_estimator(n), keras_backend='tensorflow') for n in list_estimators()}\n"
        "assert 'estimators/_keras_layers.py' in ids['cnn-fast']['modules'], sorted(ids['cnn-fast']['modules'])\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_edited_feature_extractor_is_not_served_from_the_feature_cache(tmp_path, plugin_dir, rng):
    images = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    cache_dir = tmp_path / "cache"
    module = plugin_dir("my_features", EXTRACTOR.format(scale=1))
    key = cache_key(module.Brightness(), "fp")
    features, timing = FeatureCache(cache_dir).transform(module.Brightness(), images, "fp")
    assert timing.source == "computed"
    module = plugin_dir("my_features", EXTRACTOR.format(scale=1))  # the same code: served from disk
    assert cache_key(module.Brightness(), "fp") == key
    assert FeatureCache(cache_dir).transform(module.Brightness(), images, "fp")[1].source == "disk"
    module = plugin_dir("my_features", EXTRACTOR.format(scale=2))  # edited: computed again
    assert cache_key(module.Brightness(), "fp") != key
    edited, timing = FeatureCache(cache_dir).transform(module.Brightness(), images, "fp")
    assert timing.source == "computed"
    np.testing.assert_allclose(edited, 2 * features)


NOTEBOOK_CLASS = '''
from estimators import FeatureClassifier


class InNotebook(FeatureClassifier):
    def __init__(self, features="pixels"):
        self.features = features

    def _make_head(self):
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(max_depth={depth})
'''


def test_a_class_defined_without_a_file_is_identified_by_its_code():
    def identity(depth):  # a notebook cell: no file on disk holds this source
        namespace = {"__name__": "notebook_cell"}
        exec(compile(NOTEBOOK_CLASS.format(depth=depth), "<notebook cell>", "exec"), namespace)
        return code_identity.estimator_identity(namespace["InNotebook"]())["modules"]

    one = identity(1)
    assert "notebook_cell:InNotebook" in one and "estimators/base.py" in one
    assert identity(1) == one and identity(8) != one


class DefinedHere(BaseEstimator):
    """A plug-in defined in this test module, which imports the benchmark's runner."""


def test_a_plugins_identity_holds_its_own_module_not_the_benchmark_it_imports():
    modules = code_identity.estimator_identity(DefinedHere())["modules"]
    assert "test_code_identity.py" in modules and "benchmark/execution/metrics.py" in modules
    assert not any(path.startswith(("benchmark/execution/runner", "benchmark/cli", "sklearn"))
                   for path in modules)
