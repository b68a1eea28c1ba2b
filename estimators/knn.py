"""k-nearest neighbours on handcrafted features, with k fixed or tuned inside the training fold."""

from numbers import Integral

from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval, StrOptions

from .base import FeatureClassifier
from .registry import register


class KNNImageClassifier(FeatureClassifier):
    """k-nearest neighbours, on standardised features when `scale` is true."""

    _parameter_constraints = {
        "n_neighbors": KNeighborsClassifier._parameter_constraints["n_neighbors"],
        "weights": [StrOptions({"uniform", "distance"})],
        "scale": ["boolean"],
    }

    def __init__(self, features="hog", n_neighbors=5, weights="distance", scale=False):
        self.features = features
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.scale = scale

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        # searched by `run --tune` (estimators.tuning), as the art study chose k by CV
        tags.search_space = {"n_neighbors": [1, 3, 5, 7, 9, 15, 21], "weights": ["uniform", "distance"]}
        return tags

    def _make_head(self):
        return _knn_pipeline(self.scale, self.n_neighbors, self.weights)


class TunedKNNImageClassifier(FeatureClassifier):
    """k-nearest neighbours whose k is chosen by a grid search inside the training data.

    The search is a stratified `cv`-fold cross-validation (macro-F1) over `n_neighbors_grid`
    on the images `fit` receives, so under the runner it is nested cross-validation: the outer
    test fold is never seen while k is chosen (as the art study chose k by CV). The chosen k is
    `best_n_neighbors_`.
    """

    _parameter_constraints = {
        "weights": [StrOptions({"uniform", "distance"})],
        "scale": ["boolean"],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        features="hog",
        n_neighbors_grid=(1, 3, 5, 7, 11, 15),
        weights="distance",
        scale=False,
        cv=3,
        random_state=0,
    ):
        self.features = features
        self.n_neighbors_grid = n_neighbors_grid
        self.weights = weights
        self.scale = scale
        self.cv = cv
        self.random_state = random_state

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.parameters.seed = "random_state"
        return tags

    def _make_head(self):
        return GridSearchCV(
            _knn_pipeline(self.scale, 5, self.weights),
            {"knn__n_neighbors": list(self.n_neighbors_grid)},
            cv=StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state),
            scoring="f1_macro",
        )

    def fit_features(self, features, y, image_shape):
        super().fit_features(features, y, image_shape)
        self.best_n_neighbors_ = self.head_.best_params_["knn__n_neighbors"]
        return self

def _knn_pipeline(scale, n_neighbors, weights):
    steps = [("scale", StandardScaler())] if scale else []
    steps.append(("knn", KNeighborsClassifier(n_neighbors=n_neighbors, weights=weights)))
    return Pipeline(steps)


@register("knn-pixels", description="5-nearest neighbours on raw pixels")
def knn_pixels():
    return KNNImageClassifier(features="pixels", n_neighbors=5)

@register("knn-hog", description="5-nearest neighbours on HOG features")
def knn_hog():
    return KNNImageClassifier(features="hog", n_neighbors=5)

@register("knn-hog-tuned", description="k-nearest neighbours on HOG, k chosen by 3-fold CV inside the training fold")
def knn_hog_tuned():
    return TunedKNNImageClassifier(features="hog")
