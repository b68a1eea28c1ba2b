"""`run --tune`: declared search spaces, the search inside the training fold, and its report."""

import json

import numpy as np
import pytest
from scipy.stats import loguniform

from benchmark.cli import main
from benchmark.data import load_dataset
from benchmark.execution.runner import RunConfig, run
from benchmark.reporting.report import write_report
from estimators import create_estimator, list_estimators
from estimators.knn import KNNImageClassifier
from estimators.tuning import TuningBudget, search_space, tune


class NearestOnly(KNNImageClassifier):
    """kNN whose default k (15, uniform votes) is wrong on `prototype_images`; only k=1 is right."""

    def __init__(self, features="pixels", n_neighbors=15, weights="uniform", scale=False):
        super().__init__(features, n_neighbors, weights, scale)

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.search_space = {"n_neighbors": [1, 7, 15]}
        return tags


class Misspelled(KNNImageClassifier):
    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.search_space = {"n_neighbours": [1, 3]}
        return tags


def prototype_images(copies=4, prototypes=40, seed=0):
    """1-pixel images: `copies` near-copies of each prototype at 0, 1, 2, ... with classes
    alternating. A point's own copies are its only same-class neighbours: any k above the
    copies it has in training lets the two other-class neighbouring prototypes outvote them."""
    rng = np.random.default_rng(seed)
    centres = np.repeat(np.arange(prototypes, dtype=float), copies)
    X = (centres + rng.uniform(-0.01, 0.01, centres.size)).reshape(-1, 1, 1, 1) * 5
    y = np.repeat(np.arange(prototypes) % 2, copies)
    return X.astype(np.float32), y


def test_tune_finds_k_1_where_only_the_nearest_neighbour_is_right():
    X, y = prototype_images()
    estimator = NearestOnly()
    best, record = tune(estimator, X, y, TuningBudget(3), seed=0)
    assert best == {"n_neighbors": 1}
    assert record["params"] == {"n_neighbors": 1} and not record["chose_default"]
    assert record["default"] == {"n_neighbors": 15}
    scores = {c["params"]["n_neighbors"]: c["inner_f1"] for c in record["candidates"]}
    assert scores[1] > 0.9 and scores[15] < 0.5  # the defaults are the first candidate, and lose
    assert record["candidates"][0]["params"] == {"n_neighbors": 15}


def test_tune_on_cached_features_equals_tune_on_images():
    X, y = prototype_images(seed=1)
    estimator = NearestOnly()
    features = estimator.feature_extractor().transform(X)
    on_images = tune(estimator, X, y, TuningBudget(3), seed=2)[1]
    on_features = tune(estimator, features, y, TuningBudget(3), seed=2, image_shape=X.shape[1:])[1]
    assert on_images["candidates"] == on_features["candidates"]


def test_a_budget_in_seconds_stops_the_search_and_keeps_at_least_two_candidates():
    X, y = prototype_images()
    estimator = create_estimator("logreg-pixels")
    _, record = tune(estimator, X, y, TuningBudget(1e-9, "seconds"), seed=0)
    assert len(record["candidates"]) == 1  # the defaults are always scored
    _, record = tune(estimator, X, y, TuningBudget(0.5, "seconds"), seed=0)
    assert len(record["candidates"]) >= 2 and record["seconds"] < 5


def test_a_finite_space_is_searched_once_per_combination():
    X, y = prototype_images()
    _, record = tune(NearestOnly(), X, y, TuningBudget(50), seed=0)
    assert sorted(c["params"]["n_neighbors"] for c in record["candidates"]) == [1, 7, 15]


def test_a_fold_too_small_for_the_inner_folds_keeps_the_defaults_and_says_so():
    X, y = prototype_images(copies=1, prototypes=6)  # 3 images per class
    best, record = tune(NearestOnly(), X, y, TuningBudget(3, folds=4), seed=0)
    assert best == {} and record["chose_default"]
    assert record["fallback"] == ("the rarest class has 3 training image(s), fewer than the 4 inner "
                                  "folds: defaults kept")


def test_search_spaces_are_checked():
    with pytest.raises(ValueError, match=r"over 'n_neighbours', which it does not have; its parameters: "):
        search_space(Misspelled())
    for name in list_estimators():  # every built-in space names real parameters
        search_space(create_estimator(name))
    assert search_space(create_estimator("svm-hog-color"))["C"].__class__ is type(loguniform(1, 2))


@pytest.mark.parametrize("text, wanted", [
    ("8", TuningBudget(8)), ("60s", TuningBudget(60.0, "seconds")), ("2.5s", TuningBudget(2.5, "seconds")),
])
def test_budgets_parse(text, wanted):
    assert TuningBudget.parse(text) == wanted


@pytest.mark.parametrize("args, message", [
    (["--tune-budget", "0"], "--tune-budget must be a number of configurations (e.g. 8) or of seconds (e.g. '60s'); got '0'"),
    (["--tune-budget", "0s"], "--tune-budget must be a number of configurations (e.g. 8) or of seconds (e.g. '60s'); got '0s'"),
    (["--tune-budget", "many"], "--tune-budget must be a number of configurations (e.g. 8) or of seconds"),
    (["--tune-folds", "1"], "--tune-folds must be an integer >= 2; got 1"),
    (["--tune", "--estimators", "knn-hog-tuned"], "none of the chosen estimators (knn-hog-tuned) declares a search space"),
])
def test_bad_tuning_options_are_one_line_usage_errors(args, message, capsys):
    assert main(["run", "--datasets", "faces", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_space_naming_a_missing_parameter_is_refused_when_registered(fresh_registry):
    with pytest.raises(ValueError, match="estimator 'misspelled': Misspelled declares a search space over "
                                         "'n_neighbours', which it does not have"):
        fresh_registry.register("misspelled")(Misspelled)
    assert "misspelled" not in fresh_registry.list_estimators()


def test_tuned_cells_store_the_choice_and_the_report_shows_it(fresh_registry, tmp_path, capsys):
    fresh_registry.register("nearest-only")(NearestOnly)
    out = tmp_path / "run"
    assert main(["run", "--datasets", "faces", "--estimators", "nearest-only,knn-hog-tuned",
                 "--folds", "3", "--tune", "--tune-budget", "2", "--out", str(out), "--quiet"]) == 0
    assert "not tuned (no search space declared): knn-hog-tuned" in capsys.readouterr().err
    cell = json.loads((out / "cells" / "faces" / "nearest-only" / "fold-0.json").read_text())
    tuning = cell["tuning"]
    assert tuning["budget"] == {"amount": 2, "unit": "configurations", "folds": 3}
    assert len(tuning["candidates"]) == 2 and tuning["default"] == {"n_neighbors": 15}
    assert set(cell["default_scores"]) == set(cell["scores"])
    untuned = json.loads((out / "cells" / "faces" / "knn-hog-tuned" / "fold-0.json").read_text())
    assert untuned["tuning"] is None
    report = (out / "report.md").read_text()
    assert "tuned: random search, 2 configurations per estimator and training fold, 3-fold inner CV" in report
    assert "### Tuning" in report
    chosen = tuning["params"]["n_neighbors"]
    assert f"| nearest-only | 0      | n\\_neighbors={chosen}" in report
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["tune"] == {"amount": 2, "unit": "configurations", "folds": 3}


def test_the_cell_key_includes_the_tuning_settings(fresh_registry, tmp_path):
    fresh_registry.register("nearest-only")(NearestOnly)
    keys = {}
    for tune_with in (None, {"amount": 2, "unit": "configurations", "folds": 3},
                      {"amount": 3, "unit": "configurations", "folds": 3}):
        result = run(RunConfig(["faces"], ["nearest-only"], folds=2, tune=tune_with), tmp_path / str(tune_with))
        keys[str(tune_with)] = {c.key for c in result.cells}
    assert len(set.union(*keys.values())) == 6  # 2 folds x 3 settings, no key shared


def test_tuning_never_loses_to_the_defaults_by_more_than_noise_on_digits(tmp_path):
    """The search picks by inner CV of the training fold; on digits (1797 images) that must
    not turn into a significant loss on the test folds for the classical estimators."""
    out = tmp_path / "run"
    run(RunConfig(["digits"], ["knn-hog", "logreg-hog-color"], folds=5,
                  tune={"amount": 4, "unit": "configurations", "folds": 3}), out)
    write_report(out)
    report = (out / "report.md").read_text()
    section = report.split("### Tuning")[1].split("<details>")[0]
    assert "defaults better" not in section
    assert section.count("no difference") + section.count("tuned better") == 2


def test_the_search_sees_only_the_training_fold(fresh_registry, tmp_path, monkeypatch):
    import benchmark.execution.cells as cells

    seen = []

    def spy(estimator, X, y, budget, **kwargs):
        seen.append(np.asarray(X).copy())
        return tune(estimator, X, y, budget, **kwargs)

    monkeypatch.setattr(cells, "tune", spy)
    fresh_registry.register("nearest-only")(NearestOnly)
    result = run(RunConfig(["faces"], ["nearest-only"], folds=2, n_jobs=1,
                           tune={"amount": 2, "unit": "configurations", "folds": 2}), tmp_path)
    assert len(seen) == 2
    X_all = NearestOnly().feature_extractor().transform(load_dataset("faces").images)
    for cell in result.cells:
        train_rows = sorted(set(range(len(X_all))) - set(cell.test_index))
        assert any(len(s) == len(train_rows) and np.array_equal(s, X_all[train_rows]) for s in seen)
