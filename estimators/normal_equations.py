"""Ridge classification on tens of thousands of features computed on the fly, from normal
equations held as tiles.

`StreamingRidgeClassifier` encodes its training rows chunk by chunk (any encoder with
`n_features_out()`: estimators.random_features, estimators.patches) and never holds every
row's features; its memory follows the number of features, not of rows.

`TiledGram` accumulates X'X of float32 rows chunk by chunk, centres, standardises and
regularises it in place, factors it (Cholesky, A = U'U) and solves with it. Only the upper
triangle's tiles are stored, so X'X of d features takes about 2 d^2 bytes (d = 32,768: 2.3 GB)
rather than a full matrix's 4 d^2, and every step is a BLAS-3 call on one tile at a time.

Written by hand rather than with `scipy.linalg.cho_factor` because the OpenBLAS that the NumPy
and SciPy wheels ship (scipy-openblas 0.3.31) crashes (segmentation fault) in ?potrf on
matrices over 2 GiB: float32 at 32,768 features, float64 at 16,384, with one thread or
several; LAPACK is still called here, on tiles far below that size. Dask's tiled
`dask.array.linalg.cholesky` would avoid the crash too, but it keeps its input and output
blocks both in memory: twice the memory of this in-place version.
"""

import numpy as np
from scipy.linalg.blas import dgemm, dsyrk, dtrsm, sgemm, ssyrk
from scipy.linalg.lapack import dpotrf
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

TILE = 4096  # 64 MB float32 tiles: BLAS runs at full speed, LAPACK far from the crash
SOLVE_BATCH = 512  # held-out rows solved for at a time (StreamingRidgeClassifier's temperature)


class TiledGram:
    """The upper triangle of a symmetric (d x d) float32 matrix, as F-ordered tiles."""

    def __init__(self, n_features, tile=None):
        self.n_features = int(n_features)
        tile = tile or TILE
        self.edges = list(range(0, self.n_features, tile)) + [self.n_features]
        self.slices = [slice(a, b) for a, b in zip(self.edges[:-1], self.edges[1:])]
        sizes = [s.stop - s.start for s in self.slices]
        self.tiles = {(i, j): np.zeros((sizes[i], sizes[j]), np.float32, order="F")
                      for i in range(len(sizes)) for j in range(i, len(sizes))}
        self.factored = False

    @staticmethod
    def bytes_needed(n_features, tile=None):
        """Bytes of the tiles for `n_features` features once factored (float64)."""
        tile = tile or TILE
        sizes = np.diff(list(range(0, n_features, tile)) + [n_features])
        return 8 * sum(int(a) * int(b) for i, a in enumerate(sizes) for b in sizes[i:])

    def add(self, rows):
        """Add rows' X'X: `rows` is (n, d) float32."""
        blocks = [np.asfortranarray(rows[:, s], dtype=np.float32) for s in self.slices]
        for (i, j), tile in self.tiles.items():
            if i == j:
                ssyrk(1.0, blocks[i], beta=1.0, c=tile, trans=1, overwrite_c=1)
            else:
                sgemm(1.0, blocks[i], blocks[j], beta=1.0, c=tile, trans_a=1, overwrite_c=1)

    def diagonal(self):
        return np.concatenate([np.diag(self.tiles[i, i]) for i in range(len(self.slices))])

    def centre_scale(self, mean, scale, n, penalty):
        """In place: (X'X - n mean mean') / (scale scale') + penalty I."""
        mean, scale = np.asarray(mean, np.float32), np.asarray(scale, np.float32)
        for (i, j), tile in self.tiles.items():
            a, b = self.slices[i], self.slices[j]
            tile -= np.float32(n) * np.outer(mean[a], mean[b])
            tile /= scale[a][:, np.newaxis]
            tile /= scale[b]
            if i == j:
                tile[np.diag_indices(len(tile))] += np.float32(penalty)

    def cholesky(self):
        """In place: the tiles become U, upper triangular, with the matrix = U'U.

        In float64 (each tile converted on its turn): the accumulation is float32 (sums of
        products, rounding well below the penalty), but a float32 factorisation of a matrix
        whose condition number reaches 1e6 (32,768 standardised features, a light penalty)
        would lose most of its digits."""
        count = len(self.slices)
        for key, tile in self.tiles.items():
            self.tiles[key] = np.asfortranarray(tile, dtype=np.float64)
        for k in range(count):
            diagonal, info = dpotrf(self.tiles[k, k], lower=0, clean=1, overwrite_a=1)
            if info != 0:
                raise np.linalg.LinAlgError(
                    f"the normal equations are not positive definite (tile {k}, LAPACK info "
                    f"{info}); raise alpha"
                )
            self.tiles[k, k] = diagonal
            for j in range(k + 1, count):  # U_kk' X = A_kj
                self.tiles[k, j] = dtrsm(1.0, diagonal, self.tiles[k, j], trans_a=1, overwrite_b=1)
            for i in range(k + 1, count):  # the trailing tiles lose U_ki' U_kj
                for j in range(i, count):
                    if i == j:
                        dsyrk(-1.0, self.tiles[k, i], beta=1.0, c=self.tiles[i, i], trans=1,
                              overwrite_c=1)
                    else:
                        dgemm(-1.0, self.tiles[k, i], self.tiles[k, j], beta=1.0,
                              c=self.tiles[i, j], trans_a=1, overwrite_c=1)
        self.factored = True
        return self

    def solve(self, rhs):
        """The matrix's inverse times `rhs` (d x k), after `cholesky`."""
        if not self.factored:
            raise RuntimeError("call cholesky() first")
        rhs = np.asarray(rhs, np.float64)
        count = len(self.slices)
        y = [None] * count
        for k in range(count):  # U'y = rhs
            part = rhs[self.slices[k]].copy()
            for i in range(k):
                part -= self.tiles[i, k].T @ y[i]
            y[k] = dtrsm(1.0, self.tiles[k, k], np.asfortranarray(part), trans_a=1)
        x = [None] * count
        for k in reversed(range(count)):  # U x = y
            part = y[k].copy()
            for j in range(k + 1, count):
                part -= self.tiles[k, j] @ x[j]
            x[k] = dtrsm(1.0, self.tiles[k, k], np.asfortranarray(part))
        return np.concatenate(x)


def available_memory():
    """Bytes this process may still allocate: the system's available memory, or what is left
    under the cgroup's limit where one is set and lower (containers, CI runners)."""
    import psutil

    available = psutil.virtual_memory().available
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        used = int(open("/sys/fs/cgroup/memory.current").read())
        if limit != "max":
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return available


class StreamingRidgeClassifier(ClassifierMixin, BaseEstimator):
    """Ridge classification of rows encoded by `encoder`, never holding every row's features.

    `fit` fits a clone of `encoder` on the rows, then encodes them `chunk_size` at a time,
    accumulating the normal equations (X'X as tiles, estimators.normal_equations; X'Y; column
    sums); the features are standardised and centred inside those sums, the penalty is
    `alpha` (as scikit-learn's Ridge on standardised features), and the system is solved by
    Cholesky in float64 (X'X's upper triangle is the size bound: about 4 d^2 bytes). Before anything is computed, the memory it needs is compared with what is
    available; too many features is one ValueError naming both and the largest count that fits.

    `n_holdout` training rows (at most a tenth) are kept for the temperature of
    `predict_proba`: their scores by the ridge fitted without them come from the block
    downdate formula (I - H)^-1 (y_hat - H y), no second fit. With `paired_halves` (the rows
    are images then their mirrors, as estimators.base stacks them) a held-out image's mirror
    is held out with it, so no held-out image is scored by a model that saw its mirror.
    """

    def __init__(self, encoder, alpha=200.0, chunk_size=1024, n_holdout=2000, paired_halves=False,
                 random_state=None):
        self.encoder = encoder
        self.alpha = alpha
        self.chunk_size = chunk_size
        self.n_holdout = n_holdout
        self.paired_halves = paired_halves
        self.random_state = random_state

    @staticmethod
    def memory_needed(n_features, n_holdout, chunk_size):
        """Bytes `fit` needs beyond its input: X'X's tiles (upper triangle, float64 once
        factored), the held-out rows' features (twice), a batch of their solves and three
        chunks of features."""
        return (TiledGram.bytes_needed(n_features)
                + 4 * n_features * (2 * n_holdout + 3 * chunk_size) + 24 * n_features * SOLVE_BATCH)

    def _check_memory(self, n_features, n_holdout):
        needed = self.memory_needed(n_features, n_holdout, self.chunk_size)
        available = available_memory()
        if needed <= available:
            return
        largest = next((d for d in range(n_features, 0, -max(1, n_features // 64))
                        if self.memory_needed(d, n_holdout, self.chunk_size) <= available), 0)
        raise ValueError(
            f"{n_features:,} random features need {needed / 2**30:.1f} GiB for the normal "
            f"equations but {available / 2**30:.1f} GiB is available; use at most "
            f"{largest:,} features (fewer filters)"
        )

    def fit(self, X, y):
        X = check_array(X, dtype=np.float32)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        n = len(X)
        encoder = clone(self.encoder)
        n_features = encoder.n_features_out()
        held = self._held_out(n)
        self._check_memory(n_features, len(held))
        self.encoder_ = encoder.fit(X)
        # what the fitted encoder gives (an encoder may learn fewer features than asked: a
        # k-means dictionary from fewer patches than centroids)
        n_features = self.encoder_.n_features_out()
        targets = np.eye(len(self.classes_), dtype=np.float32)[codes]

        # Normal equations of the raw features, chunk by chunk: the held-out rows first (their
        # features are kept for the downdate), then the rest.
        gram = TiledGram(n_features)
        sums = np.zeros(n_features)
        cross = np.zeros((n_features, len(self.classes_)))
        rest = np.setdiff1d(np.arange(n), held)
        held_features, shift = None, None
        chunks = [held] + [rest[s : s + self.chunk_size] for s in range(0, len(rest), self.chunk_size)]
        for i, rows in enumerate(c for c in chunks if len(c)):
            features = self.encoder_.transform(X[rows])
            if i == 0 and len(held):
                held_features = features.copy()
            if shift is None:
                # Sums of features shifted near their mean: float32 X'X then loses nothing to
                # the cancellation of centring it afterwards (the features are all positive).
                shift = features.mean(axis=0)
            features -= shift
            gram.add(features)
            sums += features.sum(axis=0, dtype=np.float64)
            cross += features.T @ targets[rows]

        # Centre and standardise inside the sums: A = (X - mu)'(X - mu) / (s s'), b likewise.
        mean = sums / n  # of the shifted features
        target_mean = targets.mean(axis=0, dtype=np.float64)
        scale = np.sqrt(np.maximum(gram.diagonal() / n - mean**2, 0)) + 1e-6
        gram.centre_scale(mean, scale, n, self.alpha)
        rhs = (cross - n * np.outer(mean, target_mean)) / scale[:, np.newaxis]
        mean = mean + shift  # of the features themselves
        factor = gram.cholesky()
        solution = factor.solve(rhs)
        self.coef_ = (solution / scale[:, np.newaxis]).astype(np.float32)
        self.intercept_ = (target_mean - mean @ self.coef_).astype(np.float32)
        self.temperature_ = self._temperature(factor, held_features, mean, scale, solution,
                                              targets[held], target_mean, codes[held])
        self.n_features_in_ = X.shape[1]
        self.n_random_features_ = n_features
        return self

    def _held_out(self, n):
        """The rows kept for the temperature (with their mirrors when `paired_halves`)."""
        rng = check_random_state(self.random_state)
        images = n // 2 if self.paired_halves else n
        count = min(self.n_holdout, images // 10)
        picked = np.sort(rng.choice(images, count, replace=False))
        return np.concatenate([picked, picked + images]) if self.paired_halves else picked

    def _temperature(self, factor, features, mean, scale, solution, targets, target_mean, codes):
        """The softmax temperature that best fits (log loss) the held-out rows' scores by the
        ridge fitted without them (kept as `holdout_scores_`); 1.0 when there are none."""
        self.holdout_scores_ = None
        if features is None or len(features) == 0:
            return 1.0
        z = ((features - mean) / scale).astype(np.float32)
        # H of the held-out block, a batch of columns at a time (the solves are float64)
        hat = np.concatenate([z @ factor.solve(z[s : s + SOLVE_BATCH].T)
                              for s in range(0, len(z), SOLVE_BATCH)], axis=1)
        fitted = z @ solution + target_mean
        scores = np.linalg.solve(np.eye(len(z)) - hat, fitted - hat @ targets)
        self.holdout_scores_ = scores = scores.astype(np.float64)

        def loss(log_t):
            return -log_softmax(np.exp(log_t) * scores, axis=1)[np.arange(len(codes)), codes].mean()

        return float(np.exp(minimize_scalar(loss, bounds=(-3, 6), method="bounded").x))

    def decision_function(self, X):
        check_is_fitted(self, "coef_")
        X = check_array(X, dtype=np.float32)
        parts = [self.encoder_.transform(X[s : s + self.chunk_size]) @ self.coef_ + self.intercept_
                 for s in range(0, len(X), self.chunk_size)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.classes_)), np.float32)

    def predict(self, X):
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    def predict_proba(self, X):
        return softmax(self.temperature_ * self.decision_function(X).astype(np.float64), axis=1)
