"""The base class of the feature extractors: stateless scikit-learn transformers on image batches."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .images import as_image_batch

# Images per chunk when a batch is split across threads: large enough that NumPy's per-call
# overhead is amortised, small enough that the temporaries of a chunk stay in cache.
CHUNK = 512


def thread_budget():
    """The threads this process's native pools may use: the smallest limit threadpoolctl reports
    for the loaded BLAS / OpenMP libraries (a `threadpool_limits` block in effect lowers it),
    else the number of cores."""
    from threadpoolctl import threadpool_info

    limits = [pool["num_threads"] for pool in threadpool_info() if pool.get("num_threads")]
    return min(limits) if limits else os.cpu_count() or 1


class ImageFeatures(TransformerMixin, BaseEstimator):
    """A deterministic per-image feature extractor.

    Each image's features depend on that image alone and on the constructor's parameters, never
    on other images or labels, so `fit` learns nothing and features may be computed once per
    dataset and cached (see `features.cache`). Subclasses implement `_extract(images)` for a
    validated (n, h, w, c) batch and return a float32 (n, n_features) array.

    `n_jobs` is how many threads share a batch; None: as many as the BLAS / OpenMP pools may use
    here (`thread_budget`), so inside a cell capped with threadpoolctl (the runner gives each
    cell its threads that way) extraction keeps to the cell's threads, and elsewhere uses every
    core. NumPy releases the GIL in the array operations that dominate here, so threads scale
    without copying the batch.
    """

    # Bumped whenever an extractor's output changes for the same parameters, so that cached
    # features from an older version are never served.
    feature_version = 1

    def fit(self, X, y=None):
        X = as_image_batch(X)
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        return self

    def transform(self, X):
        X = as_image_batch(X)
        n_jobs = self.n_jobs if getattr(self, "n_jobs", None) else thread_budget()
        chunks = [X[i : i + CHUNK] for i in range(0, len(X), CHUNK)]
        if n_jobs == 1 or len(chunks) == 1:
            parts = [self._extract(c) for c in chunks]
        else:
            with ThreadPoolExecutor(max_workers=min(n_jobs, len(chunks))) as pool:
                parts = list(pool.map(self._extract, chunks))
        return np.concatenate(parts).astype(np.float32, copy=False)

    def cache_params(self):
        """The parameters that determine the output (everything but execution settings)."""
        params = self.get_params(deep=False)
        params.pop("n_jobs", None)
        return params

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags
