"""The silent-result cases of issue 30: a score on the screen must be the score of these images,
and a run never reads or ranks what is not its own. Each test failed before its fix."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from benchmark import run_benchmark
from benchmark.cli import main
from conftest import write_image


def bmp_folder(root, rng):
    """Two classes, dark and bright, as BMPs: a BMP's size depends only on its shape, so a
    rewrite keeps the size, as a restore or `cp -p` of other pixels would."""
    for label, level in (("dark", 40), ("bright", 200)):
        for i in range(10):
            pixels = np.clip(rng.normal(level, 20, size=(12, 12, 3)), 0, 255).astype(np.uint8)
            write_image(root / label / f"{i}.bmp", pixels)
    return root


def run_knn(folder, out):
    return main(["run", "--datasets", f"folder:{folder}", "--estimators", "knn-pixels", "--folds", "2",
                 "--out", str(out), "--quiet"])


def test_images_rewritten_with_kept_size_and_mtime_are_scored_anew(tmp_path, rng, capsys):
    folder, out = bmp_folder(tmp_path / "imgs", rng), tmp_path / "run"
    assert run_knn(folder, out) == 0
    assert (pd.read_csv(out / "scores.csv")["accuracy"] == 1.0).all()
    fingerprint = json.loads((out / "run.json").read_text())["datasets"][f"folder:{folder}"]["fingerprint"]

    noise = np.random.default_rng(7)  # every image rewritten as noise, with its old size and times
    for path in sorted(folder.rglob("*.bmp")):
        stat = path.stat()
        write_image(path, noise.integers(0, 256, (12, 12, 3), dtype=np.uint8))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert path.stat().st_size == stat.st_size
    capsys.readouterr()
    assert run_knn(folder, out) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["datasets"][f"folder:{folder}"]["fingerprint"] != fingerprint
    assert "0 cell(s) reused" in capsys.readouterr().err  # both stored cells no longer match
    assert pd.read_csv(out / "scores.csv")["accuracy"].mean() < 0.9  # noise: the old code kept 1.000


def test_a_run_inside_its_own_dataset_folder_never_reads_its_output(tmp_path, rng, monkeypatch):
    from joblib import delayed

    from benchmark.execution.worker_pool import parallel, start_fork_server

    folder = bmp_folder(tmp_path / "imgs", rng)
    start_fork_server()
    # workers made here, as by an earlier run of this process (a notebook, a test): they keep this
    # working directory, and a relative run directory given to them would land under it
    assert parallel(2)(delayed(abs)(i) for i in (-1, -2)) == [1, 2]
    monkeypatch.chdir(folder)  # cd my_images && python -m benchmark run --datasets folder:.
    args = ["run", "--datasets", "folder:.", "--estimators", "knn-pixels", "--folds", "2", "--quiet"]
    assert main(args) == 0
    first = (folder / "results" / "latest").resolve()
    assert len(list((first / "plots").glob("*.png"))) >= 3  # the first run's PNGs are there now
    assert "empty class" not in (first / "report.md").read_text()  # its own, not yet a run, left out too
    assert main(args) == 0
    second = (folder / "results" / "latest").resolve()
    dataset = json.loads((second / "run.json").read_text())["datasets"]["folder:."]
    assert dataset["classes"] == {"bright": 10, "dark": 10}  # not a third class "results"
    runs = sorted(f"results/{p.name}" for p in (first, second))
    assert [f["path"] for f in dataset["excluded_folders"]] == runs + ["results"]
    report = (second / "report.md").read_text()
    assert "folder:.: results/ left out: it holds only run directories of this benchmark" in report
    assert f"folder:.: {runs[0]}/ left out: a run directory of this benchmark" in report


def test_save_refuses_a_directory_that_holds_another_run(tmp_path):
    first = run_benchmark(["digits"], ["knn-pixels"], folds=2, max_per_class=10, out=tmp_path / "a")
    before = (tmp_path / "a" / "run.json").read_text()
    other = run_benchmark(["digits"], ["logreg-pixels"], folds=2, max_per_class=10)
    with pytest.raises(ValueError, match=r"already holds run 'a' \(2 cell\(s\)\); save these results "
                                         r"in a new or empty directory"):
        other.save(tmp_path / "a")
    assert (tmp_path / "a" / "run.json").read_text() == before  # untouched
    assert sorted(p.parent.name for p in (tmp_path / "a" / "cells").rglob("fold-*.json")) == ["knn-pixels"] * 2
    assert first.save(tmp_path / "a") == tmp_path / "a"  # its own directory: nothing to refuse
    saved = other.save(tmp_path / "b")
    assert sorted(p.parent.name for p in (saved / "cells").rglob("fold-*.json")) == ["logreg-pixels"] * 2


def test_cache_dir_holds_the_decoded_folders_too(tmp_path, rng, monkeypatch):
    folder, cache = bmp_folder(tmp_path / "imgs", rng), tmp_path / "my-cache"
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(tmp_path / "default-cache"))
    assert main(["run", "--datasets", f"folder:{folder}", "--estimators", "knn-pixels", "--folds", "2",
                 "--out", str(tmp_path / "run"), "--cache-dir", str(cache), "--quiet"]) == 0
    assert len(list((cache / "folders").glob("*.npz"))) == 1  # not silently in the default place
    assert not (tmp_path / "default-cache" / "folders").exists()
