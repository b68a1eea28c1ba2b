"""Benchmark: batched feature extraction (HOG + colour moments) speed on 32x32 RGB images.

Claim checked
    `make_features("hog+color-moments").transform(X)` on 32x32 RGB uint8 images reaches at
    least 10,000 images/s on 2 cores.

How it is measured
    * Hardware: whatever machine runs this script (the core count is printed); the target is
      stated for 2 cores. The extractor uses its default threading (n_jobs=None: all cores).
    * Input: 20,000 random uint8 images of shape (32, 32, 3) from numpy's default_rng(0).
    * Batched: one untimed warm-up call on 512 images, then 5 timed repeats of
      `transform` on all 20,000 images with time.perf_counter; the median is reported.
    * Naive baseline, side by side in the same run: a Python loop over 2,000 of the images
      calling `skimage.feature.hog(img, channel_axis=-1)` (default parameters) and the four
      colour moments per channel and per luminance channel (`numpy.mean`, `numpy.var`,
      `scipy.stats.skew`, `scipy.stats.kurtosis`) - `benchmarks/notebook_features.py` -, 5 repeats, median, scaled to images/s.
      The speed-up printed is batched images/s divided by naive images/s.
    * Correctness: max absolute difference between `HOG().transform(X[:200])` and skimage's
      per-image hog with the default parameters (orientations=9, pixels_per_cell=(8, 8),
      cells_per_block=(2, 2), block_norm='L2-Hys'); our HOG's default pixels_per_cell='auto'
      gives 8x8 cells on 32x32 images. The same is printed for colour moments against the
      naive scipy.stats version.

Run from the repository root: `python benchmarks/feature_speed.py`. Prints a table and one
PASS/FAIL line per target; always exits 0 (this is a measurement, not a test).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import skimage.feature  # noqa: E402

from features import HOG, make_features  # noqa: E402
from notebook_features import notebook_features  # noqa: E402

N_IMAGES = 20_000
N_NAIVE = 2_000
N_CHECK = 200
REPEATS = 5
TARGET_IMAGES_PER_S = 10_000


def naive_features(images):
    """Per-image HOG + colour moments, the way a notebook would write it."""
    return notebook_features("hog+color-moments").transform(images)


def timed(fn, repeats):
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


def main():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(N_IMAGES, 32, 32, 3), dtype=np.uint8)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}, "
          f"scikit-image {skimage.__version__}")
    print(f"images: {N_IMAGES} random uint8 32x32x3 (seed 0); {REPEATS} repeats, median\n")

    extractor = make_features("hog+color-moments")
    extractor.transform(X[:512])  # warm-up: imports, thread pool, allocator
    batched = timed(lambda: extractor.transform(X), REPEATS)
    naive = timed(lambda: naive_features(X[:N_NAIVE]), REPEATS)

    batched_median = statistics.median(batched)
    naive_median = statistics.median(naive)
    batched_rate = N_IMAGES / batched_median
    naive_rate = N_NAIVE / naive_median

    header = f"{'method':44s} {'images':>7s} {'median s':>9s} {'min s':>8s} {'max s':>8s} {'images/s':>10s}"
    print(header)
    print("-" * len(header))
    print(f"{'batched make_features(hog+color-moments)':44s} {N_IMAGES:7d} {batched_median:9.3f} "
          f"{min(batched):8.3f} {max(batched):8.3f} {batched_rate:10.0f}")
    print(f"{'naive per-image skimage hog + scipy.stats':44s} {N_NAIVE:7d} {naive_median:9.3f} "
          f"{min(naive):8.3f} {max(naive):8.3f} {naive_rate:10.0f}")
    print(f"\nspeed-up batched / naive: {batched_rate / naive_rate:.1f}x")

    # Correctness of the batched HOG against skimage, and of the whole feature vector.
    ours = HOG().transform(X[:N_CHECK]).astype(np.float64)
    reference = np.stack([
        skimage.feature.hog(img, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2),
                            block_norm="L2-Hys", channel_axis=-1)
        for img in X[:N_CHECK]
    ])
    if ours.shape != reference.shape:
        print(f"HOG shapes differ: ours {ours.shape}, skimage {reference.shape}")
        hog_diff = float("inf")
    else:
        hog_diff = float(np.max(np.abs(ours - reference)))
    print(f"HOG max abs difference vs skimage.feature.hog on {N_CHECK} images "
          f"({ours.shape[1]} features each): {hog_diff:.3g}")
    full_ours = extractor.transform(X[:N_CHECK]).astype(np.float64)
    full_naive = naive_features(X[:N_CHECK])
    if full_ours.shape == full_naive.shape:
        moments_diff = float(np.max(np.abs(full_ours[:, -16:] - full_naive[:, -16:])))
        print(f"colour moments max abs difference vs numpy/scipy.stats on {N_CHECK} images: "
              f"{moments_diff:.3g}")
    else:
        print(f"feature shapes differ: batched {full_ours.shape}, naive {full_naive.shape}")

    ratio = batched_rate / TARGET_IMAGES_PER_S
    verdict = "PASS" if batched_rate >= TARGET_IMAGES_PER_S else "FAIL"
    print(f"\n{verdict}: hog+color-moments at {batched_rate:.0f} images/s vs target "
          f">= {TARGET_IMAGES_PER_S} images/s (ratio {ratio:.2f}) on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
