"""The CNNs on each Keras backend (estimators.keras_backend): TensorFlow, JAX and PyTorch.

A process runs one Keras backend, so every fit on a backend other than the one this test
process may already have loaded runs in a subprocess with KERAS_BACKEND set. Backends that are
not installed are skipped with the extra that installs them."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.execution.cell_record import cell_key
from benchmark.data.protocols import Split
from estimators.keras_backend import BACKENDS, backend_facts, check_backend
from test_batch_warp import scipy_warp, warp_case  # tests/ is on sys.path

pytestmark = pytest.mark.slow  # every test here trains a CNN or starts processes

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
    names = "cnn-fast,cnn-airbench,cnn-simple,cnn-vgg"
    result = json.loads(in_backend(backend, FIT, names).stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    for name in names.split(","):
        assert result[name]["history"] == 3
        assert result[name]["accuracy"] >= 0.9, (name, result[name])
        assert result[name]["same"], f"{name} on {backend}: the same seed gave other probabilities"


@pytest.mark.parametrize("backend", [p for p in ALL_BACKENDS if p.values[0] != "tensorflow"])
def test_scikit_learns_contract_checks_pass_for_cnn_fast_on_each_other_backend(backend):
    """tests/test_estimator_contract.py runs every check on every CNN with TensorFlow; here
    cnn-fast's checks run again on JAX and PyTorch (where installed), in a process of their own."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "tests/test_estimator_contract.py", "--full", "-k", "checks_on_cnns and FastCNN"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
    summary = done.stdout.strip().splitlines()[-1]  # "50 passed, 4 xfailed, ..." (expected failures)
    assert re.search(r"\b\d+ passed", summary) and not re.search(r"\b\d+ failed", summary), summary


WARP = """
import json, sys
import numpy as np
import keras
from estimators.cnn import keras_for
keras_for(1)
from estimators import _keras_layers as L
images, transforms = (np.asarray(a, np.float32) for a in json.load(open(sys.argv[1])))
batch = np.repeat(images[:1], 4, axis=0) * 255
seeded = [keras.ops.convert_to_numpy(L.BatchRotateZoom(0.05, 0.05, seed=7)(batch, training=True)) for _ in range(2)]
print(json.dumps({"backend": keras.backend.backend(),
                  "gathers": keras.ops.convert_to_numpy(L.affine_warp(images, transforms)).tolist(),
                  "warp": keras.ops.convert_to_numpy(L.warp(images, transforms)).tolist(),
                  "same_seed_same_draw": bool(np.array_equal(*seeded)),
                  "moved": float(np.abs(seeded[0] - batch).mean())}))
"""


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_cnn_vggs_rotate_zoom_warp_equals_scipys_on_each_backend(backend, tmp_path):
    images, transforms = warp_case(seed=2)
    case = tmp_path / "case.json"
    case.write_text(json.dumps([images.tolist(), transforms.tolist()]))
    result = json.loads(in_backend(backend, WARP, str(case)).stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    expected = scipy_warp(images, transforms)
    for path in ("gathers", "warp"):
        np.testing.assert_allclose(np.asarray(result[path], np.float32), expected, atol=1e-5, err_msg=path)
    assert result["same_seed_same_draw"] and result["moved"] > 1


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


ARRAY_PIPELINE = """
import json
import numpy as np
from estimators.keras_backend import import_keras
import_keras(1)
import_keras(1)  # a second import wraps nothing twice
from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter
x, y = np.arange(40, dtype=np.float32).reshape(10, 2, 2, 1), np.arange(10)
dataset = ArrayDataAdapter(x, y, batch_size=4, shuffle=False).get_tf_dataset()
print(json.dumps({"autotune": dataset.options().autotune.enabled,
                  "labels": [batch[1].numpy().tolist() for batch in dataset],
                  "first": next(iter(dataset))[0].numpy().ravel().tolist()}))
"""


def test_keras_array_pipeline_runs_without_tf_data_autotuning_and_keeps_its_batches():
    """With tf.data's autotuning on, each iterator Keras destroys (after every epoch's validation,
    and when fit returns) could stall up to 10 s (estimators.keras_backend); the pipeline must
    run without it and still give the same batches in the same order."""
    result = json.loads(in_backend("tensorflow", ARRAY_PIPELINE).stdout.strip().splitlines()[-1])
    assert result["autotune"] is False
    assert result["labels"] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert result["first"] == list(range(16))


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


def test_a_backend_that_cannot_be_exact_here_is_warned_once_per_run_and_recorded(tmp_path, monkeypatch, capsys):
    """PyTorch on a GPU only warns on ops without a deterministic kernel: a run with CNNs says so
    once (the command line as a warning line, run_benchmark as a DeterminismWarning) and
    run.json records it. Simulated: this machine has no GPU."""
    import estimators.keras_backend as kb
    from benchmark.api import build_config, run_benchmark

    assert backend_facts("tensorflow")["bit_exact_here"] is True  # no gap on a CPU
    gap = "the torch backend on a GPU is not bit-exact (simulated)"
    monkeypatch.setattr(kb, "determinism_gap", lambda name: gap)
    _, notes = build_config(["faces"], ["knn-pixels"])
    assert not any(isinstance(n, kb.DeterminismWarning) for n in notes)  # no CNN, nothing to say
    _, notes = build_config(["faces"], ["cnn-fast", "knn-pixels"])
    assert [str(n) for n in notes if isinstance(n, kb.DeterminismWarning)] == [gap]
    with pytest.warns(kb.DeterminismWarning, match="not bit-exact") as caught:
        run_benchmark(datasets=["faces"], estimators=["cnn-fast"], folds=2, max_per_class=4,
                      settings={"cnn-fast": {"epochs": 1}}, out=tmp_path / "api")
    assert sum(isinstance(w.message, kb.DeterminismWarning) for w in caught) == 1
    facts = json.loads((tmp_path / "api" / "run.json").read_text())["keras_backend"]
    assert facts["bit_exact_here"] is False and facts["determinism_gap"] == gap
    assert main(["run", "--datasets", "faces", "--estimators", "cnn-fast", "--set", "cnn-fast.epochs=1",
                 "--max-per-class", "4", "--folds", "2", "--jobs", "1", "--quiet",
                 "--out", str(tmp_path / "cli")]) == 0
    assert capsys.readouterr().err.count(f"warning: {gap}") == 1


def test_a_stray_keras_backend_is_one_error_for_cnns_and_not_recorded_without_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_BACKEND", "nosuch")
    assert main(["run", "--datasets", "faces", "--estimators", "cnn-fast,knn-pixels", "--jobs", "2",
                 "--out", str(tmp_path / "cnn")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: KERAS_BACKEND: unknown Keras backend 'nosuch': choose one of tensorflow, jax, torch"]
    assert not (tmp_path / "cnn").exists()
    out = tmp_path / "classical"
    assert main(["run", "--datasets", "faces", "--estimators", "knn-pixels", "--folds", "2", "--jobs", "1",
                 "--no-cache", "--quiet", "--out", str(out)]) == 0
    assert capsys.readouterr().err == ""
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["keras_backend"] is None and meta["keras_backend"] is None
    assert main(["run", "--resume", str(out), "--quiet"]) == 0  # its own (absent) backend, no error
    assert capsys.readouterr().err == "2 cell(s) reused from {0}; 0 stored cell(s) no longer matched this " \
                                      "configuration and were moved to {0}/replaced\n".format(out)


def test_a_resumed_cnn_run_keeps_its_recorded_backend_whatever_keras_backend_says(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    out = tmp_path / "run"
    argv = ["run", "--datasets", "faces", "--estimators", "cnn-fast", "--set", "cnn-fast.epochs=1",
            "--max-per-class", "4", "--folds", "2", "--jobs", "1", "--no-cache", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    (out / "cells" / "faces" / "cnn-fast" / "fold-1.json").unlink()
    capsys.readouterr()
    monkeypatch.setenv("KERAS_BACKEND", "nosuch")
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert capsys.readouterr().err == "1 cell(s) reused from {0}; 0 stored cell(s) no longer matched this " \
                                      "configuration and were moved to {0}/replaced\n".format(out)
    cell = json.loads((out / "cells" / "faces" / "cnn-fast" / "fold-1.json").read_text())
    assert cell["status"] == "ok" and os.environ["KERAS_BACKEND"] == "tensorflow"
