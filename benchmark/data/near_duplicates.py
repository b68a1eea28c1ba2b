"""Near-duplicate images: one photo twice in a dataset, re-encoded, resized, cropped by a few
pixels or made brighter or darker.

A near-duplicate on both sides of a split inflates every score (most of all kNN's) without
being an exact copy, so the pixel hashes of `benchmark.data.duplicates` miss it. Barz and
Denzler (2020, the ciFAIR sets) found one in the training set for 3.3% of CIFAR-10's test images.

Detection, for any number of images without comparing all pairs:

1. **Thumbnail**: every image is reduced to 32x32 RGB (area averaging), the resolution at which
   the comparisons below are made; CIFAR's images are already that size.
2. **Fingerprint**: the 24 lowest 2-D DCT frequencies of the grayscale thumbnail, without the
   constant term and scaled to unit length. This is the perceptual hash pHash is built from,
   kept as real numbers: low frequencies survive JPEG re-encoding and resizing, dropping the
   constant term and the scale makes it blind to brightness and contrast, and a few pixels of
   crop move them only a little.
3. **Candidates**: each image's nearest fingerprints, found with a k-d tree
   (`sklearn.neighbors.NearestNeighbors`), O(n log n) rather than n^2 comparisons.
4. **Confirmation**: a candidate pair is a near-duplicate when its thumbnails (both blurred by
   0.7 pixel, so the interpolation of the alignment below does not count) agree pixel by pixel,
   at the best of a few small alignments (shifts of a pixel, a 5% or 10% zoom of either
   image, compared on the central 26x26 pixels), which is what makes a 5% crop-and-resize
   match:
   - the normalised cross-correlation of their grayscale pixels and of their colour channels
     (each channel centred, so a brightness shift does not count) are both >= `SIMILARITY`;
   - so is, >= `DETAIL`, that of their band-pass versions (the blur at 3 pixels taken away):
     photos of one set-up (white paper on one white table under one lamp) share their light
     and shadows and correlate highly without being one photo;
   - their contrasts are within a factor `CONTRAST`, and their average hues (mean colour less
     its gray level) within `CHROMA` levels: the correlations, centred per channel, are blind
     to a disc of another colour on another background;
   - grayscale pairs must also stand out from their crowd (see `find_near_duplicates`).
   Images smaller than `MIN_SIDE` pixels are not compared: at 8x8, distinct digits match.

The thresholds were set by eye on CIFAR-10, TrashNet and the embedded sets, and are checked by
`benchmarks/near_duplicates.py` (injected copies: recall; a drawn sample: precision) and
`tests/test_near_duplicates.py`. Known misses: noise-like textures (gravel, brick) cropped by
5%, whose 32-pixel thumbnails no longer line up within a pixel. Known look-alikes: tiles of one
regular brick wall, which match within a pixel (the embedded `textures` set).

Why not `imagehash`: its hashes are 64 bits compared by Hamming distance, and it offers no
index over them, so finding the close pairs among 60,000 hashes means comparing all pairs (or
hand-writing multi-index hashing), and one bit flipped by a crop is as far as one flipped by a
different photo. The DCT step above is the same transform as its `phash`, kept real-valued so a
standard k-d tree finds the neighbours; SciPy and scikit-learn do the numerical work.

Near-duplicates are transitive in `clusters()` (A~B and B~C put A, B and C together), which is
what `--dedupe` and `--groups near-duplicates` use.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

VERSION = 1  # of the detector: part of the cache key
MIN_SIDE = 16  # smaller images are not compared: at 8x8 pixels, distinct digits correlate like copies
SIDE = 32  # thumbnail side: the resolution of the fingerprint and of the pixel check
DCT_SIDE = 5  # the fingerprint: DCT frequencies (u, v) with u, v < DCT_SIDE, less (0, 0)
NEIGHBOURS = 5  # candidates per image: its nearest fingerprints
MAX_DISTANCE = 0.7  # candidates further apart than this (unit vectors: at most 2) are not checked
SIMILARITY = 0.95  # aligned colour correlation from which a candidate pair is a near-duplicate
BORDER = 3  # pixels of the thumbnail's edge left out of the comparison (room for the alignment)
ZOOMS = (1.05, 1.10)  # zooms tried (of either image) besides none: crops of about 5% and 10%
MARGIN = 0.5  # grayscale pairs: 1 - correlation at most this share of their crowd's (see below)
DETAIL = 0.90  # the aligned correlation their band-pass versions must reach too (see below)
BLUR = 0.7  # pixels (of 32): both thumbnails are blurred this much before they are compared
DETAIL_SIGMA = 3.0  # pixels (of 32): the blur taken away for the band-pass version
CHROMA = 16  # levels (of 255) by which the two images' average hues may differ per channel
CONTRAST = 1.3  # the most one image's pixel spread may exceed the other's
FLAT = 2.0  # a thumbnail whose pixels' standard deviation is below this (of 255) is flat
BATCH = 4096  # pairs (or images) processed at once: bounds the memory of every step


@dataclass
class NearDuplicates:
    """The near-duplicate pairs among `n_images` images: `pairs` (m, 2) of indices i < j,
    sorted, and each pair's `similarity` (the aligned correlation, 1.0 for identical images)."""

    pairs: np.ndarray
    similarity: np.ndarray
    n_images: int
    not_checked: str = None  # why the images were not compared (too small); None: they were

    def clusters(self):
        """A cluster id per image (0, 1, ... in order of first image): images joined by a chain
        of near-duplicate pairs share one; every other image has its own."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n = self.n_images
        graph = coo_matrix((np.ones(len(self.pairs)), (self.pairs[:, 0], self.pairs[:, 1])), shape=(n, n))
        _, raw = connected_components(graph, directed=False)
        _, first = np.unique(raw, return_index=True)  # renumber in order of first member
        order = np.empty(len(first), dtype=np.int64)
        order[np.argsort(np.argsort(first))] = np.arange(len(first))
        return order[raw]

    def keep_one(self, prefer=None):
        """Sorted indices of the images left when each cluster keeps one: its first image, or
        its first for which `prefer` (a boolean array, e.g. "in the training split") is True."""
        clusters = self.clusters()
        rank = np.arange(self.n_images) + (0 if prefer is None else np.where(prefer, 0, self.n_images))
        order = np.lexsort((rank, clusters))
        keep = order[np.r_[True, clusters[order][1:] != clusters[order][:-1]]]
        return np.sort(keep)

    def restrict(self, rows):
        """The pairs among `rows` (indices into these images), renumbered as positions in `rows`."""
        rows = np.asarray(rows)
        position = np.full(self.n_images, -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        mapped = position[self.pairs] if len(self.pairs) else np.empty((0, 2), dtype=np.int64)
        kept = (mapped >= 0).all(axis=1)
        mapped = np.sort(mapped[kept], axis=1)
        order = np.lexsort((mapped[:, 1], mapped[:, 0]))
        return NearDuplicates(mapped[order], self.similarity[kept][order], len(rows), self.not_checked)

    def leaks(self, train, test):
        """Sorted indices of `test` images with a near-duplicate among the `train` images."""
        in_train = np.zeros(self.n_images, dtype=bool)
        in_train[np.asarray(train)] = True
        in_test = np.zeros(self.n_images, dtype=bool)
        in_test[np.asarray(test)] = True
        a, b = self.pairs[:, 0], self.pairs[:, 1]
        leaked = np.concatenate([a[in_test[a] & in_train[b]], b[in_test[b] & in_train[a]]])
        return np.unique(leaked)


def thumbnails(images):
    """(n, SIDE, SIDE, 3) float32 thumbnails of uint8 images (n, h, w, c), by area averaging;
    grayscale images are repeated into three channels."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    out = np.empty((n, SIDE, SIDE, 3), dtype=np.float32)
    for start in range(0, n, BATCH):
        batch = images[start:start + BATCH, ..., :3].astype(np.float32)
        if (h, w) != (SIDE, SIDE):
            batch = _area_resize(batch)
        out[start:start + BATCH] = batch if batch.shape[-1] == 3 else np.repeat(batch[..., :1], 3, axis=-1)
    return out


def _area_resize(batch):
    """Area-average (n, h, w, c) float images to SIDE x SIDE: a block mean when the sides divide
    exactly, else scikit-image's anti-aliased resize (the same thing for other ratios)."""
    n, h, w, c = batch.shape
    if h % SIDE == 0 and w % SIDE == 0:
        return batch.reshape(n, SIDE, h // SIDE, SIDE, w // SIDE, c).mean(axis=(2, 4))
    from skimage.transform import resize

    return resize(batch, (n, SIDE, SIDE, c), anti_aliasing=True, preserve_range=True).astype(np.float32)


def fingerprints(thumbs):
    """(n, DCT_SIDE**2 - 1) unit-length low-frequency DCT fingerprints of thumbnails."""
    from scipy.fft import dctn

    gray = thumbs @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    coefficients = dctn(gray, axes=(1, 2), norm="ortho")[:, :DCT_SIDE, :DCT_SIDE]
    coefficients = coefficients.reshape(len(thumbs), -1)[:, 1:].astype(np.float64)
    length = np.linalg.norm(coefficients, axis=1, keepdims=True)
    return coefficients / np.maximum(length, 1e-9)


def nearest_fingerprints(prints, neighbours=NEIGHBOURS, n_jobs=None):
    """(distances, indices), each (n, k): every fingerprint's k = `neighbours` + 1 nearest
    (itself among them), by a k-d tree."""
    from sklearn.neighbors import NearestNeighbors

    k = min(neighbours + 1, len(prints))
    index = NearestNeighbors(n_neighbors=k, algorithm="kd_tree", n_jobs=n_jobs).fit(prints)
    return index.kneighbors(prints)


def candidate_pairs(distance, nearest, max_distance=MAX_DISTANCE):
    """(m, 2) sorted unique index pairs i < j where j is among i's nearest fingerprints (or the
    reverse), no further than `max_distance`."""
    rows = np.repeat(np.arange(len(nearest)), nearest.shape[1])
    cols, distance = nearest.ravel(), distance.ravel()
    keep = (rows != cols) & (distance <= max_distance)
    pairs = np.sort(np.stack([rows[keep], cols[keep]], axis=1), axis=1)
    return np.unique(pairs, axis=0).reshape(-1, 2)


def _zoom(thumbs, factor):
    """Thumbnails (n, SIDE, SIDE, c) magnified by `factor` about their centre (bilinear), the
    same size."""
    centre = (SIDE - 1) / 2
    source = centre + (np.arange(SIDE) - centre) / factor
    low = np.clip(np.floor(source).astype(int), 0, SIDE - 2)
    weight = (source - low).astype(np.float32)
    rows = thumbs[:, low] * (1 - weight)[None, :, None, None] + thumbs[:, low + 1] * weight[None, :, None, None]
    return rows[:, :, low] * (1 - weight)[None, None, :, None] + rows[:, :, low + 1] * weight[None, None, :, None]


def _window(thumbs, dy=0, dx=0):
    """The central (SIDE - 2 BORDER)^2 pixels, moved by (dy, dx), as (n, pixels, channels)."""
    window = thumbs[:, BORDER + dy:SIDE - BORDER + dy, BORDER + dx:SIDE - BORDER + dx]
    return np.ascontiguousarray(window).reshape(len(thumbs), -1, thumbs.shape[-1])


def _aligned(a, b):
    """Per pair, the highest normalised cross-correlation of the windows of `a[i]` and `b[i]`
    ((n, SIDE, SIDE, c) float32, each channel centred) over shifts of up to a pixel and the
    ZOOMS of either image; flat windows score 0 here."""
    best = np.full(len(a), -1.0, dtype=np.float32)
    for fixed, moving in ((a, b), (b, a)):
        reference = _window(fixed)
        reference = reference - reference.mean(axis=1, keepdims=True)
        length = np.sqrt(np.einsum("npc,npc->n", reference, reference))
        reference /= np.maximum(length, 1e-6)[:, None, None]
        for factor in (1.0,) + ZOOMS:
            if factor == 1.0 and fixed is b:  # unzoomed shifts are symmetric: done once
                continue
            moved = moving if factor == 1.0 else _zoom(moving, factor)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    window = _window(moved, dy, dx)
                    # the reference is centred, so its product with the window is its product
                    # with the centred window; the window's centred length from its sums
                    product = np.einsum("npc,npc->n", reference, window)
                    sums = window.sum(axis=1)
                    spread = np.einsum("npc,npc->n", window, window) - (sums ** 2).sum(axis=1) / window.shape[1]
                    score = product / np.sqrt(np.maximum(spread, 1e-6))
                    best = np.maximum(best, np.where(spread > 1e-6, score, 0.0))
    return best


WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # RGB to luma (ITU-R 601)


def _in_batches(function, thumbs, pairs):
    """function(thumbs[pairs[:, 0]], thumbs[pairs[:, 1]]) computed BATCH pairs at a time."""
    out = np.empty(len(pairs), dtype=np.float32)
    for start in range(0, len(pairs), BATCH):
        chunk = pairs[start:start + BATCH]
        out[start:start + BATCH] = function(thumbs[chunk[:, 0]], thumbs[chunk[:, 1]])
    return out


def gray_similarity(a, b):
    """Per pair of thumbnails, the aligned correlation of their grayscale pixels."""
    return _aligned((a @ WEIGHTS)[..., None], (b @ WEIGHTS)[..., None])


def colour_similarity(a, b):
    """Per pair of thumbnails, the aligned correlation of their colour pixels (each channel
    centred), 0 where one's contrast is over CONTRAST times the other's."""
    score = _aligned(a, b)
    # a brightness shift keeps the contrast; two crops of different scenes with one edge in
    # the same place (face-crop backgrounds) correlate as well but differ in contrast
    spread_a, spread_b = a.std(axis=(1, 2, 3)), b.std(axis=(1, 2, 3))
    ratio = np.maximum(spread_a, spread_b) / np.maximum(np.minimum(spread_a, spread_b), 1e-6)
    return np.where(ratio <= CONTRAST, score, 0.0)


def _crowd(pairs, gray, nearest):
    """Per image, the grayscale similarity to the last of its nearest fingerprints (0 when that
    one was too far to be a candidate, or is itself)."""
    n = len(nearest)
    code = pairs[:, 0] * n + pairs[:, 1]
    last = np.sort(np.stack([np.arange(n), nearest[:, -1]], axis=1), axis=1)
    wanted = last[:, 0] * n + last[:, 1]
    if not len(code):
        return np.zeros(n)
    where = np.minimum(np.searchsorted(code, wanted), len(code) - 1)
    return np.where((code[where] == wanted) & (last[:, 0] != last[:, 1]), gray[where], 0.0)


def _band_pass(thumbs, rows):
    """Thumbnails less their blur at DETAIL_SIGMA pixels (only `rows` computed; the others 0):
    what is left once lighting, shadows and vignetting are taken away."""
    from scipy.ndimage import gaussian_filter

    out = np.zeros_like(thumbs)
    chosen = thumbs[rows]
    out[rows] = chosen - gaussian_filter(chosen, (0, DETAIL_SIGMA, DETAIL_SIGMA, 0), mode="nearest")
    return out


def find_near_duplicates(images, *, similarity=SIMILARITY, neighbours=NEIGHBOURS, n_jobs=None):
    """The NearDuplicates among uint8 `images` (n, h, w, c): see the module docstring."""
    n = len(images)
    side = min(np.shape(images)[1:3])
    if n < 2 or side < MIN_SIDE:
        reason = None if side >= MIN_SIDE else (
            f"images of {side} pixels a side are too small to tell a copy from a look-alike")
        return NearDuplicates(np.empty((0, 2), dtype=np.int64), np.empty(0), n, reason)
    thumbs = thumbnails(images)
    distance, nearest = nearest_fingerprints(fingerprints(thumbs), neighbours, n_jobs)
    # flat thumbnails have no pattern to correlate: two are copies when their mean colours are
    # within 8 levels in every channel; a flat one is never a copy of a textured one
    flat = thumbs.reshape(n, -1, 3).std(axis=1).max(axis=1) < FLAT
    mono = np.ptp(thumbs, axis=3).max(axis=(1, 2)) < 1e-3  # grayscale (all channels equal)
    if BLUR:
        from scipy.ndimage import gaussian_filter

        thumbs = gaussian_filter(thumbs, (0, BLUR, BLUR, 0), mode="nearest")
    pairs = candidate_pairs(distance, nearest)
    first, second = pairs[:, 0], pairs[:, 1]
    gray = _in_batches(gray_similarity, thumbs, pairs)
    gray = np.where(flat[first] | flat[second], (flat[first] & flat[second]).astype(np.float32), gray)
    # Grayscale images carry a third of a colour image's evidence, and on them (texture tiles,
    # face crops) a high correlation often says "same kind", not "same photo". A grayscale pair
    # must also stand out from its crowd: its 1 - correlation at most MARGIN times that of
    # either image with the last of its nearest fingerprints. On the embedded `textures` this
    # drops three quarters of the look-alike brick tiles; on colour photos (CIFAR-10) it would
    # drop 40% of the true pairs, so it is not applied to them.
    crowd = _crowd(pairs, gray, nearest)
    crowded = np.maximum(crowd[first], crowd[second])
    stands_out = ~(mono[first] | mono[second]) | ((1 - gray) <= MARGIN * (1 - crowded))
    promising = (gray >= similarity) & stands_out
    pairs, gray = pairs[promising], gray[promising]
    both_flat = flat[pairs[:, 0]] & flat[pairs[:, 1]]
    colour = _in_batches(colour_similarity, thumbs, pairs)
    detail = _in_batches(gray_similarity, _band_pass(thumbs, np.unique(pairs)), pairs)
    means = thumbs.mean(axis=(1, 2))
    close = (np.abs(means[pairs[:, 0]] - means[pairs[:, 1]]) <= 8).all(axis=1).astype(np.float32)
    # the correlations centre each channel, so they are blind to a change of hue: the average
    # colour less its gray level (what a brightness shift leaves alone) must agree too
    chroma = means - means.mean(axis=1, keepdims=True)
    same_hue = (np.abs(chroma[pairs[:, 0]] - chroma[pairs[:, 1]]) <= CHROMA).all(axis=1)
    score = np.where(both_flat, close, np.minimum(gray, colour))
    keep = (score >= similarity) & (both_flat | ((detail >= DETAIL) & same_hue))
    return NearDuplicates(pairs[keep], np.clip(score[keep], 0, 1).astype(np.float64), n)


def cached_near_duplicates(images, fingerprint, directory=None):
    """find_near_duplicates(images), read from / written to `directory` (None: no cache) under
    the images' `fingerprint` and this detector's settings; a damaged file is recomputed."""
    import hashlib
    import json

    if directory is None or min(np.shape(images)[1:3]) < MIN_SIDE:
        return find_near_duplicates(images)
    settings = [VERSION, SIDE, DCT_SIDE, NEIGHBOURS, MAX_DISTANCE, SIMILARITY, BORDER, ZOOMS, MARGIN, BLUR, DETAIL, DETAIL_SIGMA, CHROMA, CONTRAST, FLAT]
    key = hashlib.sha256(json.dumps([fingerprint, settings]).encode()).hexdigest()[:32]
    path = Path(directory) / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as stored:
            found = NearDuplicates(stored["pairs"], stored["similarity"], int(stored["n_images"]))
        if found.n_images == len(images):
            return found
    except (OSError, ValueError, KeyError):  # absent or damaged: computed again
        pass
    found = find_near_duplicates(images)
    try:
        from features.cache import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: np.savez(f, pairs=found.pairs, similarity=found.similarity,
                                              n_images=found.n_images))
    except OSError:  # a cache that cannot be written costs time, never results
        pass
    return found


EXAMPLES = 5  # leaking pairs named in run.json and the report
CONFLICTS_LISTED = 20  # cross-class pairs named in run.json (all of them are in the CSV)


def describe(found, labels, names, splits):
    """(JSON-ready facts for the report, rows of the full pair table) of `found` among the
    images of one run (`labels`, `names` (None: "#index"), `splits` with train/test indices).

    "leaks" counts, per split, the test images with a near-duplicate on its training side, and
    over all splits the distinct test images that have one in at least one of them."""
    labels = np.asarray(labels).astype(str)
    shown = (lambda i: str(names[i])) if names is not None else (lambda i: f"#{i}")
    per_split = [found.leaks(s.train, s.test) for s in splits]
    tested = np.unique(np.concatenate([np.asarray(s.test) for s in splits])) if splits else np.array([], int)
    leaked = np.unique(np.concatenate(per_split)) if per_split else np.array([], int)
    partner = {}
    for (a, b), s in zip(found.pairs.tolist(), found.similarity.tolist()):
        partner.setdefault(a, []).append((s, b))
        partner.setdefault(b, []).append((s, a))
    examples = []  # the most alike leaking pair of each leaking test image, most alike first
    for split, test_rows in zip(splits, per_split):
        train = set(np.asarray(split.train).tolist())
        for t in test_rows.tolist():
            s, other = max((s, o) for s, o in partner[t] if o in train)
            examples.append((-s, shown(t), shown(other), labels[t], labels[other]))
    shown_pairs, chosen = set(), []
    for s, t, o, lt, lo in sorted(examples):  # a pair once, though each side is tested in turn
        if frozenset((t, o)) not in shown_pairs and len(chosen) < EXAMPLES:
            shown_pairs.add(frozenset((t, o)))
            chosen.append({"test": t, "train": o, "similarity": round(-s, 3), "labels": [lt, lo]})
    examples = chosen
    cross = labels[found.pairs[:, 0]] != labels[found.pairs[:, 1]] if len(found.pairs) else np.zeros(0, bool)
    rows = [(shown(a), shown(b), labels[a], labels[b], round(float(s), 4))
            for (a, b), s in zip(found.pairs.tolist(), found.similarity.tolist())]
    clusters = found.clusters()
    sizes = np.bincount(clusters) if len(clusters) else np.zeros(0, int)
    facts = {
        "similarity_threshold": SIMILARITY,
        "not_checked": found.not_checked,
        "pairs": len(found.pairs),
        "clusters": int((sizes > 1).sum()),
        "images_in_clusters": int(sizes[sizes > 1].sum()),
        "test_images": len(tested),
        "test_images_with_train_near_duplicate": len(leaked),
        "per_split": [{"test_images": len(s.test), "with_train_near_duplicate": len(k)}
                      for s, k in zip(splits, per_split)],
        "examples": examples,
        "cross_class_pairs": int(cross.sum()),
        "label_conflicts": [{"names": [r[0], r[1]], "labels": [r[2], r[3]], "similarity": r[4]}
                            for r, c in zip(rows, cross) if c][:CONFLICTS_LISTED],
    }
    return facts, rows


DEDUPE_LISTED = 10  # cross-class conflicts --dedupe resolved named in run.json (all in the CSV)


def describe_dedupe(found, keep, labels, names):
    """(JSON-ready facts, rows) of what `--dedupe` did to one loaded dataset: `found` its
    near-duplicates, `keep` the images it kept (NearDuplicates.keep_one), `labels` and `names`
    (None: "#row" of the loaded images) of every loaded image.

    One row per dropped image: (kind, dropped image, the kept image of its cluster, their
    labels, similarity, what was done). kind is "dropped", or "dropped-conflict" when the kept
    image has another class: a cross-class conflict, resolved by keeping that image under its
    class. The similarity is the dropped image's with the kept one, or, when they are joined
    only through a chain of near-duplicates, with its most alike neighbour on that chain."""
    labels = np.asarray(labels).astype(str)
    shown = (lambda i: str(names[i])) if names is not None else (lambda i: f"#{i}")
    clusters = found.clusters()
    keep = np.asarray(keep)
    kept_of = dict(zip(clusters[keep].tolist(), keep.tolist()))
    similar, partner = {}, {}
    for (a, b), s in zip(found.pairs.tolist(), found.similarity.tolist()):
        similar[(a, b)] = s
        partner.setdefault(a, []).append((s, b))
        partner.setdefault(b, []).append((s, a))
    dropped = np.setdiff1d(np.arange(found.n_images), keep)
    rows, conflicts = [], []
    for d in dropped.tolist():
        k = kept_of[int(clusters[d])]
        direct = similar.get((min(d, k), max(d, k)))
        if direct is not None:
            s, how = direct, f"kept {shown(k)}"
        else:
            s, via = max(partner[d])
            how = f"kept {shown(k)}, joined to it through {shown(via)} (their similarity)"
        if labels[d] != labels[k]:
            kind, action = "dropped-conflict", f"cross-class conflict: dropped as {labels[d]}; {how} as {labels[k]}"
            conflicts.append({"dropped": shown(d), "kept": shown(k), "labels": [labels[d], labels[k]],
                              "similarity": round(float(s), 3)})
        else:
            kind, action = "dropped", f"dropped; {how}"
        rows.append((kind, shown(d), shown(k), labels[d], labels[k], round(float(s), 4), action))
    facts = {"dropped_images": len(dropped), "clusters": int(np.sum(np.bincount(clusters) > 1)),
             "images_before": int(found.n_images), "cross_class_conflicts": len(conflicts),
             "conflicts": conflicts[:DEDUPE_LISTED]}
    return facts, rows
