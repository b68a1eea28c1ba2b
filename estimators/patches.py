"""Single-layer learned patch features (Coates, Lee & Ng, 2011), then a linear classifier.

Coates, Lee & Ng, "An Analysis of Single-Layer Networks in Unsupervised Feature Learning"
(AISTATS 2011) showed that one layer of features learned by k-means from small image patches,
with the right details, rivals far deeper models of its time on CIFAR-10 (77.9% with 1,600
centroids, 79.6% with 4,000). The details, all followed here:

1. random patches (6x6, every channel) of the training images, each normalised for
   brightness and contrast (mean removed, divided by sqrt(variance + 10), on a 0..255 scale);
2. ZCA whitening of those patches (eigenvalues regularised by 0.1);
3. a k-means dictionary of K centroids in the whitened space;
4. "triangle" encoding of a patch: f_k = max(0, mean(z) - z_k), z_k its distance to centroid
   k, so a patch activates only the centroids closer than average (sparse, ~half are 0);
5. dense encoding of every patch of an image (stride 1), summed over the image's 4 quadrants:
   4K features;
6. a linear classifier on the standardised features.

Steps 1-4 are learned, so they live in the head (`PatchEncoder`, the first step of the
head's Pipeline) and are fitted on the training fold only; the cached extractor is raw pixels,
which is stateless. Nothing learned ever goes through the per-dataset feature cache.
"""

from numbers import Integral, Real

import numpy as np
from scipy.stats import loguniform
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import MiniBatchKMeans
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from features import RawPixels
from features.base import thread_budget

from .base import FeatureClassifier
from .normal_equations import StreamingRidgeClassifier
from .registry import register

# Brightness/contrast normalisation adds this to each patch's variance before dividing by the
# square root (Coates et al.: 10 on the 0..255 scale; our pixels are on 0..1). It keeps nearly
# flat patches (sky, background) from being blown up into noise.
NORM_EPSILON = 10 / 255**2
# n_centroids="auto" / n_patches="auto" (see PatchKMeansImageClassifier.dictionary_size)
AUTO_CENTROIDS = (100, 1600)
AUTO_IMAGES_PER_CENTROID = 6
PATCHES_PER_CENTROID = 125
# Distances are computed for this many (patch, centroid) pairs at a time: ~32 MB of float32,
# large enough for BLAS to run at speed, small enough to keep memory flat on any dataset.
CHUNK_ELEMENTS = 1 << 23


class PatchImages:
    """Rows of pixels seen as images of `image_shape`, and their patches: for transformers with
    `image_shape`, `patch_size`, `stride` and (once fitted) `patch_shape_` attributes."""

    def _images(self, X, fitted):
        X = check_array(X, dtype=np.float32)
        shape = tuple(int(s) for s in self.image_shape)
        if len(shape) != 3 or int(np.prod(shape)) != X.shape[1]:
            raise ValueError(f"rows of {X.shape[1]} values are not images of shape {shape}")
        if fitted and shape != self.image_shape_:
            raise ValueError(f"fitted on images of shape {self.image_shape_}, not {shape}")
        if not fitted:
            self.image_shape_ = shape
        return X.reshape(len(X), *shape)

    def _map_shape(self):
        """(rows, cols) of the patch positions in images of `image_shape` at `stride` (known
        before fitting: the patch is `patch_shape(image_shape, patch_size)`)."""
        height, width = tuple(self.image_shape)[:2]
        ph, pw = patch_shape(self.image_shape, self.patch_size)
        return len(range(0, height - ph + 1, self.stride)), len(range(0, width - pw + 1, self.stride))

    def _windows(self, images):
        """Every patch position as a view (n, rows, cols, channels, ph, pw), at `stride`."""
        windows = np.lib.stride_tricks.sliding_window_view(images, self.patch_shape_, axis=(1, 2))
        return windows[:, :: self.stride, :: self.stride]


class PatchEncoder(PatchImages, TransformerMixin, BaseEstimator):
    """Learned patch features: normalise, ZCA-whiten, k-means, triangle-encode, quadrant-pool.

    Input rows are flattened images of `image_shape` (height, width, channels), as
    `features.RawPixels` gives them (0..1 pixels). `fit` samples `n_patches` random patches of
    `patch_size` x `patch_size` pixels from the images it is given and learns the whitening and
    a dictionary of `n_centroids` centroids (fewer when fewer patches exist: the dictionary
    cannot have more centroids than patches); `transform` encodes every patch at `stride` and
    sums the codes over the image's quadrants, giving 4 x n_centroids_ features.

    Patch sides are capped at half the image side (at least 1 pixel), so small images still get
    a map of patch positions to pool over: 8x8 digits get 4x4 patches, 32x32 images the paper's
    6x6. `whiten_epsilon` regularises the whitening (0.1 in the paper). `n_jobs` threads encode
    chunks of images side by side (None: as many as the BLAS pools may use here); it does not
    change the result beyond float32 rounding.
    """

    def __init__(self, image_shape, patch_size=6, n_centroids=400, stride=1, n_patches=50_000,
                 whiten_epsilon=0.1, kmeans_batch_size=4096, random_state=None, n_jobs=None):
        self.image_shape = image_shape
        self.patch_size = patch_size
        self.n_centroids = n_centroids
        self.stride = stride
        self.n_patches = n_patches
        self.whiten_epsilon = whiten_epsilon
        self.kmeans_batch_size = kmeans_batch_size
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X, y=None):
        images = self._images(X, fitted=False)
        self.patch_shape_ = patch_shape(self.image_shape_, self.patch_size)
        windows = self._windows(images)  # (n, rows, cols, channels, ph, pw), a view
        rng = check_random_state(self.random_state)
        patches = sample_patches(windows, self.n_patches, rng)
        self.mean_, self.whitening_ = zca_whitening(patches, self.whiten_epsilon)
        whitened = (patches - self.mean_) @ self.whitening_

        # Centroids start at random patches, as in the paper: k-means++ seeding cost 3-4x the
        # whole dictionary fit and gave no better CIFAR-10 validation accuracy (0.654 vs 0.662,
        # 400 centroids, C=0.01; see PatchKMeansImageClassifier).
        self.n_centroids_ = int(min(self.n_centroids, len(whitened)))
        self.kmeans_ = MiniBatchKMeans(
            n_clusters=self.n_centroids_, init="random", batch_size=self.kmeans_batch_size,
            n_init=1, random_state=rng.randint(2**31), compute_labels=False,
        ).fit(whitened)
        self.centroids_ = self.kmeans_.cluster_centers_.astype(np.float32)
        self.n_features_in_ = int(np.prod(self.image_shape_))
        return self

    def n_features_out(self):
        """How many features `transform` gives: 4 (quadrants) x centroids, the centroids
        learned once fitted (fewer than asked when there were fewer patches)."""
        rows, cols = self._map_shape()
        centroids = getattr(self, "n_centroids_", self.n_centroids)
        return len(_bands(rows, 2)) * len(_bands(cols, 2)) * int(centroids)

    # -- encoding ----------------------------------------------------------------------------
    def transform(self, X):
        check_is_fitted(self, "centroids_")
        images = self._images(X, fitted=True)
        windows = self._windows(images)
        per_image = windows.shape[1] * windows.shape[2] * self.n_centroids_
        chunk = max(1, CHUNK_ELEMENTS // per_image)
        return encode_in_threads(self._encode, windows, chunk, self.n_jobs)

    def _encode(self, windows):
        """Triangle codes of every patch in `windows`, summed over each image's quadrants."""
        n, rows, cols = windows.shape[:3]
        patches = _normalise(windows.reshape(n * rows * cols, -1))
        patches -= self.mean_
        whitened = patches @ self.whitening_
        # Squared distances as ||x||^2 - 2 x.c + ||c||^2: one BLAS product instead of
        # scipy.spatial.distance.cdist's pair-by-pair loop, many times faster at this size.
        distances = whitened @ (-2 * self.centroids_.T)
        distances += np.einsum("ij,ij->i", whitened, whitened)[:, np.newaxis]
        distances += np.einsum("ij,ij->i", self.centroids_, self.centroids_)
        np.maximum(distances, 0, out=distances)
        np.sqrt(distances, out=distances)
        mean = distances.mean(axis=1, keepdims=True)
        np.subtract(mean, distances, out=distances)
        np.maximum(distances, 0, out=distances)
        codes = distances.reshape(n, rows, cols, self.n_centroids_)
        # Sum-pooling over quadrants (halves, or the whole side when the map is 1 wide). Sums of
        # slices, not np.add.reduceat, which is ~10x slower along a non-last axis (a third of
        # the encoding time at 32x32).
        bands = [codes[:, r].sum(axis=1) for r in _bands(rows, 2)]
        return np.stack([band[:, c].sum(axis=1) for band in bands for c in _bands(cols, 2)],
                        axis=1).reshape(n, -1)


def encode_in_threads(encode, windows, chunk, n_jobs=None):
    """`encode` applied to `windows` `chunk` images at a time, the results concatenated.

    The chunks share nothing, so `n_jobs` threads (None: `thread_budget()`) encode them side
    by side: NumPy releases the GIL in the matrix products and in the elementwise work, which
    costs about as much as the products. Each thread's BLAS then runs single-threaded (no
    oversubscription)."""
    starts = range(0, len(windows), chunk)
    n_jobs = n_jobs or thread_budget()
    if n_jobs == 1 or len(starts) <= 1:
        parts = [encode(windows[s : s + chunk]) for s in starts]
    else:
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"), \
                ThreadPoolExecutor(max_workers=min(n_jobs, len(starts))) as pool:
            parts = list(pool.map(lambda s: encode(windows[s : s + chunk]), starts))
    return np.concatenate(parts)


def patch_shape(image_shape, patch_size):
    """The patch (height, width) for images of `image_shape`: `patch_size`, capped at half the
    image side (at least 1 pixel), so small images still get a map of positions to pool over."""
    height, width = image_shape[:2]
    return (max(1, min(patch_size, height // 2)), max(1, min(patch_size, width // 2)))


def sample_patches(windows, n_patches, rng):
    """`n_patches` patches at random positions of random images of `windows` (a
    `sliding_window_view` (n, rows, cols, ...)), every one when there are no more, normalised
    for brightness and contrast (`_normalise`): an (n_patches, patch values) float32 array."""
    n, rows, cols = windows.shape[:3]
    n_available = n * rows * cols
    if n_available <= n_patches:
        picks = np.arange(n_available)
    else:
        picks = rng.choice(n_available, n_patches, replace=False)
    image, position = np.divmod(picks, rows * cols)
    row, col = np.divmod(position, cols)
    return _normalise(windows[image, row, col].reshape(len(picks), -1))


def zca_whitening(patches, epsilon):
    """(mean, ZCA matrix) of `patches`: rotate onto the covariance's eigenvectors, scale each
    direction to unit variance (eigenvalues regularised by `epsilon`), rotate back, so
    whitened patches stay patch-like. Apply as (patches - mean) @ matrix."""
    mean = patches.mean(axis=0)
    centred = (patches - mean).astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / len(centred))
    scale = 1 / np.sqrt(np.maximum(eigenvalues, 0) + epsilon)
    return mean, ((eigenvectors * scale) @ eigenvectors.T).astype(np.float32)


def _normalise(patches):
    """Each row minus its mean, divided by sqrt(its variance + NORM_EPSILON), as float32."""
    patches = np.array(patches, dtype=np.float32)
    patches -= patches.mean(axis=1, keepdims=True)
    patches /= np.sqrt(np.einsum("ij,ij->i", patches, patches)[:, np.newaxis] / patches.shape[1]
                       + np.float32(NORM_EPSILON))
    return patches


def _bands(side, count):
    """`count` nearly equal slices of a side of the response map (fewer when it is shorter)."""
    count = min(count, side)
    edges = [k * side // count for k in range(count + 1)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


class PatchKMeansImageClassifier(FeatureClassifier):
    """Coates & Ng's learned patch features (`PatchEncoder`), standardised, then multinomial
    logistic regression with inverse L2 strength `C` (`classifier="logreg"`), or a ridge
    classifier with penalty `alpha` (`classifier="ridge"`: estimators.normal_equations'
    StreamingRidgeClassifier, which never holds every image's features, so the paper's largest
    dictionary, 4,000 centroids (16,000 features), fits in memory on full CIFAR-10: a one-vs-all
    least-squares classifier, in Rifkin & Klautau's comparison (JMLR 2004) as accurate as the
    paper's one-vs-all L2-SVM).

    The cached extractor is raw pixels; the encoder (whitening, dictionary), the scaler and the
    classifier are the head, fitted on the training images only. `mirror` (off by default)
    trains on each image and its mirror too (estimators.base). The other parameters are the
    encoder's: see `PatchEncoder`.

    C=0.01 was chosen on CIFAR-10: trained on 1,000 official training images per class and
    scored on 2,000 other official training images (never the test set), validation accuracy
    for C = 0.003, 0.01, 0.03, 0.1 was 0.672, 0.674, 0.669, 0.654 with 1,600 centroids, and for
    C = 0.001, 0.003, 0.01, 0.03 was 0.624, 0.640, 0.657, 0.663 with 400.
    """

    # the values --set / an experiment file may give (checked before any cell): "auto" or a count
    _parameter_constraints = {
        "n_centroids": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "n_patches": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "patch_size": [Interval(Integral, 1, None, closed="left")],
        "stride": [Interval(Integral, 1, None, closed="left")],
        "C": [Interval(Real, 0, None, closed="neither")],
        "classifier": [StrOptions({"logreg", "ridge"})],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "mirror": ["boolean", StrOptions({"train"})],
    }

    def __init__(self, n_centroids="auto", patch_size=6, stride=1, n_patches="auto", C=0.01,
                 max_iter=1000, classifier="logreg", alpha=200.0, mirror=False, random_state=0,
                 n_jobs=None):
        self.n_centroids = n_centroids
        self.patch_size = patch_size
        self.stride = stride
        self.n_patches = n_patches
        self.C = C
        self.max_iter = max_iter
        self.classifier = classifier
        self.alpha = alpha
        self.mirror = mirror
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.parameters.seed = "random_state"
        tags.parameters.mirror_augmentation = "mirror"
        # A small tuning space for random search (scikit-learn's ParameterSampler format): the
        # regularisation matters most (4K features), then the dictionary size.
        tags.search_space = {"C": loguniform(1e-3, 1e-1), "n_centroids": [200, 400, 800]}
        return tags

    def feature_extractor(self):
        return RawPixels()

    def dictionary_size(self, n_images):
        """(centroids, dictionary patches) for `n_images` training images.

        "auto" centroids: one per AUTO_IMAGES_PER_CENTROID training images, between
        AUTO_CENTROIDS[0] and the paper's AUTO_CENTROIDS[1] (1,600 from 9,600 images: CIFAR-10
        with 1,000 per class or more). More centroids than that on a small set add features the
        classifier cannot use and cost time: on the embedded datasets 400 centroids scored
        0.867 mean macro-F1 and 1,600 0.876, in 4.6x the fit time. "auto" patches:
        PATCHES_PER_CENTROID per centroid (the 200,000 of the 1,600-centroid setting)."""
        centroids = self.n_centroids
        if centroids == "auto":
            low, high = AUTO_CENTROIDS
            centroids = int(min(high, max(low, n_images // AUTO_IMAGES_PER_CENTROID)))
        patches = self.n_patches
        if patches == "auto":
            patches = PATCHES_PER_CENTROID * int(centroids)
        return int(centroids), int(patches)

    def fit_features(self, features, y, image_shape):
        self._dictionary = self.dictionary_size(len(features))
        # Set before the head is made: the encoder needs the image shape to see rows as images.
        self.image_shape_ = tuple(image_shape)
        super().fit_features(features, y, image_shape)
        if self.classifier == "logreg":
            self.n_iter_ = self.head_[-1].n_iter_
        return self

    def _make_head(self):
        encoder = PatchEncoder(
            self.image_shape_, patch_size=self.patch_size, n_centroids=self._dictionary[0],
            stride=self.stride, n_patches=self._dictionary[1], random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        if self.classifier == "ridge":
            return StreamingRidgeClassifier(encoder, alpha=self.alpha,
                                            paired_halves=bool(self._mirror_mode()),
                                            random_state=self.random_state)
        return Pipeline([
            ("patches", encoder),
            ("scale", StandardScaler()),
            ("logreg", LogisticRegression(C=self.C, max_iter=self.max_iter)),
        ])


@register(
    "logreg-kmeans-patches",
    description="Coates & Ng's learned patch features (6x6 patches, ZCA, k-means dictionary of one "
    "centroid per 6 training images up to the paper's 1,600, triangle code, quadrant sum-pooling) "
    "+ logistic regression",
)
def logreg_kmeans_patches():
    return PatchKMeansImageClassifier()
