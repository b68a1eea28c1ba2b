"""report.md, plots, CSVs and `compare`, regenerated from stored runs (real and hand-made)."""

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats as scipy_stats

from benchmark.cli import main
from benchmark.reporting.report import write_report
from benchmark.execution.cell_record import Cell
from benchmark.execution.store import RunStore

ESTIMATORS = "knn-pixels,logreg-pixels,knn-hog"


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory):
    """A real run: 3 embedded datasets x 3 classical estimators x 3 folds (a few seconds)."""
    from benchmark.data import catalog

    with pytest.MonkeyPatch.context() as mp:  # module scope: the autouse fixture is per test
        mp.setenv(catalog.ENV_OFFLINE, "1")
        mp.setenv("BENCHMARK_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        run_dir = tmp_path_factory.mktemp("results") / "fixture-run"
        code = main(["run", "--datasets", "faces,textures,shapes", "--estimators", ESTIMATORS,
                     "--folds", "3", "--out", str(run_dir), "--no-cache", "--quiet", "--jobs", "1"])
    assert code == 0
    return run_dir


@pytest.fixture
def run_copy(stored_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(stored_run, copy)
    return copy


def png_links(report_text):
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report_text)


def test_report_has_every_section_and_valid_linked_plots(stored_run):
    text = (stored_run / "report.md").read_text()
    for heading in ("## Datasets", "## Overview: macro-F1", "## Overall ranking",
                    "## Dataset: faces", "## Dataset: textures", "## Dataset: shapes"):
        assert heading in text
    links = png_links(text)
    expected = {f"plots/{d}-{kind}.png" for d in ("faces", "textures", "shapes")
                for kind in ("macro-f1", "pareto", "confusion", "reliability")}
    summary = pd.read_csv(stored_run / "summary.csv")
    matrix = summary.pivot(index="dataset", columns="estimator", values="f1_macro_mean")
    rejected = scipy_stats.friedmanchisquare(*matrix.to_numpy().T).pvalue < 0.05
    # the critical-difference diagram is the post-hoc test's, drawn only after a rejection
    assert set(links) == expected | ({"plots/critical-difference.png"} if rejected else set())
    for link in links:
        with Image.open(stored_run / link) as image:
            image.verify()
            assert image.format == "PNG"
    # every dataset table: the 4 metrics with a confidence interval, and the comparison with the best
    faces = text[text.index("## Dataset: faces"):text.index("## Dataset: textures")]
    assert len(re.findall(r"\d\.\d{3} ± \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", faces)) == 3 * 4
    assert faces.count("| best ") == 1 and len(re.findall(r"(worse|not sig\.) \(p ", faces)) == 2


def test_overview_bolds_the_best_of_each_dataset_and_friedman_matches_scipy(stored_run):
    text = (stored_run / "report.md").read_text()
    summary = pd.read_csv(stored_run / "summary.csv")
    assert len(summary) == 9 and summary["folds_ok"].eq(3).all()
    matrix = summary.pivot(index="dataset", columns="estimator", values="f1_macro_mean")
    overview = text[text.index("## Overview"):text.index("## Overall ranking")]
    for dataset, row in matrix.iterrows():
        assert f"**{row.max():.3f}**" in overview
    chi2, p = scipy_stats.friedmanchisquare(*matrix.to_numpy().T)
    assert f"chi² = {chi2:.2f}, p = {p:.3g}" in text


def test_summary_csv_holds_intervals_and_tests(stored_run):
    summary = pd.read_csv(stored_run / "summary.csv")
    scores = pd.read_csv(stored_run / "scores.csv")
    row = summary[(summary["dataset"] == "textures") & (summary["estimator"] == "knn-hog")].iloc[0]
    folds = scores[(scores["dataset"] == "textures") & (scores["estimator"] == "knn-hog")]
    assert row["f1_macro_mean"] == pytest.approx(folds["f1_macro"].mean())
    assert row["f1_macro_std"] == pytest.approx(folds["f1_macro"].std())
    # Nadeau-Bengio corrected interval: wider than the naive one
    n, ratio = 3, folds["n_test"].mean() / folds["n_train"].mean()
    half = scipy_stats.t.ppf(0.975, n - 1) * np.sqrt((1 / n + ratio) * folds["f1_macro"].var())
    assert row["f1_macro_high"] == pytest.approx(min(1.0, row["f1_macro_mean"] + half))
    assert set(summary.columns) >= {"p_vs_best", "worse_than_best", "rank", "fit_seconds", "feature_seconds"}
    assert summary.groupby("dataset")["is_best"].sum().eq(1).all()


def test_run_json_describes_the_run(stored_run):
    meta = json.loads((stored_run / "run.json").read_text())
    assert meta["status"] == "finished"
    assert meta["command"][:2] == ["python -m benchmark", "run"]
    assert {"numpy", "scikit-learn", "scipy", "matplotlib"} <= set(meta["libraries"])
    assert meta["machine"]["cpu_count"] >= 1 and "gpus" in meta["machine"]
    assert meta["plan"]["faces"] == {"estimators": ESTIMATORS.split(","), "folds": 3}
    faces = meta["datasets"]["faces"]
    assert len(faces["fingerprint"]) >= 12 and faces["sampling"]["used_images"] == 200
    assert meta["config"]["seed"] == 0 and meta["config"]["protocol"] == "auto"
    assert meta["threads"] == {"workers": 1, "per_cell": 1}  # --jobs 1, one thread per cell by default
    assert meta["backend"] == "local"


def test_report_command_regenerates_the_same_report_without_refitting(run_copy, capsys, monkeypatch):
    original = (run_copy / "report.md").read_text()
    original_summary = (run_copy / "summary.csv").read_text()
    for name in ("report.md", "summary.csv", "scores.csv"):
        (run_copy / name).unlink()
    shutil.rmtree(run_copy / "plots")
    import benchmark.execution.cells

    monkeypatch.setattr(benchmark.execution.cells, "run_cell", None)  # any refit would fail
    assert main(["report", str(run_copy)]) == 0
    assert (run_copy / "report.md").read_text() == original
    assert (run_copy / "summary.csv").read_text() == original_summary
    assert all((run_copy / link).is_file() for link in png_links(original))
    assert "Report:" in capsys.readouterr().out


def test_corrupt_and_missing_cells_are_reported_and_the_rest_still_is(run_copy, capsys):
    corrupt = run_copy / "cells" / "faces" / "knn-hog" / "fold-1.json"
    corrupt.write_text('{"dataset": "faces", "estim')
    (run_copy / "cells" / "shapes" / "logreg-pixels" / "fold-2.json").unlink()
    assert main(["report", str(run_copy)]) == 1
    err = capsys.readouterr().err
    assert f"cannot read {corrupt}" in err and "JSONDecodeError" in err and "Traceback" not in err
    text = (run_copy / "report.md").read_text()
    assert "## Problems" in text and "fold-1.json" in text
    assert "1 planned cell(s) have no result" in text and "shapes / logreg-pixels / fold 2" in text
    summary = pd.read_csv(run_copy / "summary.csv")
    partial = summary[(summary["dataset"] == "faces") & (summary["estimator"] == "knn-hog")].iloc[0]
    assert (partial["folds_ok"], partial["folds"]) == (2, 3)  # the two readable folds are reported
    scores = pd.read_csv(run_copy / "scores.csv")
    assert set(scores["status"]) == {"ok", "missing", "unreadable"}
    # estimators with missing cells are left out of the cross-dataset test, and the report says so
    left_out = re.search(r"Left out of the ranking and the tests .*: (.*)\.", text).group(1)
    assert sorted(left_out.split(", ")) == ["knn-hog", "logreg-pixels"]


@pytest.fixture
def held(run_copy):
    """run_copy marked running, its lock held by another process: a run in progress."""
    import subprocess
    import sys

    meta = json.loads((run_copy / "run.json").read_text())
    (run_copy / "run.json").write_text(json.dumps(dict(meta, status="running")))
    holder = subprocess.Popen([sys.executable, "-c", "import time\nfrom filelock import FileLock\n"
                               f"lock = FileLock({str(run_copy / '.lock')!r}); lock.acquire()\n"
                               "print('held', flush=True); time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield run_copy
    finally:
        holder.kill()
        holder.wait()


def test_a_run_in_progress_shows_its_unfinished_cells_as_not_run_yet(held, capsys):
    for fold in range(3):
        (held / "cells" / "shapes" / "knn-hog" / f"fold-{fold}.json").unlink()
    (held / "cells" / "faces" / "logreg-pixels" / "fold-2.json").unlink()
    assert main(["report", str(held)]) == 0
    terminal = capsys.readouterr().out
    row = next(line for line in terminal.splitlines() if "knn-hog" in line and "not run yet" in line)
    assert "failed" not in terminal and row.split()[-1] == "0/3"
    text = (held / "report.md").read_text()
    assert not re.search(r"\| *failed *\|", text)  # no table cell says failed
    overview = text[text.index("## Overview"):text.index("## Overall ranking")]
    hog = next(line for line in overview.splitlines() if line.startswith("| knn-hog"))
    assert hog.split("|")[-2].strip() == "not run yet"  # shapes is the last column
    shapes = text[text.index("## Dataset: shapes"):]
    assert re.search(r"\| knn-hog +\| not run yet +\| not run yet +\|", shapes)
    assert ("4 planned cell(s) have no result (not run yet: the run is in progress): faces / logreg-pixels / "
            "fold 2, shapes / knn-hog / fold 0, shapes / knn-hog / fold 1, shapes / knn-hog / fold 2") in text
    summary = pd.read_csv(held / "summary.csv")
    assert summary.set_index(["dataset", "estimator"])["folds_missing"].to_dict()[("shapes", "knn-hog")] == 3


def test_an_estimator_whose_cells_failed_still_shows_failed(run_copy):
    for fold in range(3):
        path = run_copy / "cells" / "shapes" / "knn-hog" / f"fold-{fold}.json"
        record = json.loads(path.read_text())
        path.write_text(json.dumps(dict(record, status="failed", error="ValueError: boom", scores={})))
    write_report(run_copy)
    shapes = (run_copy / "report.md").read_text().split("## Dataset: shapes")[1]
    assert re.search(r"\| knn-hog +\| failed +\| failed +\|", shapes) and "not run yet" not in shapes


def test_corrupt_run_json_is_named_and_cells_are_still_reported(run_copy, capsys):
    (run_copy / "run.json").write_text("{not json")
    assert main(["report", str(run_copy)]) == 1
    assert "run.json" in capsys.readouterr().err
    text = (run_copy / "report.md").read_text()
    assert "## Dataset: faces" in text and "run.json" in text


def test_report_of_something_that_is_not_a_run_is_a_usage_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not a run directory" in err and len(err.strip().splitlines()) == 1


# --- hand-made runs: edge cases -------------------------------------------------------------

def fake_run(run_dir, scores, *, datasets=None, n_train=80, n_test=20, history=None):
    """Write run.json and cells for {(dataset, estimator): [macro-F1 per fold]}."""
    datasets = datasets or list(dict.fromkeys(d for d, _ in scores))
    estimators = list(dict.fromkeys(e for _, e in scores))
    folds = max(len(v) for v in scores.values())
    meta = {
        "run_id": run_dir.name, "status": "finished",
        "config": {"datasets": datasets, "estimators": estimators, "folds": folds, "seed": 0},
        "plan": {d: {"estimators": estimators, "folds": folds} for d in datasets},
        "datasets": {d: {"images": n_train + n_test, "image_size": "8x8x1", "classes": {"a": 50, "b|<i>": 50},
                         "fingerprint": f"fp-{d}", "skipped_files": []} for d in datasets},
    }
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(meta))
    for (dataset, estimator), values in scores.items():
        for fold, value in enumerate(values):
            y_true = ["a"] * 10 + ["b|<i>"] * 10
            RunStore(run_dir).save_cell(Cell(dataset, estimator, fold, "ok", scores={
                "accuracy": value, "f1_macro": value, "f1_weighted": value, "balanced_accuracy": value,
            }, fit_seconds=1.0 + fold, predict_seconds=0.1, n_train=n_train, n_test=n_test,
                test_index=list(range(fold * 20, fold * 20 + 20)), y_true=y_true, y_pred=y_true,
                history=(history or {}).get(estimator)))
    return run_dir


def test_one_dataset_says_why_there_is_no_cross_dataset_test(tmp_path):
    run = fake_run(tmp_path / "one", {("d1", "e1"): [0.9, 0.8, 0.85], ("d1", "e2"): [0.7, 0.6, 0.65],
                                      ("d1", "e3"): [0.5, 0.4, 0.45]})
    text = write_report(run).path.read_text()
    assert "No Friedman test: the Friedman test needs at least 2 datasets" in text
    assert "critical-difference.png" not in text


def test_all_estimators_tied(tmp_path):
    scores = {(d, e): [0.8, 0.8, 0.8] for d in ("d1", "d2", "d3", "d4") for e in ("e1", "e2", "e3")}
    text = write_report(fake_run(tmp_path / "tied", scores)).path.read_text()
    assert "No Friedman test: all estimators tied on every dataset" in text
    assert text.count("not sig. (p 1)") == 4 * 2  # each non-best estimator, identical on every fold


@pytest.mark.slow
def test_friedman_and_nemenyi_groups_when_ranks_differ(tmp_path):
    rng = np.random.default_rng(0)
    scores = {}
    for d in range(8):
        for e, level in (("strong", 0.9), ("middle", 0.7), ("middle-2", 0.69), ("weak", 0.5)):
            scores[(f"d{d}", e)] = list(level + rng.normal(0, 0.01, 3))
    text = write_report(fake_run(tmp_path / "ranked", scores)).path.read_text()
    assert re.search(r"Friedman test over 8 datasets and 4 estimators: .*ranks differ", text)
    assert "Nemenyi post-hoc test: critical difference 1.66" in text
    assert "critical-difference.png" in text


def test_hostile_names_are_escaped_everywhere(tmp_path):
    hostile_d, hostile_e = "da|ta*<script>x</script>", "est`i|m_a\nor"
    scores = {(d, e): [0.9, 0.8, 0.7] for d in (hostile_d, "plain") for e in (hostile_e, "knn", "svm")}
    text = write_report(fake_run(tmp_path / "hostile", scores)).path.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "est\\`i\\|m\\_a or" in text and "da\\|ta\\*" in text
    tables = [block for block in text.split("\n\n") if block.startswith("|")]
    assert len(tables) >= 5
    for block in tables:  # every row has as many unescaped pipes as the header: no broken table
        widths = {len(re.split(r"(?<!\\)\|", row)) for row in block.splitlines()}
        assert len(widths) == 1, block


def test_compare_same_splits_is_paired_and_flags_a_real_change(tmp_path, capsys):
    base = {(d, e): [0.80, 0.82, 0.78, 0.81, 0.79] for d in ("d1", "d2") for e in ("e1", "e2")}
    better = {**base, ("d1", "e2"): [0.90, 0.93, 0.87, 0.92, 0.88]}
    a, b = fake_run(tmp_path / "a", base), fake_run(tmp_path / "b", better)
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    rows = {tuple(line.split()[:2]): line for line in out.splitlines() if line.startswith("d")}
    assert "+0.100" in rows[("d1", "e2")] and "B better (p" in rows[("d1", "e2")]
    assert "paired corrected t-test" in rows[("d1", "e2")]
    assert "not sig. (p 1)" in rows[("d1", "e1")]
    assert "1 of 4 tested difference(s) significant" in out


def test_compare_different_splits_uses_welch_and_lists_unmatched(tmp_path, capsys):
    from benchmark.reporting.compare import compare_runs
    from benchmark.reporting.results import load_run

    a = fake_run(tmp_path / "a", {("d1", "e1"): [0.8, 0.7, 0.75], ("d1", "e2"): [0.5, 0.6, 0.55]})
    b = fake_run(tmp_path / "b", {("d1", "e1"): [0.6, 0.65, 0.55], ("d1", "e3"): [0.5, 0.5, 0.5]},
                 n_train=60)
    meta = json.loads((b / "run.json").read_text())
    meta["datasets"]["d1"]["fingerprint"] = "other"  # different data: folds are not paired
    (b / "run.json").write_text(json.dumps(meta))
    frame = compare_runs(load_run(a), load_run(b)).set_index("estimator")
    welch = scipy_stats.ttest_ind([0.6, 0.65, 0.55], [0.8, 0.7, 0.75], equal_var=False).pvalue
    assert frame.loc["e1", "p_value"] == pytest.approx(welch)
    assert frame.loc["e1", "test"].startswith("Welch")
    assert frame.loc["e2", "note"] == "only in run A" and frame.loc["e3", "note"] == "only in run B"


def test_learning_curves_are_drawn_from_the_stored_history(tmp_path):
    curve = {"loss": [1.0, 0.6, 0.4], "accuracy": [0.5, 0.7, 0.8],
             "val_loss": [1.1, 0.8, 0.7], "val_accuracy": [0.45, 0.6, 0.7]}
    scores = {(d, e): [0.9, 0.8, 0.85] for d in ("d1", "d2") for e in ("cnn", "knn")}
    run = fake_run(tmp_path / "curves", scores, history={"cnn": curve})
    report = write_report(run)
    text = report.path.read_text()
    assert text.count("-learning-curves.png") == 2
    with Image.open(run / "plots" / "d1-learning-curves.png") as image:
        image.verify()
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 2 * 3 * 4 * 3  # datasets x folds x metrics x epochs
    assert set(history["estimator"]) == {"cnn"}


def test_training_records_of_non_cnn_estimators_are_listed_and_a_plugins_own_never_breaks_it(tmp_path):
    # the report once read every `training` record as a CNN's budget (KeyError 'batch_size')
    run = fake_run(tmp_path / "boost", {("d1", "gboost"): [0.8, 0.82, 0.81], ("d1", "plugin"): [0.7, 0.71, 0.7]})
    store = RunStore(run)
    for fold, rounds in enumerate((57, 300, 80)):
        cell = next(c for c in store.stored_cells()[0].values() if c.estimator == "gboost" and c.fold == fold)
        cell.diagnostics = {"warnings": [], "notices": [], "printed": "", "undertrained": rounds == 300,
                            "reasons": ["ran every round"] if rounds == 300 else [],
                            "training": {"rounds": rounds, "max_rounds": 300, "early_stopped": rounds < 300,
                                         "summary": f"{rounds} of 300 rounds",
                                         "reasons": ["ran every round"] if rounds == 300 else []}}
        store.save_cell(cell)
        other = next(c for c in store.stored_cells()[0].values() if c.estimator == "plugin" and c.fold == fold)
        other.diagnostics = {"warnings": [], "notices": [], "printed": "", "undertrained": False,
                             "reasons": [], "training": {"whatever": fold}}
        store.save_cell(other)
    text = write_report(run).path.read_text()
    assert "| gboost      | 57-300 of 300 rounds, early-stopped in 2/3 folds | 1/3" in text
    assert "| plugin      |" in text


def test_the_terminal_prints_the_leaderboards_rendered_from_the_runs_analysis(run_copy, capsys):
    from benchmark.reporting.analysis import analyse
    from benchmark.reporting.leaderboard import terminal_leaderboards
    from benchmark.reporting.results import StoredRun, load_run

    analysis = analyse(load_run(run_copy))
    text = terminal_leaderboards(analysis)
    assert main(["report", str(run_copy), "--jobs", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(text) and printed[len(text):].startswith("Report: ")
    assert [line for line in text.splitlines() if line.startswith("Dataset: ")] == [
        "Dataset: faces", "Dataset: textures", "Dataset: shapes"]
    best = analysis.overall["estimator"].iloc[0]
    assert re.search(rf"^1\s+{best}\s+{analysis.overall['mean_rank'].iloc[0]:.2f}", text, re.M)
    # a run without a finished cell prints no leaderboard, and every table is empty
    empty = analyse(StoredRun(None, {}, []))
    assert terminal_leaderboards(empty) == ""
    for table in (empty.per_class, empty.tuning, empty.diagnostics, empty.sizes, empty.calibration,
                  empty.near_duplicates):
        assert table.empty and len(table.columns) > 5
