"""Random forests on handcrafted features."""

from numbers import Integral

from sklearn.ensemble import RandomForestClassifier

from .base import FeatureClassifier
from .registry import register

TREE_FEATURES = "hog+color-moments+color-hist+lbp"


class RandomForestImageClassifier(FeatureClassifier):
    """`RandomForestClassifier` (Breiman 2001): `n_estimators` full trees on bootstrap samples,
    `max_features` of the features considered at each split. `n_jobs` grows trees in parallel
    and does not change the result."""

    _parameter_constraints = {
        **{p: RandomForestClassifier._parameter_constraints[p]
           for p in ("n_estimators", "max_features", "max_depth", "min_samples_leaf")},
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(self, features=TREE_FEATURES, n_estimators=300, max_features="sqrt",
                 max_depth=None, min_samples_leaf=1, random_state=0, n_jobs=None):
        self.features = features
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.parameters.seed = "random_state"
        tags.search_space = {  # searched by `run --tune`
            "max_features": ["sqrt", "log2", 0.05, 0.15],
            "min_samples_leaf": [1, 2, 4],
            "max_depth": [None, 12, 24],
        }
        return tags

    def _make_head(self):
        return RandomForestClassifier(
            n_estimators=self.n_estimators, max_features=self.max_features,
            max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
            random_state=self.random_state, n_jobs=self.n_jobs,
        )


@register("random-forest-hog-color-lbp",
          description="random forest (300 trees) on HOG, colour and LBP features")
def random_forest_hog_color_lbp():
    return RandomForestImageClassifier()
