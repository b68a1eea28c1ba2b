"""Benchmark: the cost of storing out-of-fold probabilities - file size per cell, report time.

Claims checked (issue 18, item 4)
    1. The files of one CIFAR-10-shaped cell (10,000 test rows, 10 classes) - its JSON and its
       probabilities - take under 5 MB; also with 100 classes (CIFAR-100's shape).
    2. `python -m benchmark report RUN` on a 300-cell run (3 datasets x 20 estimators x 5
       folds, every cell with probabilities) takes under 30 s, probabilistic scores and
       reliability diagrams included.

How it is measured
    Cells are built with synthetic predictions (softmax of random logits whose true-class
    margin and temperature vary by estimator, so scores and calibration differ) and written
    through the product's own code: `RunStore.save_cell`, as the runner writes every cell, with
    the scores of `benchmark.execution.metrics.score_predictions`, a CNN's per-epoch history
    and the training diagnostics a real cell holds. Sizes are the bytes on disk of
    fold-0.json + fold-0.proba.npy; for comparison, the probabilities as JSON text (as the
    predictions are stored) are measured too.
    The 300-cell run has realistic sizes: CIFAR-10 under 5-fold cross-validation (60,000
    images: 12,000 test rows a cell, 10 classes), a CIFAR-100 sample (10,000 images: 2,000
    test rows, 100 classes) and TrashNet (2,527 images: 505 test rows, 6 classes); its 20
    estimators are the registered ones and variants, classical and CNN. The report runs as a
    subprocess from the repository root (interpreter start-up, imports, reading every cell,
    plots drawn by 2 processes - the command's default on this 2-core machine), `--repeats`
    times; the median is the figure checked, with min and max. The probabilistic scores'
    share (`calibrate` alone, in this process) is printed too.

Run from the repository root: `python benchmarks/probability_storage.py [--out DIR]`. Prints
the figures and one PASS/FAIL line per claim; exits 0 (a measurement, not a test).
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

CELL_LIMIT_MB = 5.0
REPORT_LIMIT_S = 30.0
MB = 1e6

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRASHNET = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
CIFAR100 = [f"class-{i:03d}" for i in range(100)]  # names of CIFAR-100's typical length
# name -> (classes, images, 5-fold test rows per cell, image size)
DATASETS = {
    "cifar10": (CIFAR10, 60000, 12000, "32x32x3"),
    "cifar100-sample": (CIFAR100, 10000, 2000, "32x32x3"),
    "trashnet": (TRASHNET, 2527, 505, "64x64x3"),
}
VARIANTS = ["knn-pixels[n_neighbors=1]", "logreg-pixels[C=1.0]", "svm-hog-color[C=1.0]",
            "cnn-fast[epochs=5]"]
FOLDS = 5


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="where the synthetic runs go (default: a temporary folder, removed)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scratch = args.out or Path(tempfile.mkdtemp(prefix="probability-storage-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        cell_sizes(scratch)
        report_time(scratch, args.repeats)
    finally:
        if args.out is None:
            shutil.rmtree(scratch, ignore_errors=True)


# --- synthetic cells written through the product's code -------------------------------------

def synthetic_cell(dataset, estimator, fold, classes, n_images, n_test, rng, strength=2.0,
                   temperature=1.0, cnn=False):
    """A finished Cell of `n_test` test rows with probabilities, as run_cell leaves it."""
    from benchmark.execution.cell_output import diagnose_fit
    from benchmark.execution.cell_record import Cell
    from benchmark.execution.metrics import score_predictions

    k = len(classes)
    truth = rng.integers(0, k, n_test)
    logits = rng.normal(0, 1, (n_test, k)).astype(np.float32)
    logits[np.arange(n_test), truth] += strength
    logits /= temperature
    logits -= logits.max(axis=1, keepdims=True)
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    names = np.asarray(classes)
    y_true, y_pred = names[truth], names[proba.argmax(axis=1)]
    test = np.sort(rng.choice(n_images, n_test, replace=False))
    epochs = 30
    history = ({m: rng.random(epochs).round(6).tolist() for m in ("loss", "accuracy", "val_loss",
                                                                  "val_accuracy")} if cnn else None)
    return Cell(dataset, estimator, fold, "ok", scores=score_predictions(y_true, y_pred),
                fit_seconds=float(rng.uniform(1, 300)), predict_seconds=float(rng.uniform(0.1, 5)),
                feature_seconds=None if cnn else float(rng.uniform(1, 60)),
                feature_source="in-fit" if cnn else "computed", n_train=n_images - n_test,
                n_test=n_test, test_index=test.tolist(), y_true=y_true.tolist(),
                y_pred=y_pred.tolist(), history=history, diagnostics=diagnose_fit(None, [], ""),
                key=f"{rng.integers(1 << 62):032x}"[:32], seconds=float(rng.uniform(1, 300)),
                proba_classes=list(classes), proba_seconds=float(rng.uniform(0.1, 5)),
                probabilities=proba)


def cell_sizes(scratch):
    from benchmark.execution.store import RunStore

    print("1. Files of one CIFAR-10-shaped cell (10,000 test rows), written by RunStore.save_cell")
    rng = np.random.default_rng(0)
    rows = []
    for classes in (CIFAR10, CIFAR100):
        store = RunStore(scratch / f"cell-{len(classes)}").prepare()
        cell = synthetic_cell("cifar", "cnn-fast", 0, classes, 60000, 10000, rng, cnn=True)
        as_text = len(json.dumps(cell.probabilities.round(6).tolist()))
        store.save_cell(cell)
        json_size = store.cell_path("cifar", "cnn-fast", 0).stat().st_size
        npy_size = store.proba_path("cifar", "cnn-fast", 0).stat().st_size
        total = (json_size + npy_size) / MB
        rows.append(total)
        print(f"   {len(classes):>3} classes: fold-0.json {json_size / MB:.2f} MB + fold-0.proba.npy "
              f"{npy_size / MB:.2f} MB = {total:.2f} MB ({total / CELL_LIMIT_MB:.0%} of the "
              f"{CELL_LIMIT_MB:g} MB target); the probabilities as JSON text (6 decimals) would "
              f"take {as_text / MB:.1f} MB")
    worst = max(rows)
    print(f"   {'PASS' if worst < CELL_LIMIT_MB else 'FAIL'}: largest cell {worst:.2f} MB < "
          f"{CELL_LIMIT_MB:g} MB")
    print()


def synthetic_run(run_dir, rng):
    """Write run.json and the 300 cells of the synthetic run; return the number of cells."""
    from estimators.registry import estimator_spec, list_estimators

    from benchmark.execution.store import RunStore

    estimators = list_estimators() + VARIANTS
    assert len(estimators) == 20, estimators
    store = RunStore(run_dir).prepare()
    meta = {
        "run_id": run_dir.name, "status": "finished",
        "config": {"datasets": list(DATASETS), "estimators": estimators, "folds": FOLDS, "seed": 0,
                   "protocol": "cv", "repeats": 1},
        "plan": {d: {"estimators": estimators, "folds": FOLDS} for d in DATASETS},
        "datasets": {d: {"images": n, "image_size": size, "classes": {c: n // len(classes) for c in classes},
                         "fingerprint": f"synthetic-{d}", "skipped_files": []}
                     for d, (classes, n, _, size) in DATASETS.items()},
    }
    store.write_meta(meta)
    written = 0
    for d, (classes, n_images, n_test, _) in DATASETS.items():
        for i, estimator in enumerate(estimators):
            cnn = estimator_spec(estimator).family == "cnn"
            strength, temperature = 1.0 + 0.15 * i, 0.6 + 0.05 * i  # some over-, some underconfident
            for fold in range(FOLDS):
                store.save_cell(synthetic_cell(d, estimator, fold, classes, n_images, n_test, rng,
                                               strength, temperature, cnn))
                written += 1
    return written


def report_time(scratch, repeats):
    from benchmark.reporting.calibration import calibrate
    from benchmark.reporting.results import load_run

    run_dir = scratch / "run-300"
    start = time.perf_counter()
    n = synthetic_run(run_dir, np.random.default_rng(1))
    disk = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file()) / MB
    print(f"2. `python -m benchmark report` on a synthetic run of {n} cells "
          f"({', '.join(f'{d}: {v[2]:,} test rows x {len(v[0])} classes' for d, v in DATASETS.items())}; "
          f"{disk:.0f} MB on disk, written in {time.perf_counter() - start:.0f} s)")
    env = dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "benchmark", "report", str(run_dir)], cwd=REPO, env=env,
                       check=True, capture_output=True)
        seconds.append(time.perf_counter() - start)
    text = (run_dir / "report.md").read_text()
    plots = sorted(p.name for p in (run_dir / "plots").glob("*-reliability.png"))
    start = time.perf_counter()
    stored = load_run(run_dir)
    reading = time.perf_counter() - start
    calibration = calibrate(stored)
    scoring = time.perf_counter() - start - reading
    assert not calibration.problems and len(calibration.scores) == n
    median = statistics.median(seconds)
    print(f"   report: median {median:.1f} s (min {min(seconds):.1f}, max {max(seconds):.1f}) over "
          f"{repeats} run(s); in this process, reading the cells' JSON takes {reading:.1f} s and "
          f"loading every probability file and scoring it (calibrate) {scoring:.1f} s")
    print(f"   report.md has {text.count('| log loss')} tables with log loss; reliability diagrams: "
          f"{', '.join(plots)}")
    print(f"   {'PASS' if median < REPORT_LIMIT_S else 'FAIL'}: {median:.1f} s < {REPORT_LIMIT_S:g} s "
          f"({median / REPORT_LIMIT_S:.0%} of the target)")


if __name__ == "__main__":
    main()
