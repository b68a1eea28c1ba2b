"""Bag of visual words: dense local descriptors, a codebook learned per training fold, an SVM.

The classic pipeline of the TrashNet paper's SVM-on-SIFT baseline (Thung & Yang, 2016) and of
Lazebnik et al.'s spatial pyramid: the dense descriptors of each image (features/dense.py,
cached like any feature because they depend on the image alone) are quantised against a
codebook of visual words, each image becomes a normalised histogram of its words (over the
whole image and over each quarter), and a linear SVM on an explicit map of the chi-squared
kernel classifies the histograms. The codebook is learned (MiniBatchKMeans) inside the head,
so on the training fold only: the test fold's descriptors are never clustered.
"""

from numbers import Integral

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.cluster import MiniBatchKMeans
from sklearn.compose import ColumnTransformer
from sklearn.kernel_approximation import AdditiveChi2Sampler
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_array, check_is_fitted

from features.dense import DenseHOG

from .base import FeatureClassifier
from .registry import register

# Passes over the descriptor sample at most: MiniBatchKMeans's default 100 costs seconds on the
# small embedded datasets and, measured there and on TrashNet, buys no accuracy over 10.
KMEANS_EPOCHS = 10
# Descriptors assigned per chunk when encoding: bounds the (chunk, n_words) distance matrix.
ENCODE_CHUNK = 65536


class VisualWords(TransformerMixin, BaseEstimator):
    """Rows of dense descriptors -> spatial-pyramid histograms of visual words.

    A row holds an image's `grid_shape` grid of descriptors of `descriptor_size` values each
    (DenseHOG's layout). `fit` clusters at most `max_descriptors` descriptors drawn at random
    from the rows it is given into `n_words` words (fewer when it has fewer distinct
    descriptors) with MiniBatchKMeans (one k-means++ start, at most KMEANS_EPOCHS passes).
    `transform` gives each descriptor to its `soft_neighbors` nearest words with weights
    exp(-d^2 / bandwidth) (localised soft assignment, Liu et al. 2011; 1 is hard assignment),
    `bandwidth_` being the median squared distance of a descriptor to its nearest word, then
    counts the words over the whole grid (level 0) and, up to `pyramid_levels` - 1, over each
    of the 2**level x 2**level regions of level `level` (Lazebnik et al.'s spatial pyramid;
    2 levels: the whole image and its quarters). Each region's histogram sums to
    1 / (regions of its level), so every level weighs the same whatever the number of
    descriptors.
    """

    def __init__(self, grid_shape=(1, 1), descriptor_size=1, n_words=256, pyramid_levels=2,
                 soft_neighbors=3, max_descriptors=100_000, random_state=0):
        self.grid_shape = grid_shape
        self.descriptor_size = descriptor_size
        self.n_words = n_words
        self.pyramid_levels = pyramid_levels
        self.soft_neighbors = soft_neighbors
        self.max_descriptors = max_descriptors
        self.random_state = random_state

    def _descriptors(self, X):
        X = check_array(X, dtype=np.float32)
        rows, cols = self.grid_shape
        if X.shape[1] != rows * cols * self.descriptor_size:
            raise ValueError(
                f"rows of {X.shape[1]} values are not a {rows}x{cols} grid of descriptors of "
                f"{self.descriptor_size} values"
            )
        return X.reshape(len(X), rows * cols, self.descriptor_size)

    def fit(self, X, y=None):
        if int(self.pyramid_levels) < 1:
            raise ValueError(f"pyramid_levels must be at least 1; got {self.pyramid_levels}")
        descriptors = self._descriptors(X).reshape(-1, self.descriptor_size)
        rng = np.random.default_rng(self.random_state)
        if len(descriptors) > self.max_descriptors:
            descriptors = descriptors[rng.choice(len(descriptors), self.max_descriptors, replace=False)]
        # k-means cannot make more words than distinct descriptors (tiny or flat images).
        n_distinct = len(np.unique(descriptors, axis=0))
        self.n_words_ = max(1, min(int(self.n_words), n_distinct))
        self.codebook_ = MiniBatchKMeans(
            self.n_words_, batch_size=2048, n_init=1, max_iter=KMEANS_EPOCHS,
            random_state=self.random_state,
        ).fit(descriptors)
        self.words_ = self.codebook_.cluster_centers_.astype(np.float32)
        nearest = self._nearest(descriptors)[1][:, 0]
        self.bandwidth_ = float(max(np.median(nearest), 1e-12))
        self.n_features_in_ = int(np.prod(self.grid_shape)) * self.descriptor_size
        return self

    def _nearest(self, descriptors):
        """(indices, squared distances) of each descriptor's `soft_neighbors` nearest words,
        nearest first. Distances by the expanded square on float32 matrix products, in
        chunks: `codebook_.transform` would hold the whole float64 distance matrix."""
        k = max(1, min(int(self.soft_neighbors), self.n_words_))
        word_norms = (self.words_ * self.words_).sum(axis=1)
        indices, distances = [], []
        for start in range(0, len(descriptors), ENCODE_CHUNK):
            chunk = descriptors[start : start + ENCODE_CHUNK]
            d2 = word_norms - 2 * chunk @ self.words_.T
            d2 += (chunk * chunk).sum(axis=1, keepdims=True)
            np.maximum(d2, 0, out=d2)
            if k < self.n_words_:
                top = np.argpartition(d2, k - 1, axis=1)[:, :k]
            else:
                top = np.broadcast_to(np.arange(k), d2.shape).copy()
            top_d2 = np.take_along_axis(d2, top, axis=1)
            order = np.argsort(top_d2, axis=1, kind="stable")
            indices.append(np.take_along_axis(top, order, axis=1))
            distances.append(np.take_along_axis(top_d2, order, axis=1))
        return np.concatenate(indices), np.concatenate(distances)

    def region_index(self):
        """For each pyramid level, the region (0..4**level - 1) of each grid point."""
        rows, cols = self.grid_shape
        r, c = np.divmod(np.arange(rows * cols), cols)
        levels = []
        for level in range(int(self.pyramid_levels)):
            split = 2**level
            levels.append((r * split // rows) * split + c * split // cols)
        return levels

    def transform(self, X):
        check_is_fitted(self, "words_")
        descriptors = self._descriptors(X)
        n, points, _ = descriptors.shape
        words, d2 = self._nearest(descriptors.reshape(-1, self.descriptor_size))
        # Weights relative to the nearest word (so no underflow), summing to 1 per descriptor.
        weights = np.exp(-(d2 - d2[:, :1]) / self.bandwidth_)
        weights /= weights.sum(axis=1, keepdims=True)
        words = words.reshape(n, points, -1)
        weights = weights.reshape(n, points, -1)
        image = np.arange(n)[:, None, None]
        histograms = []
        for level, region in enumerate(self.region_index()):
            n_regions = 4**level
            index = (image * n_regions + region[None, :, None]) * self.n_words_ + words
            counts = np.bincount(index.ravel(), weights.ravel(), minlength=n * n_regions * self.n_words_)
            counts = counts.reshape(n, n_regions, self.n_words_)
            points_per_region = np.bincount(region, minlength=n_regions)
            # Regions with no grid point (grids smaller than 2x2) stay empty.
            scale = np.where(points_per_region > 0, 1.0 / np.maximum(points_per_region, 1), 0.0)
            histograms.append(counts * (scale / n_regions)[None, :, None])
        return np.concatenate([h.reshape(n, -1) for h in histograms], axis=1).astype(np.float32)


@register(
    "svm-bovw",
    description="bag of visual words on dense SIFT-like HOG descriptors (codebook per training "
    "fold, 2-level spatial pyramid) and a chi-squared linear SVM, after the TrashNet authors' "
    "SVM-on-SIFT baseline",
)
class BagOfVisualWordsImageClassifier(FeatureClassifier):
    """Bag of visual words with a spatial pyramid and a chi-squared-kernel linear SVM.

    `features` must start with "dense-hog" (the dense descriptors); further features joined
    with "+" (e.g. "dense-hog+color-hist") are non-negative global histograms appended to the
    word histograms. The head learns, on the training fold: the codebook of `n_words` words
    (VisualWords, with `pyramid_levels`, `soft_neighbors` and `max_descriptors`), then a
    LinearSVC with penalty `C` on AdditiveChi2Sampler's map of the histograms (the
    chi-squared kernel, the one suited to histograms, at a linear SVM's cost). Probabilities
    come from sigmoid calibration over `calibration_folds` inner folds
    (CalibratedClassifierCV), since LinearSVC has none and SVC(probability=True) is
    deprecated. `random_state` seeds the descriptor sample and the clustering.
    """

    _parameter_constraints = {
        "n_words": [Interval(Integral, 1, None, closed="left")],
        "pyramid_levels": [Interval(Integral, 1, None, closed="left")],
        "soft_neighbors": [Interval(Integral, 1, None, closed="left")],
        "max_descriptors": [Interval(Integral, 1, None, closed="left")],
        "C": LinearSVC._parameter_constraints["C"],
        "calibration_folds": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, features="dense-hog", n_words=256, pyramid_levels=2, soft_neighbors=3,
                 max_descriptors=100_000, C=0.3, calibration_folds=3, random_state=0):
        self.features = features
        self.n_words = n_words
        self.pyramid_levels = pyramid_levels
        self.soft_neighbors = soft_neighbors
        self.max_descriptors = max_descriptors
        self.C = C
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.parameters.seed = "random_state"
        # Tuning space in scikit-learn's ParameterSampler format: the vocabulary size and the
        # SVM's penalty are the two settings BoVW accuracy depends on most.
        tags.search_space = {"n_words": [128, 256, 512, 1024], "C": stats.loguniform(0.01, 10)}
        return tags

    def feature_extractor(self):
        """The extractor of `features`, which must start with the dense descriptors: checked
        here, so a wrong `features` is refused before any cell (as an unknown name is)."""
        extractor = super().feature_extractor()
        first = extractor.transformer_list[0][1] if isinstance(extractor, FeatureUnion) else extractor
        if not isinstance(first, DenseHOG):
            raise ValueError(
                f"features must start with dense local descriptors ('dense-hog'); got {self.features!r}"
            )
        return extractor

    def descriptor_extractor(self):
        """The DenseHOG that gives the first columns of the features."""
        extractor = self.feature_extractor()
        if isinstance(extractor, FeatureUnion):
            extractor = extractor.transformer_list[0][1]
        if not isinstance(extractor, DenseHOG):
            raise ValueError(
                f"features must start with dense local descriptors ('dense-hog'); got {self.features!r}"
            )
        return extractor

    def fit_features(self, features, y, image_shape):
        # The head's layout of the columns depends on the images' shape: set it first.
        extractor = self.descriptor_extractor()
        self.grid_shape_ = extractor.grid_shape(image_shape)
        self.n_descriptor_columns_ = int(np.prod(self.grid_shape_)) * extractor.descriptor_size
        return super().fit_features(features, y, image_shape)

    def _make_head(self):
        words = VisualWords(
            grid_shape=self.grid_shape_,
            descriptor_size=self.descriptor_extractor().descriptor_size,
            n_words=self.n_words,
            pyramid_levels=self.pyramid_levels,
            soft_neighbors=self.soft_neighbors,
            max_descriptors=self.max_descriptors,
            random_state=self.random_state,
        )
        if isinstance(self.feature_extractor(), FeatureUnion):
            n = self.n_descriptor_columns_
            words = ColumnTransformer(
                [("words", words, slice(0, n)), ("global", "passthrough", slice(n, None))]
            )
        svm = LinearSVC(C=self.C, random_state=self.random_state)
        return Pipeline([
            ("words", words),
            ("chi2", AdditiveChi2Sampler(sample_steps=2)),
            ("svm", CalibratedClassifierCV(svm, cv=self.calibration_folds)),
        ])


@register(
    "svm-bovw-color-hist",
    description="svm-bovw with global colour histograms beside the visual words (shape and colour)",
)
def svm_bovw_color_hist():
    return BagOfVisualWordsImageClassifier(features="dense-hog+color-hist")
