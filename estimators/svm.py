"""RBF support-vector machine on HOG and colour features (Dalal and Triggs 2005's classifier,
with a kernel), the field's strongest classical pipeline on small images."""

from numbers import Integral, Real

import numpy as np
from scipy.stats import loguniform
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils._param_validation import Interval, StrOptions

from .base import FeatureClassifier
from .registry import register


class SVMImageClassifier(FeatureClassifier):
    """`SVC(kernel, C, gamma)` on standardised features, with calibrated probabilities.

    `predict_proba` comes from `CalibratedClassifierCV(SVC(...), ensemble=False)`, scikit-learn's
    replacement for the deprecated `SVC(probability=True)`: the calibration (`calibration`,
    "sigmoid" or "temperature") is fitted on `calibration_cv`-fold out-of-fold decision values of
    the training images, and one SVC fitted on all of them predicts. Everything, the scaler
    included, is fitted on the training fold only.
    """

    _parameter_constraints = {
        "C": SVC._parameter_constraints["C"],
        "gamma_scale": [Interval(Real, 0, None, closed="neither")],
        "kernel": SVC._parameter_constraints["kernel"],
        "calibration": [StrOptions({"sigmoid", "temperature"})],
        "calibration_cv": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        features="hog+color-moments+color-hist",
        C=10.0,
        gamma_scale=1.0,
        kernel="rbf",
        calibration="sigmoid",
        calibration_cv=3,
        random_state=0,
    ):
        self.features = features
        self.C = C
        self.gamma_scale = gamma_scale
        self.kernel = kernel
        self.calibration = calibration
        self.calibration_cv = calibration_cv
        self.random_state = random_state

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.parameters.seed = "random_state"
        # The search `run --tune` draws from (see estimators.tuning): the two parameters that
        # decide an RBF SVM (Hsu, Chang and Lin's practical guide searches exactly these).
        # gamma is relative to "scale" (1 / (n_features * variance)), so the range fits any features.
        tags.search_space = {"C": loguniform(0.3, 100), "gamma_scale": loguniform(0.1, 10)}
        return tags

    def fit_features(self, features, y, image_shape):
        # gamma="scale" is 1 / (n_features * X.var()); on standardised features X.var() is 1
        self._n_features = features.shape[1] if np.ndim(features) == 2 else 1
        # the calibration's folds cannot outnumber the images of the rarest class
        self._smallest_class = int(np.unique(np.asarray(y), return_counts=True)[1].min())
        return super().fit_features(features, y, image_shape)

    def _make_head(self):
        svc = SVC(kernel=self.kernel, C=self.C, gamma=self.gamma_scale / max(self._n_features, 1),
                  random_state=self.random_state)
        folds = max(2, min(self.calibration_cv, self._smallest_class))
        calibrated = CalibratedClassifierCV(svc, method=self.calibration, cv=folds, ensemble=False)
        return make_pipeline(StandardScaler(), calibrated)


@register(
    "svm-hog-color",
    description="RBF SVM on HOG, colour moments and colour histograms (Dalal & Triggs' pipeline with a kernel)",
)
def svm_hog_color():
    return SVMImageClassifier()
