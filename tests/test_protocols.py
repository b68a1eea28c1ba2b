import numpy as np
import pytest

from benchmark.data import Dataset, DatasetError, load_dataset
from benchmark.data.protocols import HOLDOUT_MIN_IMAGES, plan_splits, resolve_protocol
from benchmark.execution.runner import RunConfig, run


def split_dataset(n_train_per_class=30, n_test_per_class=10, classes=("a", "b", "c")):
    labels, split = [], []
    for side, n in (("train", n_train_per_class), ("test", n_test_per_class)):
        for c in classes:
            labels += [c] * n
            split += [side] * n
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (len(labels), 8, 8, 1), dtype=np.uint8)
    return Dataset("toy", images, np.array(labels), split=np.array(split))


def test_auto_is_holdout_only_for_big_datasets_with_an_official_split():
    small = split_dataset()
    assert resolve_protocol("auto", small) == "cv"
    assert resolve_protocol("holdout", small) == "holdout"
    big = split_dataset(n_train_per_class=HOLDOUT_MIN_IMAGES // 3)
    assert resolve_protocol("auto", big) == "holdout"
    assert resolve_protocol("auto", load_dataset("digits")) == "cv"
    with pytest.raises(DatasetError, match="has no official train/test split; use --protocol cv"):
        resolve_protocol("holdout", load_dataset("digits"))


def test_holdout_trains_on_train_and_scores_on_test_with_a_capped_sample_per_repeat():
    d = split_dataset()
    plan = plan_splits(d, protocol="holdout", repeats=3, max_per_class=20, seed=5)
    used_split, used_labels = d.split[plan.rows], d.labels[plan.rows]
    assert [s.seed for s in plan.splits] == [5, 6, 7]
    for s in plan.splits:
        assert set(used_split[s.train]) == {"train"} and set(used_split[s.test]) == {"test"}
        assert sorted(np.unique(used_labels[s.train], return_counts=True)[1]) == [20, 20, 20]
        assert np.array_equal(plan.splits[0].test, s.test)  # one test set for every repeat
    assert len(plan.splits[0].test) == 30  # 10 per class, under the cap
    trains = [frozenset(plan.rows[s.train]) for s in plan.splits]
    assert len(set(trains)) == 3  # each repeat draws its own training sample
    again = plan_splits(d, protocol="holdout", repeats=3, max_per_class=20, seed=5)
    assert all(np.array_equal(a.train, b.train) for a, b in zip(plan.splits, again.splits))
    facts = plan.describe(d.labels)
    assert facts["protocol"] == "holdout" and facts["train_images"] == [60] and facts["test_images"] == [30]
    assert facts["available_images"] == 120 and facts["max_per_class"] == 20


def test_cv_caps_the_pooled_images_per_class():
    d = load_dataset("digits")
    plan = plan_splits(d, protocol="cv", folds=4, max_per_class=50, seed=0)
    assert len(plan.rows) == 500 and len(plan.splits) == 4
    assert set(np.unique(d.labels[plan.rows], return_counts=True)[1]) == {50}
    tests = np.concatenate([s.test for s in plan.splits])
    assert sorted(tests.tolist()) == list(range(500))  # every used image scored exactly once
    uncapped = plan_splits(d, protocol="cv", folds=4, seed=0)
    assert len(uncapped.rows) == len(d.labels)


def test_holdout_refuses_test_classes_missing_from_training():
    d = split_dataset()
    d.split[(d.labels == "c") & (d.split == "train")] = "test"
    with pytest.raises(DatasetError, match="class\\(es\\) c appear in the test split but not in the training split"):
        plan_splits(d, protocol="holdout")


def test_runner_holdout_repeats(tmp_path, monkeypatch):
    toy = split_dataset()
    monkeypatch.setattr("benchmark.execution.preparation.load_dataset", lambda name, **kw: toy)
    config = RunConfig(["toy"], ["knn-pixels", "bagged-trees-color-moments"], protocol="holdout",
                       repeats=2, max_per_class=25)
    result = run(config, tmp_path)
    assert [(c.estimator, c.fold, c.n_train, c.n_test) for c in result.cells] == [
        ("knn-pixels", 0, 75, 30), ("knn-pixels", 1, 75, 30),
        ("bagged-trees-color-moments", 0, 75, 30), ("bagged-trees-color-moments", 1, 75, 30),
    ]
    assert result.datasets["toy"]["sampling"]["protocol"] == "holdout"
    # the images used are the test set and the union of the repeats' training samples
    plan = plan_splits(toy, protocol="holdout", repeats=2, max_per_class=25)
    union = len(np.unique(np.concatenate([plan.rows[s.train] for s in plan.splits])))
    assert 75 < union <= 90
    assert result.datasets["toy"]["official_split"] == {"train": union, "test": 30}
    assert result.datasets["toy"]["images"] == union + 30
