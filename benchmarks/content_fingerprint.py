"""Benchmark: what keying the decoded-folder cache by content costs, against the old stat key.

Claim checked
    The folder cache's key hashes every image file's bytes (blake2b) on every load, so that a
    file rewritten with its old size and modification time is decoded again. On TrashNet
    (2,527 JPEGs) and CIFAR-10 as JPEG folders (60,000 files), a warm cached load - the load
    every rerun does - still takes at most a quarter of decoding the folder (the cache still
    pays), and the seconds it adds to the old key's load (which only stat'ed each file) are
    printed, warm and with a cold OS file cache.

How it is measured
    * Data: `../shared/datasets/trashnet` and `../shared/datasets/cifar10` (or the folders given
      with --folder); a folder that is absent is skipped and named.
    * Side by side in one process, on the same files, median of --repeats (default 3):
      - `stat key`: listing the folder and stat'ing every file, then the old key (path, size,
        mtime per file) - what a cache hit cost before;
      - `content key`: the same listing, then `image_folder._cache_key` (every file read and
        hashed);
      - `cached load, old key` / `cached load, content key`: a whole `read_image_folder` served
        from the on-disk cache of decoded images (listing, key, reading the .npz), with the key
        function swapped for the old one in the first row;
      - `decode (no cache)`: the folder decoded without the cache, once, for scale.
    * Warm: the files were read just before (OS file cache). Cold: the OS file cache is dropped
      (`echo 3 > /proc/sys/vm/drop_caches`, which needs root) before each timed call; where
      that is not allowed the cold rows are skipped and the script says so.
    * Images are loaded at 32x32 (`image_size=32`) so decoding and the .npz stay small.

Run from the repository root: `python benchmarks/content_fingerprint.py [--repeats 3]`. Prints
a table and one PASS/FAIL line per folder; always exits 0 (a measurement, not a test).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from benchmark.data import image_folder  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
TARGET_OF_DECODE = 0.25  # a warm cached load at most this fraction of decoding
IMAGE_SIZE = 32


def stat_key(root, files, image_size, n_threads=None):
    """The key before content hashing (for comparison only): each file's size and mtime."""
    listing = sorted((f.relative, f.size, os.stat(f.path).st_mtime_ns) for f in files)
    described = json.dumps([image_folder.CACHE_VERSION, str(root.resolve()), image_size, listing])
    return hashlib.blake2b(described.encode(), digest_size=16).hexdigest()


def drop_file_cache():
    """Drop the OS file cache; False where that is not allowed."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(function, repeats, cold):
    seconds = []
    for _ in range(repeats):
        if cold:
            drop_file_cache()
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def measure(root, repeats, cold_allowed):
    root = Path(root)
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        image_folder.read_image_folder(root, image_size=IMAGE_SIZE, cache_dir=None)
        decode = time.perf_counter() - start

        def key_with(function):
            files = image_folder._list_files(root)[0]
            return function(root, files, IMAGE_SIZE)

        def cached_load(function):
            original = image_folder._cache_key
            image_folder._cache_key = function
            try:
                folder = image_folder.read_image_folder(root, image_size=IMAGE_SIZE, cache_dir=Path(cache) / function.__name__)
                assert folder.from_cache, "the cached load decoded the folder"
            finally:
                image_folder._cache_key = original

        for function in (stat_key, image_folder._cache_key):  # fill each cache once
            original = image_folder._cache_key
            image_folder._cache_key = function
            image_folder.read_image_folder(root, image_size=IMAGE_SIZE, cache_dir=Path(cache) / function.__name__)
            image_folder._cache_key = original
        for cold in ([False, True] if cold_allowed else [False]):
            state = "cold" if cold else "warm"
            stat_s = timed(lambda: key_with(stat_key), repeats, cold)
            content_s = timed(lambda: key_with(image_folder._cache_key), repeats, cold)
            old_load = timed(lambda: cached_load(stat_key), repeats, cold)
            new_load = timed(lambda: cached_load(image_folder._cache_key), repeats, cold)
            rows.append((state, stat_s, content_s, old_load, new_load))
    return decode, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", action="append", help="an image folder (default: TrashNet and CIFAR-10 of ../shared)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    folders = args.folder or [SHARED / "trashnet", SHARED / "cifar10"]
    cold_allowed = drop_file_cache()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; median of {args.repeats}; cold rows "
          f"{'with the OS file cache dropped' if cold_allowed else 'skipped (cannot drop the OS file cache: not root)'}")
    print(f"{'folder':10} {'files':>6} {'cache':5} {'stat key s':>10} {'content key s':>13} "
          f"{'cached load, old s':>18} {'cached load, new s':>18} {'ratio':>6} {'decode s':>8}")
    for folder in map(Path, folders):
        if not folder.is_dir():
            print(f"{folder}: absent, skipped")
            continue
        n_files = len(image_folder._list_files(folder)[0])
        decode, rows = measure(folder, args.repeats, cold_allowed)
        for state, stat_s, content_s, old_load, new_load in rows:
            print(f"{folder.name:10} {n_files:>6} {state:5} {stat_s:>10.2f} {content_s:>13.2f} "
                  f"{old_load:>18.2f} {new_load:>18.2f} {new_load / old_load:>6.2f} {decode:>8.1f}")
        warm = rows[0]
        share = warm[4] / decode
        print(f"{'PASS' if share <= TARGET_OF_DECODE else 'FAIL'}: {folder.name} warm cached load with "
              f"the content key {warm[4]:.2f} s = {share:.2f}x decoding the folder ({decode:.1f} s; target "
              f"<= {TARGET_OF_DECODE}x); {warm[4] - warm[3]:+.2f} s against the stat key's {warm[3]:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
