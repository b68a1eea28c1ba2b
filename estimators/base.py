"""The base class of the classical estimators: handcrafted features, then a learned head."""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from features import as_image_batch, make_features

from .tags import BenchmarkTagsMixin


def check_images_and_labels(X, y):
    """Validated (images, labels) for `fit`; one-line ValueErrors say what is wrong."""
    X = as_image_batch(X)
    if y is None:
        raise ValueError(
            "requires y to be passed, but the target y is None: pass one label per image"
        )
    y = column_or_1d(y, warn=True)
    if len(y) != len(X):
        raise ValueError(f"X has {len(X)} images but y has {len(y)} labels; pass one label per image")
    check_classification_targets(y)
    return X, y


class FeatureClassifier(BenchmarkTagsMixin, ClassifierMixin, BaseEstimator):
    """A classifier on images made of a stateless feature extractor and a learned head.

    Subclasses store their hyper-parameters in `__init__` (one of them, `features`, names the
    extractor: see `features.make_features`) and implement `_make_head()`, the unfitted
    scikit-learn classifier over feature vectors. Everything learned (scaling, PCA, the model,
    any tuning by inner cross-validation) lives in the head, so it is fitted on the training
    images only.

    Because the extractor is deterministic per image, the runner may compute a dataset's
    features once and call `fit_features` / `predict_features` on rows of that matrix; the
    result is identical to `fit` / `predict` on the images themselves.

    Its tags (estimators.tags) are the family "classical" and nothing declared; subclasses add
    their seed parameter and search space in `__benchmark_tags__`, and the valid values of their
    parameters in scikit-learn's `_parameter_constraints` (scikit-learn's own constraints where a
    parameter is passed on to its model), which are checked before any cell runs
    (estimators.settings.check_parameters), so `n_neighbors=0` is one line, not a failed run.
    """

    def feature_extractor(self):
        """The unfitted, stateless feature extractor this estimator uses."""
        return make_features(self.features)

    def _make_head(self):
        raise NotImplementedError

    # -- on images ---------------------------------------------------------------------------
    def fit(self, X, y):
        X, y = check_images_and_labels(X, y)
        return self.fit_features(self.feature_extractor().transform(X), y, image_shape=X.shape[1:])

    def predict(self, X):
        return self.predict_features(self._features_for_prediction(X))

    def predict_proba(self, X):
        return self.predict_proba_features(self._features_for_prediction(X))

    def _features_for_prediction(self, X):
        check_is_fitted(self, "head_")
        X = as_image_batch(X)
        if X.shape[1:] != self.image_shape_:
            n_features = int(np.prod(X.shape[1:]))
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input: images of shape {X.shape[1:]} instead "
                f"of {self.image_shape_}; resize the images to match"
            )
        return self.feature_extractor().transform(X)

    # -- on precomputed features -------------------------------------------------------------
    def fit_features(self, features, y, image_shape):
        """Fit the head on `features` (rows of `feature_extractor().transform(images)`)."""
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                f"need images of at least 2 classes to fit a classifier; got one class, "
                f"{self.classes_[0]!r}"
            )
        self.head_ = self._make_head().fit(features, y)
        self.image_shape_ = tuple(image_shape)
        self.n_features_in_ = int(np.prod(image_shape))
        return self

    def predict_features(self, features):
        check_is_fitted(self, "head_")
        return self.head_.predict(features)

    def predict_proba_features(self, features):
        check_is_fitted(self, "head_")
        return self.head_.predict_proba(features)
