"""The base class of the convolutional networks: a Keras 3 model behind scikit-learn's contract.

Written here rather than taken from a library: `keras.wrappers.SKLearnClassifier` drops its fit
arguments when cloned and rejects 4-D image arrays, and SciKeras is unmaintained and breaks with
current scikit-learn.

Keras and its backend (TensorFlow by default; JAX or PyTorch, see estimators.keras_backend)
are imported only inside `fit` / `predict` (through `keras_for`), so importing this package,
listing estimators and classical-only runs never load them.

What every CNN shares, and where it happens:

* Input: any (n, height, width, channels) batch (uint8 on 0..255 or floats on 0..1; grayscale
  and any size). Images are kept as uint8 in memory, resized once to the network's square
  input (`input_size`, or a per-dataset default from the training images' size), and scaled to
  0..1 inside the network.
* No leakage: everything that watches validation data (early stopping, learning rate on
  plateau, best-checkpoint choice) sees only an inner, stratified validation split carved out
  of the images given to `fit` (`validation_fraction`). Augmentation layers are active in
  training only, so validation and test images are never augmented.
* Reproducible: `random_state` seeds Python, NumPy and the backend, and the backend's
  determinism is switched on, so two CPU runs with the same seed, backend and threads give the
  same weights (estimators.keras_backend says what each backend guarantees on GPU).
* Resources: `n_threads` caps the backend's threads in this process (the runner gives
  each parallel cell its share of the cores). With a GPU, training uses it with mixed precision.
"""

import math
import os
from numbers import Integral, Real
import random
import tempfile

import numpy as np
from scipy.stats import loguniform
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from features.images import as_image_batch, to_uint8

from .base import check_images_and_labels
from .budget import StepBudget, check_positive_int
from .convergence import check_convergence
from .keras_backend import gpu_available
from .tags import BenchmarkTagsMixin, benchmark_tags

DEFAULT_MAX_INPUT = 32  # the per-dataset default input size never exceeds this (CPU budget)
PREDICT_BATCH = 128

def keras_for(n_threads=None):
    """Import Keras on the chosen backend (see estimators.keras_backend) with at most
    `n_threads` threads; return it."""
    from .keras_backend import import_keras

    return import_keras(n_threads)


def seed_everything(keras, random_state):
    """Seed Python, NumPy and the backend from `random_state` (None: a fresh random seed) and
    switch on the backend's determinism."""
    from .keras_backend import seed_everything as seed_backend

    seed = int(random_state) if random_state is not None else random.SystemRandom().randrange(2**31)
    return seed_backend(keras, seed)


def inner_split(y, fraction, seed):
    """(train, validation) positions: a stratified share `fraction` of each class held out.

    Written by hand because scikit-learn's stratified splitters refuse classes with a single
    member; here such a class simply stays in training (it is then absent from validation,
    which the metrics handle). Each class gives floor(fraction * count) images, at least one
    when it has more than one image and the fraction is positive.
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    if fraction <= 0:
        return np.arange(len(y)), np.arange(0)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_val = 0 if len(members) < 2 else max(1, int(fraction * len(members)))
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def resize_batch(keras, images, size):
    """uint8 images resized to size x size (bilinear, antialiased when shrinking)."""
    if images.shape[1:3] == (size, size):
        return images
    out = np.empty((len(images), size, size, images.shape[-1]), np.uint8)
    for start in range(0, len(images), 2048):
        chunk = images[start:start + 2048].astype(np.float32)
        resized = keras.ops.image.resize(chunk, (size, size), interpolation="bilinear", antialias=True)
        out[start:start + 2048] = np.clip(np.rint(keras.ops.convert_to_numpy(resized)), 0, 255)
    return out


def predict_fixed_batches(model, images, batch=PREDICT_BATCH):
    """`model.predict` in batches of exactly `batch` images (the last one zero-padded).

    CPU float32 kernels choose their blocking by the batch's shape, so without this an image's
    output could change in the 7th digit with the size of the batch it came in (scikit-learn's
    subset-invariance check catches that). With one batch shape, it never does.
    """
    n = len(images)
    pad = -n % batch
    if pad:
        images = np.concatenate([images, np.zeros((pad, *images.shape[1:]), images.dtype)])
    return np.asarray(model.predict(images, batch_size=batch, verbose=0))[:n]


class CNNClassifier(BenchmarkTagsMixin, ClassifierMixin, BaseEstimator):
    """Base of the Keras CNN estimators. Subclasses define the network and its training.

    To add a CNN, start from `estimators.keras_cnn.KerasCNN`: it holds the common
    hyper-parameters and compiles the model, so a subclass only writes the network. Working
    directly on this class, subclasses list every hyper-parameter in their own `__init__`
    (scikit-learn reads the signature) including the ones used here: `input_size`, `epochs`,
    `batch_size`, `validation_fraction`, `random_state`, `n_threads`, `verbose`. They implement
    `_build(keras, input_shape, n_classes, train_images)` returning a compiled model (the
    schedule's length is `self.budget_.steps`), and may override `_callbacks(keras,
    has_validation)`, `_predict_proba_batch(model, images)`, `_training_images(images)` and
    `_train(keras, model, images, targets, validation)` (one `model.fit`; phases instead).
    Their tags (`__benchmark_tags__`, estimators.tags) say the rest: the family "cnn", the seed
    and threads parameters, the search space, `min_input_size` (the smallest input the
    architecture accepts), `default_min_input` (the smallest default input size, for
    `input_size=None`, it resizes small images up to) and the `step_budget`.

    Budget: `epochs=None` / `batch_size=None` follow the training-set size by the tags'
    `step_budget` (see `estimators.budget`); the plan used is `budget_`. After training,
    `convergence_` holds the convergence check of `estimators.convergence` (is the training
    loss still falling at the end? did the net learn beyond chance?).
    """

    # The common hyper-parameters' valid values, checked by scikit-learn's
    # validate_parameter_constraints before any cell runs (estimators.settings) and by fit
    _parameter_constraints = {
        "input_size": [Interval(Integral, 1, None, closed="left"), None],
        "epochs": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.family = "cnn"
        # what the runner may set (see estimators.capabilities); a recipe with a mirror
        # augmentation switch adds tags.parameters.mirror_augmentation
        tags.parameters.seed = "random_state"
        tags.parameters.threads = "n_threads"
        # searched by `run --tune` (estimators.tuning): the learning rate, around Adam's usual 1e-3.
        # Each candidate is a full training per inner fold, so a tuned CNN cell costs about
        # budget x inner folds CNN fits: the price of giving both families the same search.
        tags.search_space = {"learning_rate": loguniform(3e-4, 3e-3)}
        # How `epochs=None` / `batch_size=None` follow the training-set size: each recipe states
        # its own; this generic one serves a user's subclass that does not.
        tags.step_budget = StepBudget(batch_size=64, epochs=30, min_steps=1000, max_epochs=100)
        tags.min_input_size = 8
        # the per-dataset default input size is at least this (and at most DEFAULT_MAX_INPUT)
        tags.default_min_input = 16
        return tags

    # -- hooks -------------------------------------------------------------------------------
    def _build(self, keras, input_shape, n_classes, train_images):
        raise NotImplementedError

    def _callbacks(self, keras, has_validation):
        return []

    def _predict_proba_batch(self, model, images):
        return predict_fixed_batches(model, images)

    def _train(self, keras, model, images, targets, validation):
        """Train the compiled `model` on the training images (validation: the inner split's
        (images, targets), or None) for the budget's epochs; return the history as {metric:
        [float per epoch]}. A recipe that trains in phases (estimators.finetune) overrides it."""
        fitted = model.fit(images, targets, batch_size=self.budget_.batch_size, epochs=self.budget_.epochs,
                           validation_data=validation, callbacks=self._callbacks(keras, validation is not None),
                           shuffle=True, verbose=self.verbose)
        return {key: [float(v) for v in values] for key, values in fitted.history.items()}

    def _training_images(self, images):
        """The training images as `model.fit` gets them (a recipe may rearrange them)."""
        return images

    # -- sizes -------------------------------------------------------------------------------
    def input_size_for(self, image_shape):
        """The square input side used for images of shape (h, w, ...)."""
        tags = benchmark_tags(self)
        smallest = tags.min_input_size
        if self.input_size is None:
            side = max(image_shape[0], image_shape[1])
            return int(min(max(side, smallest, tags.default_min_input), DEFAULT_MAX_INPUT))
        size = int(self.input_size)
        if size < smallest:
            raise ValueError(
                f"input_size={self.input_size} is too small for {type(self).__name__}: its "
                f"{self._n_pools()} pooling steps need at least {smallest}x{smallest} pixels; "
                f"use input_size >= {smallest} (smaller images are resized up)"
            )
        return size

    def _n_pools(self):
        return int(round(math.log2(benchmark_tags(self).min_input_size)))

    # -- scikit-learn API --------------------------------------------------------------------
    def fit(self, X, y):
        X, y = check_images_and_labels(X, y)
        check_positive_int("epochs", self.epochs)  # before any heavy import: a clear ValueError
        check_positive_int("batch_size", self.batch_size)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"need images of at least 2 classes to fit a classifier; got one class, "
                f"{self.classes_[0]!r}"
            )
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        self.image_shape_ = tuple(X.shape[1:])
        size = self.input_size_for(X.shape[1:])
        keras = keras_for(self.n_threads)
        self.seed_ = seed_everything(keras, self.random_state)
        self.input_size_ = size
        images = resize_batch(keras, to_uint8(X), size)

        train, val = inner_split(y_index, self.validation_fraction, self.seed_)
        self.n_train_, self.n_validation_ = len(train), len(val)
        self.budget_ = benchmark_tags(self).step_budget.plan(len(train), self.batch_size, self.epochs)
        has_validation = len(val) > 0
        n_classes = len(self.classes_)
        targets = np.eye(n_classes, dtype=np.float32)[y_index]

        if gpu_available(keras):  # mixed precision on GPU; the output layers stay float32
            keras.mixed_precision.set_global_policy("mixed_float16")
        model = self._build(keras, images.shape[1:], n_classes, images[train])
        self.history_ = self._train(keras, model, self._training_images(images[train]), targets[train],
                                    (images[val], targets[val]) if has_validation else None)
        self.model_ = model
        self.n_epochs_ = len(next(iter(self.history_.values()), []))
        self.convergence_ = check_convergence(self.history_, self.budget_, y_index[train], n_classes,
                                              n_validation=len(val))
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "model_")
        X = as_image_batch(X)
        if X.shape[-1] != self.image_shape_[-1]:
            raise ValueError(
                f"X has images with {X.shape[-1]} channels, but {type(self).__name__} was "
                f"fitted on images with {self.image_shape_[-1]}; convert the images to match"
            )
        keras = keras_for(self.n_threads)
        images = resize_batch(keras, to_uint8(X), self.input_size_)
        proba = np.asarray(self._predict_proba_batch(self.model_, images), dtype=np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        check_is_fitted(self, "model_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __getstate__(self):
        """Pickle the Keras model as its .keras archive bytes (joblib ships estimators)."""
        state = dict(super().__getstate__())  # a copy: the estimator itself keeps its model
        model = state.pop("model_", None)
        if model is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.keras")
                model.save(path)
                with open(path, "rb") as f:
                    state["_model_bytes"] = f.read()
        return state

    def __setstate__(self, state):
        model_bytes = state.pop("_model_bytes", None)
        super().__setstate__(state)
        if model_bytes is not None:
            keras = keras_for(state.get("n_threads"))
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.keras")
                with open(path, "wb") as f:
                    f.write(model_bytes)
                self.model_ = keras.saving.load_model(path, custom_objects=self._custom_objects())

    def _custom_objects(self):
        return {}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags
