"""Benchmark: loading an image folder (parallel JPEG decoding), and loading it again (cache).

Claim checked
    `load_image_folder(root, image_size=64)` on a folder of 3,000 150x150 JPEG photos decodes at
    least 2,000 images/s on 2 cores the first time, and a second load of the unchanged folder
    (served from the on-disk cache of decoded folders) is at least 10x faster than the first.

How it is measured
    * Hardware: whatever machine runs this script (the core count is printed); the targets are
      stated for 2 cores. Loading uses its default threads (one per core, at most 8).
    * Input: 3,000 images in 6 class folders, written to a temporary folder: each a random
      8x8x3 image (numpy default_rng(0)) upscaled bicubically to 150x150, plus Gaussian noise
      (sigma 6) - smooth like a photo, with fine grain - saved as JPEG quality 90 (about 8 kB).
      The files were just written, so they are in the OS file cache: this measures decoding,
      not the disk.
    * Warm-up: one untimed load without cache (imports, PIL plugins, file cache).
    * First vs second load, side by side: 5 repeats of [first load into a new, empty cache
      folder (decode, resize to 64x64, write the cache), then second load of the same folder
      with the same cache folder], timed with time.perf_counter; medians are reported. Both
      include listing the folder and stat'ing every file (the cache key), as a user's load does.
    * Informational rows, 3 repeats each: decoding without a cache (cache_dir=None), with the
      default threads and with one thread (what the threads buy).
    * Correctness: the second load's images, labels and split equal the first's exactly, and
      the second load came from the cache (`read_image_folder(...).from_cache`).

Run from the repository root: `python benchmarks/folder_load_speed.py`. Prints a table and one
PASS/FAIL line per target; always exits 0 (this is a measurement, not a test).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import PIL  # noqa: E402
from PIL import Image  # noqa: E402

from benchmark.data.image_folder import load_image_folder, read_image_folder  # noqa: E402

N_IMAGES = 3_000
N_CLASSES = 6
SIDE = 150
TARGET_SIDE = 64
QUALITY = 90
REPEATS = 5
INFO_REPEATS = 3
TARGET_FIRST_IMAGES_PER_S = 2_000
TARGET_SPEEDUP = 10


def write_photos(root, rng):
    for i in range(N_IMAGES):
        coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize((SIDE, SIDE), Image.Resampling.BICUBIC), dtype=np.float32)
        grain = rng.normal(0, 6, smooth.shape).astype(np.float32)
        pixels = np.clip(smooth + grain, 0, 255).astype(np.uint8)
        folder = root / f"class{i % N_CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=QUALITY)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main():
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}, pillow {PIL.__version__}")
    with tempfile.TemporaryDirectory(prefix="folder-load-speed-") as tmp:
        tmp = Path(tmp)
        root = tmp / "photos"
        write_photos(root, np.random.default_rng(0))
        megabytes = sum(p.stat().st_size for p in root.rglob("*.jpg")) / 1e6
        print(f"folder: {N_IMAGES} JPEG {SIDE}x{SIDE} (quality {QUALITY}), {N_CLASSES} classes, "
              f"{megabytes:.1f} MB; loaded at {TARGET_SIDE}x{TARGET_SIDE}; {REPEATS} repeats, median\n")

        load_image_folder(root, image_size=TARGET_SIDE, cache_dir=None)  # warm-up
        firsts, seconds, same = [], [], True
        for r in range(REPEATS):
            cache = tmp / f"cache-{r}"
            t1, first = timed(lambda: load_image_folder(root, image_size=TARGET_SIDE, cache_dir=cache))
            t2, second = timed(lambda: load_image_folder(root, image_size=TARGET_SIDE, cache_dir=cache))
            firsts.append(t1)
            seconds.append(t2)
            same &= (np.array_equal(first.images, second.images) and np.array_equal(first.labels, second.labels)
                     and first.split is None and second.split is None and len(first.labels) == N_IMAGES)
        from_cache = read_image_folder(root, image_size=TARGET_SIDE, cache_dir=tmp / "cache-0").from_cache
        cache_mb = sum(p.stat().st_size for p in (tmp / "cache-0").rglob("*.npz")) / 1e6
        no_cache = [timed(lambda: load_image_folder(root, image_size=TARGET_SIDE, cache_dir=None))[0]
                    for _ in range(INFO_REPEATS)]
        one_thread = [timed(lambda: load_image_folder(root, image_size=TARGET_SIDE, cache_dir=None,
                                                      n_threads=1))[0] for _ in range(INFO_REPEATS)]

    header = f"{'load':46s} {'images':>7s} {'median s':>9s} {'min s':>8s} {'max s':>8s} {'images/s':>10s}"
    print(header)
    print("-" * len(header))
    rows = [
        ("first load (decode + write cache)", firsts),
        ("second load (unchanged folder, from cache)", seconds),
        ("decode only, no cache (info)", no_cache),
        ("decode only, no cache, 1 thread (info)", one_thread),
    ]
    for label, times in rows:
        median = statistics.median(times)
        print(f"{label:46s} {N_IMAGES:7d} {median:9.3f} {min(times):8.3f} {max(times):8.3f} "
              f"{N_IMAGES / median:10.0f}")
    first_rate = N_IMAGES / statistics.median(firsts)
    speedup = statistics.median(firsts) / statistics.median(seconds)
    threads_gain = statistics.median(one_thread) / statistics.median(no_cache)
    print(f"\ncache file: {cache_mb:.1f} MB; second load came from the cache: {from_cache}; "
          f"second load identical to the first: {same}")
    print(f"threads vs 1 thread: {threads_gain:.2f}x; second load vs first: {speedup:.1f}x faster")

    verdict = "PASS" if first_rate >= TARGET_FIRST_IMAGES_PER_S else "FAIL"
    print(f"\n{verdict}: first load at {first_rate:.0f} images/s vs target >= {TARGET_FIRST_IMAGES_PER_S} "
          f"images/s (ratio {first_rate / TARGET_FIRST_IMAGES_PER_S:.2f}) on {os.cpu_count()} cores")
    verdict = "PASS" if speedup >= TARGET_SPEEDUP and same and from_cache else "FAIL"
    print(f"{verdict}: second load {speedup:.1f}x faster than the first vs target >= {TARGET_SPEEDUP}x "
          f"(identical arrays: {same}, from cache: {from_cache})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
