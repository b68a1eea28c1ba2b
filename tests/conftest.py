import numpy as np
import pytest
from PIL import Image


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


@pytest.fixture
def fresh_registry(monkeypatch):
    """The estimator registry, with every real entry loaded, as a copy this test may register
    into; the real one is back after the test."""
    import estimators.registry as registry

    registry.list_estimators()  # load the real entries first, so the copy holds them all
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return registry
