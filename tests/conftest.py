import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# The pages whose code blocks the tests run: a user copies them, so each must work as written.
DOCUMENTATION = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def code_blocks(language):
    """(page, code) of every ```language block of the README and docs/, in page order."""
    return [(page.relative_to(ROOT).as_posix(), code)
            for page in DOCUMENTATION
            for code in re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), re.S | re.M)]


@pytest.fixture
def documentation():
    """`code_blocks`, for tests that find their example in the README or in docs/."""
    return code_blocks


# The slow tests (over about 2 s each on a 2-core machine, by `--durations`: they train CNNs,
# run whole benchmarks or start processes) carry @pytest.mark.slow, or `pytestmark` for a file.


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true",
                     help="also run the tests marked slow (CI and the README's test command do)")


def pytest_collection_modifyitems(config, items):
    """Without --full (and without a -m of one's own), leave out the tests marked slow: the
    default run is the fast subset for development, CI runs them all."""
    if config.getoption("--full") or config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def write_image(path, array, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


@pytest.fixture
def tiny_folder(tmp_path):
    """An image folder with two easily separated classes: dark and bright noisy squares."""
    rng = np.random.default_rng(1)
    root = tmp_path / "tiny"
    for label, level in (("dark", 40), ("bright", 200)):
        for i in range(12):
            pixels = np.clip(rng.normal(level, 20, size=(16, 16, 3)), 0, 255).astype(np.uint8)
            write_image(root / label / f"{i}.png", pixels)
    return root


@pytest.fixture(autouse=True)
def no_network_and_no_user_data(monkeypatch, tmp_path_factory):
    """No test downloads anything or reads the user's data directories, config or caches."""
    from benchmark.data import catalog

    monkeypatch.setenv(catalog.ENV_OFFLINE, "1")
    monkeypatch.delenv(catalog.ENV_DATA_DIR, raising=False)
    monkeypatch.setattr(catalog, "CONFIG_FILE", tmp_path_factory.mktemp("config") / "config.ini")
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    # pretrained weights: never fetched, and never taken from the user's Keras cache
    from features import backbones

    monkeypatch.setattr(backbones, "network_reachable", lambda url, timeout=None: False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras")))
    monkeypatch.setenv("BENCHMARK_WEIGHTS_DIR", "")  # recorded, so a test that sets it is undone
    monkeypatch.delenv("BENCHMARK_WEIGHTS_DIR")


@pytest.fixture
def fresh_registry(monkeypatch):
    """The estimator registry, with every real entry loaded, as a copy this test may register
    into; the real one is back after the test."""
    import estimators.registry as registry

    registry.list_estimators()  # load the real entries first, so the copy holds them all
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return registry


# -- a tiny stand-in for a pretrained backbone: the pretrained family's plumbing (embedding,
# fine-tuning, the estimator checks) without a real network's cost ------------------------------

def tiny_build(keras, weights_path, size):
    """A 2-layer network whose kernel is read from `weights_path` (a .npy file): different
    weight files give different embeddings, as real ones would."""
    kernel = np.load(weights_path)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, use_bias=False, name="conv")(inputs)
    x = keras.layers.ReLU(name="relu")(x)
    model = keras.Model(inputs, x)
    model.get_layer("conv").set_weights([kernel])
    return model


@pytest.fixture
def tiny_backbone(monkeypatch, tmp_path):
    """A backbone called "tiny" (trained at 16x16, 4 features, preprocessing x / 255) whose
    weight file lies in a folder given as $BENCHMARK_WEIGHTS_DIR; returns that folder."""
    from features.backbones import BACKBONES, Backbone

    folder = tmp_path / "weights"
    folder.mkdir()
    np.save(folder / "tiny.npy", np.random.default_rng(0).normal(size=(3, 3, 3, 4)).astype(np.float32))
    spec = Backbone("tiny", "Tiny", 16, "tiny.npy", tiny_build, lambda keras: [keras.layers.Rescaling(1 / 255)],
                    origin="https://example.invalid/tiny.npy")
    monkeypatch.setitem(BACKBONES, "tiny", spec)
    monkeypatch.setenv("BENCHMARK_WEIGHTS_DIR", str(folder))
    return folder
