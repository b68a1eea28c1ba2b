import json
import threading

import numpy as np
from sklearn.model_selection import cross_validate
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from benchmark.data import load_dataset
from benchmark.data.protocols import cv_splits
from benchmark.data.protocols import Split
from benchmark.execution.cells import CellTask, run_cell
from benchmark.execution.store import RunStore
from benchmark.execution.runner import RunConfig, run
from estimators import FeatureClassifier, create_estimator, register
from estimators.knn import KNNImageClassifier
from features.base import ImageFeatures, thread_budget
from features.cache import FeatureCache


def test_knn_on_digits_scores_above_095(tmp_path):
    result = run(RunConfig(["digits"], ["knn-pixels", "knn-hog-tuned"], folds=5, seed=0), tmp_path)
    accuracy = {c.estimator: [] for c in result.cells}
    for c in result.cells:
        accuracy[c.estimator].append(c.scores["accuracy"])
    assert np.mean(accuracy["knn-pixels"]) >= 0.95
    assert np.mean(accuracy["knn-hog-tuned"]) >= 0.9
    assert len(result.cells) == 10 and not result.failed_cells


def test_runner_scores_equal_a_plain_cross_validate_loop(tmp_path):
    names = ["logreg-hog-color", "knn-hog", "bagged-trees-color-moments"]
    result = run(RunConfig(["faces"], names, folds=4, seed=3, n_jobs=2), tmp_path)
    d = load_dataset("faces")
    splits = cv_splits(d.labels, 4, 3)
    for name in names:
        est = create_estimator(name)
        if "random_state" in est.get_params():
            est.set_params(random_state=3)  # the runner gives estimators the run's seed
        pipe = Pipeline([("features", est.feature_extractor()), ("head", est._make_head())])
        expected = cross_validate(pipe, d.images, d.labels, cv=splits, scoring="accuracy")["test_score"]
        got = [c.scores["accuracy"] for c in result.cells if c.estimator == name]
        assert got == list(expected)


def test_every_estimator_sees_the_same_splits_and_cells_are_written(tmp_path):
    result = run(RunConfig(["faces"], ["knn-pixels", "logreg-pixels"], folds=3, seed=1), tmp_path)
    by_fold = {}
    for c in result.cells:
        stored = json.loads(RunStore(tmp_path).cell_path(c.dataset, c.estimator, c.fold).read_text())
        assert stored["scores"] == c.scores and stored["status"] == "ok"
        by_fold.setdefault(c.fold, set()).add(tuple(stored["test_index"]))
    assert all(len(indices) == 1 for indices in by_fold.values())  # same test fold for both
    assert sorted(i for idx in by_fold.values() for i in next(iter(idx))) == list(range(200))


def test_same_seed_same_scores_other_seed_other_splits(tmp_path):
    def scores(seed, sub):
        cells = run(RunConfig(["textures"], ["bagged-trees-color-moments"], folds=3, seed=seed),
                    tmp_path / sub).cells
        return [c.scores["f1_macro"] for c in cells], [c.test_index for c in cells]

    a, b, c = scores(0, "a"), scores(0, "b"), scores(1, "c")
    assert a == b
    assert a[1] != c[1]


def test_a_failing_estimator_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch, fresh_registry):

    @register("explodes")
    class Explodes(FeatureClassifier):
        def __init__(self, features="pixels"):
            self.features = features

        def _make_head(self):
            raise RuntimeError("boom")

    result = run(RunConfig(["faces"], ["explodes", "knn-pixels"], folds=3), tmp_path)
    failed = result.failed_cells
    assert len(failed) == 3 and all(c.error == "RuntimeError: boom" for c in failed)
    assert "Traceback" in failed[0].traceback
    assert sum(c.status == "ok" for c in result.cells) == 3


def test_features_are_computed_once_per_dataset_and_reused_from_disk(tmp_path, monkeypatch):
    from features.hog import HOG

    calls = []
    original = HOG._extract
    monkeypatch.setattr(HOG, "_extract", lambda self, images: calls.append(len(images)) or original(self, images))
    config = RunConfig(["faces"], ["knn-hog", "knn-hog-tuned", "logreg-hog-color"], folds=5,
                       cache_dir=str(tmp_path / "cache"))
    first = run(config, tmp_path / "one")
    assert calls == [200]  # one dataset-wide HOG for 3 estimators x 5 folds
    second = run(config, tmp_path / "two")
    assert calls == [200]  # the second run reads them from disk
    assert {c.feature_source for c in second.cells} <= {"disk", "mixed", "memory"}
    assert [c.scores for c in first.cells] == [c.scores for c in second.cells]


def test_cache_key_changes_with_parameters_and_images(tmp_path, rng):
    from features import HOG

    cache = FeatureCache(tmp_path)
    images = rng.integers(0, 256, (4, 16, 16, 1), dtype=np.uint8)
    a, _ = cache.transform(HOG(), images, "fp1")
    b, timing = cache.transform(HOG(orientations=6), images, "fp1")
    assert timing.source == "computed" and a.shape != b.shape
    _, timing = FeatureCache(tmp_path).transform(HOG(), images[::-1], "fp2")
    assert timing.source == "computed"
    _, timing = FeatureCache(tmp_path).transform(HOG(), images, "fp1")
    assert timing.source == "disk"


def test_a_seeded_cache_serves_another_process_features_with_their_source(tmp_path, rng):
    from features import HOG, ColorMoments

    images = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    worker = FeatureCache(tmp_path)
    worker.transform(HOG(), images, "fp")
    worker.transform(ColorMoments(), images, "fp")
    _, timing = FeatureCache(tmp_path).transform(ColorMoments(), images, "fp")
    assert timing.source == "disk"
    entries = worker.entries()
    assert sorted(source for _, _, source in entries.values()) == ["computed", "computed"]

    main = FeatureCache(None)
    main.seed(entries)
    first, timing = main.transform(HOG(), images, "fp")
    assert timing.source == "computed" and timing.compute_seconds > 0
    np.testing.assert_array_equal(first, HOG().transform(images))
    _, timing = main.transform(HOG(), images, "fp")
    assert timing.source == "memory"
    _, timing = main.transform(HOG(orientations=6), images, "fp")  # not seeded: computed here
    assert timing.source == "computed"


def test_runner_gives_each_estimator_the_seed_thread_share_and_mirror_rule():
    from benchmark.execution.runner import _template

    digits, faces = load_dataset("digits"), load_dataset("faces")
    assert not digits.mirror_invariant and faces.mirror_invariant
    config = RunConfig(["digits"], ["cnn-vgg"], seed=7, threads_per_cell=3)
    template = _template(digits, "cnn-vgg", config)
    assert (template.random_state, template.n_threads, template.flip) == (7, 3, False)
    template = _template(faces, "cnn-vgg", RunConfig(["faces"], ["cnn-vgg"], threads_per_cell=1))
    assert (template.n_threads, template.flip) == (1, True)


class _ThreadRecorder(ImageFeatures):
    """Raw pixels that note which thread extracted each chunk."""

    threads_seen = []

    def __init__(self, n_jobs=None):
        self.n_jobs = n_jobs

    def _extract(self, images):
        self.threads_seen.append(threading.get_ident())
        return images.reshape(len(images), -1).astype(np.float32)


def test_feature_extraction_inside_a_cell_keeps_to_the_cells_threads(rng):
    """n_jobs=None extracted with a thread per core inside each cell, ignoring --threads-per-cell."""
    images = rng.integers(0, 256, (1200, 4, 4, 1), dtype=np.uint8)  # 3 chunks of CHUNK images
    labels = np.array(["a", "b"] * 600)
    split = Split(np.arange(1100), np.arange(1100, 1200), 0)
    task = CellTask("d", "knn", 0, "key", KNNImageClassifier(features=_ThreadRecorder(), n_neighbors=1),
                    split, None, (None, "in-fit"), threads=1)
    _ThreadRecorder.threads_seen = []
    cell = run_cell(task, images, labels)
    assert cell.status == "ok", cell.error
    assert len(_ThreadRecorder.threads_seen) == 5  # 3 chunks to fit, 1 to predict, 1 for predict_proba
    assert set(_ThreadRecorder.threads_seen) == {threading.get_ident()}
    with threadpool_limits(limits=3):
        assert thread_budget() == 3
