"""The CNNs on each Keras backend (estimators.keras_backend): TensorFlow, JAX and PyTorch.

A process runs one Keras backend, so every fit on a backend other than the one this test
process may already have loaded runs in a subprocess with KERAS_BACKEND set. Backends that are
not installed are skipped with the extra that installs them."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.execution.cells import cell_key
from benchmark.data.protocols import Split
from estimators.keras_backend import BACKENDS, backend_facts, check_backend

REPO = Path(__file__).resolve().parents[1]


def installed(name):
    return importlib.util.find_spec(BACKENDS[name][0]) is not None


def backend_param(name):
    extra = BACKENDS[name][1]
    return pytest.param(name, marks=pytest.mark.skipif(
        not installed(name), reason=f"the {name} backend is not installed (pip install '.[{extra}]')"))


ALL_BACKENDS = [backend_param(name) for name in BACKENDS]

FIT = """
import json, sys
import numpy as np
import keras
from estimators import create_estimator
rng = np.random.default_rng(0)
y = np.array(["cat", "dog"] * 100)
X = rng.integers(0, 100, (200, 16, 16, 3), dtype=np.uint8)
X[y == "dog"] += 140
result = {"backend": keras.backend.backend()}
for name in sys.argv[1].split(","):
    probas = []
    for _ in range(2):  # the same seed twice: the same weights
        model = create_estimator(name, epochs=3, batch_size=8, input_size=16, n_threads=1,
                                 validation_fraction=0, random_state=3).fit(X[:160], y[:160])
        probas.append(model.predict_proba(X[160:]))
    result[name] = {"accuracy": float(np.mean(model.predict(X[160:]) == y[160:])),
                    "same": bool(np.array_equal(*probas)),
                    "history": len(model.history_["loss"])}
print(json.dumps(result))
"""


def in_backend(backend, code, *args, timeout=600):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_every_cnn_learns_separable_images_and_repeats_itself_on_each_backend(backend):
    names = "cnn-fast,cnn-simple,cnn-vgg"
    result = json.loads(in_backend(backend, FIT, names).stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    for name in names.split(","):
        assert result[name]["history"] == 3
        assert result[name]["accuracy"] >= 0.9, (name, result[name])
        assert result[name]["same"], f"{name} on {backend}: the same seed gave other probabilities"


def test_unknown_and_missing_backends_are_one_line_usage_errors(tmp_path, capsys, monkeypatch):
    with pytest.raises(ValueError, match="unknown Keras backend 'caffe': choose one of tensorflow, jax, torch"):
        check_backend("caffe")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(ValueError, match=r"the torch backend needs torch, which is not installed: "
                                         r"pip install '\.\[torch\]'"):
        check_backend("torch")
    for name, expected in (("caffe", "unknown Keras backend 'caffe'"), ("torch", "pip install '.[torch]'")):
        code = main(["run", "--datasets", "faces", "--estimators", "cnn-fast", "--keras-backend", name,
                     "--out", str(tmp_path / "run")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith("error: --keras-backend: ") and expected in err[0]
    # the environment variable is checked the same way when the run has a CNN
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert main(["run", "--datasets", "faces", "--estimators", "cnn-fast", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.startswith("error: KERAS_BACKEND: the torch backend needs torch")
    assert not (tmp_path / "run").exists()


def test_the_backend_is_part_of_a_cnn_cells_key_and_the_default_keeps_old_keys():
    split = Split(np.arange(8), np.arange(8, 10), 0)
    key = lambda backend: cell_key("fp", "cnn-fast", {}, split, 1, "d", keras_backend=backend)  # noqa: E731
    assert key(None) == key("tensorflow") == cell_key("fp", "cnn-fast", {}, split, 1, "d")
    assert len({key(None), key("jax"), key("torch")}) == 3


@pytest.mark.skipif(not installed("jax"), reason="the jax backend is not installed (pip install '.[jax]')")
def test_a_run_on_jax_records_its_backend_and_keys_its_cnn_cells_by_it(tmp_path):
    common = ["-m", "benchmark", "run", "--datasets", "faces", "--estimators", "cnn-fast,knn-pixels",
              "--set", "cnn-fast.epochs=1", "--max-per-class", "6", "--folds", "2", "--jobs", "1", "--quiet"]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    for backend in ("tensorflow", "jax"):
        done = subprocess.run([sys.executable, *common, "--keras-backend", backend, "--out",
                               str(tmp_path / backend)], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    runs = {b: json.loads((tmp_path / b / "run.json").read_text()) for b in ("tensorflow", "jax")}
    assert runs["jax"]["config"]["keras_backend"] == "jax"
    assert runs["jax"]["keras_backend"]["name"] == "jax" and runs["jax"]["keras_backend"]["version"]
    assert runs["jax"]["libraries"]["jax"] == backend_facts("jax")["version"]

    def keys(backend):
        return {p.relative_to(tmp_path / backend): json.loads(p.read_text())
                for p in (tmp_path / backend / "cells").rglob("fold-*.json")}

    tf_cells, jax_cells = keys("tensorflow"), keys("jax")
    assert set(tf_cells) == set(jax_cells) and len(tf_cells) == 4
    for path, cell in jax_cells.items():
        assert cell["status"] == "ok"
        same = cell["key"] == tf_cells[path]["key"]
        assert same == (cell["estimator"] == "knn-pixels"), path  # only the CNN's key has the backend
