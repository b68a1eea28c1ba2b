"""The base class of the classical estimators: handcrafted features, then a learned head."""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from features import as_image_batch, make_features, pretrained_parts
from features.backbones import get_backbone
from features.mirror import with_mirror

from .tags import BenchmarkTagsMixin, benchmark_tags

# The values of a classical estimator's mirror switch (see FeatureClassifier): off; train on
# each image and its mirror and average the test predictions of an image and its mirror; or
# train on both and predict from the image alone.
MIRROR_MODES = {False: "none", True: "mirror (train + test)", "train": "mirror (train only)"}


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

    Its tags (estimators.tags) are the family "classical" ("pretrained", and the data its
    network was trained on, when its features are a pretrained network's embedding:
    features.embedding) and nothing declared; subclasses add
    their seed parameter and search space in `__benchmark_tags__`, and the valid values of their
    parameters in scikit-learn's `_parameter_constraints` (scikit-learn's own constraints where a
    parameter is passed on to its model), which are checked before any cell runs
    (estimators.settings.check_parameters), so `n_neighbors=0` is one line, not a failed run.

    Mirror augmentation: a subclass with a mirror switch declares it in its tags
    (`tags.parameters.mirror_augmentation = "mirror"`); its values are MIRROR_MODES' keys.
    When it is on, `cell_extractor()` appends the features of each image's left-right mirror
    (features.mirror: cached like any features), `fit_features` trains the head on each
    training image and its mirror (twice the rows), and with `True` the test predictions of an
    image and its mirror are averaged ("train": the image's alone). Only the training rows are
    ever doubled; a test image is never seen in training. The runner switches it off on
    datasets whose labels a mirror changes (digits), and the report says so. `augmentation_`
    records what the fit did ("none" with the switch off; None without a switch), for the
    cell's diagnostics and the report.
    """

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        try:
            parts = pretrained_parts(self.feature_extractor())
        except (AttributeError, ValueError):  # no or unknown features: said where they are checked
            parts = []
        if parts:  # features from a network trained on external data: a family of its own
            tags.family = "pretrained"
            backbone = get_backbone(parts[0].backbone)
            tags.pretrained_on = backbone.pretrained_on
            tags.pretrained_input = int(parts[0].input_size or backbone.input_size)
        return tags

    def feature_extractor(self):
        """The unfitted, stateless feature extractor this estimator uses."""
        return make_features(self.features)

    def missing_requirements(self):
        """None when everything this estimator needs is on this machine; else why not, one
        line (a pretrained network's weight file that is absent and cannot be fetched)."""
        for part in pretrained_parts(self.feature_extractor()):
            problem = get_backbone(part.backbone).problem(part.weights_dir)
            if problem:
                return problem
        return None

    def cell_extractor(self):
        """The extractor whose output `fit_features` / `predict_features` take: the feature
        extractor, followed by the same features of each image's mirror when the mirror
        switch is on."""
        extractor = self.feature_extractor()
        return with_mirror(extractor) if self._mirror_mode() else extractor

    def _mirror_mode(self):
        name = benchmark_tags(self).parameters.mirror_augmentation
        if name is None:
            return False
        mode = self.get_params(deep=False)[name]
        if isinstance(mode, np.bool_):
            mode = bool(mode)
        if not (mode is True or mode is False or mode == "train"):
            raise ValueError(f"{name} must be one of False, True or 'train'; got {mode!r}")
        return mode

    def _make_head(self):
        raise NotImplementedError

    # -- on images ---------------------------------------------------------------------------
    def fit(self, X, y):
        X, y = check_images_and_labels(X, y)
        return self.fit_features(self.cell_extractor().transform(X), y, image_shape=X.shape[1:])

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
        return self.cell_extractor().transform(X)

    # -- on precomputed features -------------------------------------------------------------
    def fit_features(self, features, y, image_shape):
        """Fit the head on `features` (rows of `cell_extractor().transform(images)`)."""
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        mode = self._mirror_mode()
        # what the fit did, for an estimator with a mirror switch (None: it has none)
        declared = benchmark_tags(self).parameters.mirror_augmentation is not None
        self.augmentation_ = MIRROR_MODES[mode] if declared else None
        if mode:  # each training image and its mirror: the two halves of the columns, as rows
            half = _half(features)
            features = np.concatenate([features[:, :half], features[:, half:]])
            y = np.concatenate([y, y])
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
        mode = self._mirror_mode()
        if mode is True:  # the class of the averaged scores of the image and its mirror
            method = "predict_proba" if hasattr(self.head_, "predict_proba") else "decision_function"
            scores = self._averaged(features, method)
            if scores.ndim == 1:  # a binary decision function
                return self.classes_[(scores > 0).astype(int)]
            return self.classes_[np.argmax(scores, axis=1)]
        if mode == "train":
            features = features[:, : _half(features)]
        return self.head_.predict(features)

    def predict_proba_features(self, features):
        check_is_fitted(self, "head_")
        mode = self._mirror_mode()
        if mode is True:
            return self._averaged(features, "predict_proba")
        if mode == "train":
            features = features[:, : _half(features)]
        return self.head_.predict_proba(features)

    def _averaged(self, features, method):
        """The head's `method` on the images' features and on their mirrors', averaged."""
        half = _half(features)
        score = getattr(self.head_, method)
        return (score(features[:, :half]) + score(features[:, half:])) / 2


def _half(features):
    """Where the mirrors' columns start in a `cell_extractor` matrix of a mirroring estimator."""
    if features.ndim != 2 or features.shape[1] % 2:
        raise ValueError(
            f"features of {features.shape[1:]} columns are not an image's and its mirror's; "
            "pass the output of cell_extractor()"
        )
    return features.shape[1] // 2
