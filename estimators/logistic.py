"""Logistic regression on handcrafted features or raw pixels."""

from scipy.stats import loguniform
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .base import FeatureClassifier
from .registry import register


class LogisticRegressionImageClassifier(FeatureClassifier):
    """Multinomial logistic regression on standardised features.

    `C` is the inverse L2 regularisation strength; the scaler is fitted on the training fold.
    """

    _parameter_constraints = {
        "C": LogisticRegression._parameter_constraints["C"],
        "max_iter": LogisticRegression._parameter_constraints["max_iter"],
    }

    def __init__(self, features="hog+color-moments+color-hist", C=0.1, max_iter=500):
        self.features = features
        self.C = C
        self.max_iter = max_iter

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.search_space = {"C": loguniform(1e-3, 10)}  # searched by `run --tune`
        return tags

    def fit_features(self, features, y, image_shape):
        super().fit_features(features, y, image_shape)
        self.n_iter_ = self.head_[-1].n_iter_
        return self

    def _make_head(self):
        return make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=self.max_iter))


@register("logreg-pixels", description="logistic regression on raw pixels (the garbage study's baseline)")
def logreg_pixels():
    return LogisticRegressionImageClassifier(features="pixels", C=0.01)


@register("logreg-hog-color", description="logistic regression on HOG, colour moments and colour histograms")
def logreg_hog_color():
    return LogisticRegressionImageClassifier(features="hog+color-moments+color-hist", C=0.1)
