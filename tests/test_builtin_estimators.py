"""Facts about the estimators this project ships (estimators/*.py), kept apart from the tests of
the contract (test_capabilities.py, test_registry.py, test_estimator_contract.py), so that a
valid plug-in with parameters of other names never fails the suite."""

import pytest

from estimators import create_estimator, list_estimators
from estimators.capabilities import capabilities, capability_parameter
from estimators.cnn import CNNClassifier
from estimators.registry import RENAMED, estimator_spec
from estimators.tags import benchmark_tags

BUILT_IN = [name for name in list_estimators()
            if getattr(estimator_spec(name).factory, "__module__", "").startswith("estimators.")]


def test_the_built_in_entries():
    assert BUILT_IN == [
        "bagged-trees-color-moments", "bagged-trees-hog-color-lbp", "cnn-airbench", "cnn-fast",
        "cnn-simple", "cnn-vgg", "finetune-imagenet", "gboost-hog-color-lbp", "knn-hog", "knn-hog-tuned",
        "knn-imagenet", "knn-pixels", "logreg-hog-color", "logreg-imagenet", "logreg-kmeans-patches",
        "logreg-pixels", "random-forest-hog-color-lbp", "ridge-random-features", "svm-bovw",
        "svm-bovw-color-hist", "svm-hog-color", "svm-imagenet",
    ]
    assert set(RENAMED.values()) <= set(BUILT_IN)


@pytest.mark.parametrize("name", BUILT_IN)
def test_built_in_estimators_use_the_projects_parameter_names(name):
    estimator = create_estimator(name)
    declared = capabilities(estimator)
    params = estimator.get_params(deep=False)
    # every built-in seed, thread count and mirror switch is declared, under these names (a
    # CNN's mirror switch is `flip`, a classical estimator's `mirror`)
    assert ("seed" in declared) == ("random_state" in params)
    assert ("threads" in declared) == ("n_threads" in params)
    assert ("mirror_augmentation" in declared) == ("flip" in params or "mirror" in params)
    assert set(declared.values()) <= {"random_state", "n_threads", "flip", "mirror"}
    if isinstance(estimator, CNNClassifier):
        tags = benchmark_tags(estimator)
        assert tags.family in ("cnn", "pretrained") and tags.step_budget is not None and tags.min_input_size >= 8
        assert declared["seed"] == "random_state" and declared["threads"] == "n_threads"


def test_mirror_switches_and_seeds_of_the_built_ins():
    assert capability_parameter(create_estimator("cnn-fast"), "mirror_augmentation") == "flip"
    assert capability_parameter(create_estimator("cnn-vgg"), "mirror_augmentation") == "flip"
    assert capability_parameter(create_estimator("cnn-simple"), "mirror_augmentation") is None
    assert capability_parameter(create_estimator("ridge-random-features"), "mirror_augmentation") == "mirror"
    assert capability_parameter(create_estimator("logreg-kmeans-patches"), "mirror_augmentation") == "mirror"
    assert capability_parameter(create_estimator("svm-hog-color"), "mirror_augmentation") is None
    assert capability_parameter(create_estimator("bagged-trees-hog-color-lbp"), "seed") == "random_state"


def test_one_meaning_per_suffix():
    """-hog-color is HOG + colour moments + colour histograms wherever it is used; -lbp adds LBP."""
    suffixes = {"-hog-color": "hog+color-moments+color-hist",
                "-hog-color-lbp": "hog+color-moments+color-hist+lbp",
                "-bovw": "dense-hog", "-bovw-color-hist": "dense-hog+color-hist",
                "-color-moments": "color-moments", "-pixels": "pixels", "-hog": "hog",
                "-imagenet": "efficientnet-lite0"}
    for name in BUILT_IN:
        estimator = create_estimator(name)
        if not hasattr(estimator, "features"):
            continue
        suffix = max((s for s in suffixes if name.endswith(s)), key=len, default=None)
        if suffix is None:  # knn-hog-tuned: a modifier after the features
            suffix = max(s for s in suffixes if name.removesuffix("-tuned").endswith(s))
        assert estimator.features == suffixes[suffix], name
