"""Bagged decision trees on handcrafted features."""

from numbers import Integral

from sklearn.ensemble import BaggingClassifier
from sklearn.tree import DecisionTreeClassifier

from .base import FeatureClassifier
from .registry import register


class BaggedTreesImageClassifier(FeatureClassifier):
    """`BaggingClassifier` over `DecisionTreeClassifier(max_depth, max_features=split_features)`.

    Each of `n_estimators` trees sees a bootstrap sample of `max_samples` of the training
    images and a random `max_features` share of the features; `split_features` is how many of
    those each split considers (None: all, as in plain bagging; "sqrt": a random subset per
    split, which decorrelates the trees and makes each one several times cheaper to grow).
    `n_jobs` trains trees in parallel and does not change the result.
    """

    _parameter_constraints = {
        "n_estimators": BaggingClassifier._parameter_constraints["n_estimators"],
        "max_depth": DecisionTreeClassifier._parameter_constraints["max_depth"],
        "max_samples": BaggingClassifier._parameter_constraints["max_samples"],
        "max_features": BaggingClassifier._parameter_constraints["max_features"],
        "split_features": DecisionTreeClassifier._parameter_constraints["max_features"],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        features="hog+color-moments+color-hist+lbp",
        n_estimators=100,
        max_depth=None,
        max_samples=1.0,
        max_features=1.0,
        split_features="sqrt",
        random_state=0,
        n_jobs=None,
    ):
        self.features = features
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.max_samples = max_samples
        self.max_features = max_features
        self.split_features = split_features
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.parameters.seed = "random_state"
        tags.search_space = {  # searched by `run --tune`, as the art study tuned tree depth
            "max_depth": [None, 5, 7, 10, 15, 25],
            "max_samples": [0.3, 0.6, 1.0],
            "max_features": [0.3, 0.7, 1.0],
        }
        return tags

    def _make_head(self):
        return BaggingClassifier(
            DecisionTreeClassifier(max_depth=self.max_depth, max_features=self.split_features),
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            max_features=self.max_features,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )


@register(
    "bagged-trees-color-moments",
    description="21 bagged trees (depth 7, 30% samples, 70% features) on colour moments, as in the art study",
)
def bagged_trees_color_moments():
    return BaggedTreesImageClassifier(
        features="color-moments",
        n_estimators=21,
        max_depth=7,
        max_samples=0.3,
        max_features=0.7,
        split_features=None,
    )


@register("bagged-trees-hog-color-lbp", description="100 bagged full-depth trees (sqrt features per split) on HOG, colour and LBP features")
def bagged_trees_hog_color_lbp():
    return BaggedTreesImageClassifier()
