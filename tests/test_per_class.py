"""Per-class scores (issue 18, item 3): values equal to scikit-learn's on pooled out-of-fold
predictions, the sentence naming where the families differ, the cap on long class lists,
per_class.csv, and the runs that must not break it (one family, old cells, failures)."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_recall_fscore_support

from benchmark.execution.cell_record import Cell
from benchmark.execution.metrics import score_predictions
from benchmark.execution.store import RunStore
from benchmark.reporting.report import write_report

PETS = ["cat", "dog", "bird", "ship", "frog"]
# errors out of 8 images per class (4 per fold); an error predicts the next class of PETS
CNN_ERRORS = {"cat": 0, "dog": 1, "bird": 2, "ship": 4, "frog": 1}
KNN_ERRORS = {"cat": 6, "dog": 5, "bird": 4, "ship": 1, "frog": 1}
WEAK_ERRORS = dict.fromkeys(PETS, 7)


def folds_with_errors(errors, classes, per_fold=4, folds=2):
    """[(test_index, y_true, y_pred)] of each fold: `errors[c]` of class c's images (the first
    ones, across folds) predicted as the class after it."""
    out = []
    for fold in range(folds):
        index, y_true, y_pred = [], [], []
        for i, name in enumerate(classes):
            for j in range(per_fold):
                index.append(fold * 1000 + len(index))
                y_true.append(name)
                wrong = fold * per_fold + j < errors[name]
                y_pred.append(classes[(i + 1) % len(classes)] if wrong else name)
        out.append((index, y_true, y_pred))
    return out


def make_run(run_dir, predictions, classes, dataset="pets", failed=(), families=None):
    """A run directory of one dataset: run.json and, per estimator, the cells of
    {estimator: [(test_index, y_true, y_pred) or None per fold]} (None: a cell without stored
    predictions, as older versions wrote); `failed`: (estimator, fold) cells that failed;
    `families`: run.json's recorded {estimator: family} (None: a run from before they were)."""
    estimators = list(predictions)
    folds = max(len(v) for v in predictions.values())
    meta = {
        "run_id": run_dir.name, "status": "finished",
        "config": {"datasets": [dataset], "estimators": estimators, "folds": folds, "seed": 0},
        "plan": {dataset: {"estimators": estimators, "folds": folds}},
        "datasets": {dataset: {"images": 100, "image_size": "8x8x1", "classes": dict.fromkeys(classes, 10),
                               "fingerprint": "fp", "skipped_files": []}},
        **({"families": families} if families is not None else {}),
    }
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(meta))
    store = RunStore(run_dir)
    for estimator, per_fold in predictions.items():
        for fold, stored in enumerate(per_fold):
            if (estimator, fold) in failed:
                store.save_cell(Cell(dataset, estimator, fold, "failed", error="MemoryError: boom"))
                continue
            index, y_true, y_pred = stored if stored else fake_scores_only(fold)
            store.save_cell(Cell(dataset, estimator, fold, "ok", scores=score_predictions(y_true, y_pred),
                                 fit_seconds=1.0, predict_seconds=0.1, n_train=80, n_test=len(index),
                                 **({"test_index": index, "y_true": y_true, "y_pred": y_pred} if stored else {})))
    return run_dir


def fake_scores_only(fold):
    """Predictions that only give an old cell its scores; the cell keeps none of them."""
    return list(range(4)), ["cat", "cat", "dog", "dog"], ["cat", "dog", "dog", "dog"]


def pooled(folds):
    return [y for f in folds for y in f[1]], [y for f in folds for y in f[2]]


def sklearn_scores(folds, classes):
    """{metric: {class: value}} of scikit-learn on the pooled predictions."""
    precision, recall, f1, support = precision_recall_fscore_support(
        *pooled(folds), labels=classes, zero_division=0)
    return {"precision": dict(zip(classes, precision)), "recall": dict(zip(classes, recall)),
            "f1": dict(zip(classes, f1)), "support": dict(zip(classes, support))}


def section(text, dataset="pets"):
    part = text[text.index(f"## Dataset: {dataset}"):]
    return part[part.index("### Per-class scores"):]


def table_rows(text):
    """[[cells]] of the first Markdown table in `text`, header and rule left out."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


@pytest.fixture
def pets(tmp_path):
    predictions = {"knn-pixels": folds_with_errors(KNN_ERRORS, PETS),
                   "cnn-simple": folds_with_errors(CNN_ERRORS, PETS),
                   "logreg-pixels": folds_with_errors(WEAK_ERRORS, PETS)}
    run = make_run(tmp_path / "pets", predictions, PETS)
    return run, predictions, write_report(run).path.read_text()


def test_table_holds_scikit_learns_scores_of_each_familys_best_sorted_by_difference(pets):
    _, predictions, text = pets
    cnn, knn = (sklearn_scores(predictions[e], PETS) for e in ("cnn-simple", "knn-pixels"))
    part = section(text)
    assert "cnn-simple (cnn), knn-pixels (classical)" in part
    assert "logreg-pixels" not in part.split("\n\n")[3]  # the table: each family's best only
    rows = table_rows(part)
    difference = {c: cnn["f1"][c] - knn["f1"][c] for c in PETS}
    assert [r[0] for r in rows] == sorted(PETS, key=lambda c: -difference[c])
    assert [r[0] for r in rows] == ["dog", "cat", "bird", "frog", "ship"]
    for row in rows:
        name = row[0]
        assert row[1:] == ["8", f"{cnn['f1'][name]:.3f}", f"{cnn['recall'][name]:.3f}",
                           f"{knn['f1'][name]:.3f}", f"{knn['recall'][name]:.3f}",
                           f"{difference[name]:+.3f}"]
    assert rows[0][2:5] == ["0.933", "0.875", "0.353"]  # dog: hand-checked against the errors


def test_sentence_names_the_classes_that_differ_most_each_way(pets):
    _, predictions, text = pets
    cnn, knn = (sklearn_scores(predictions[e], PETS)["f1"] for e in ("cnn-simple", "knn-pixels"))
    assert (f"cnn-simple beats knn-pixels most on dog (F1 {cnn['dog']:.3f} vs {knn['dog']:.3f}), cat "
            f"and bird; knn-pixels is ahead on ship ({knn['ship']:.3f} vs {cnn['ship']:.3f}) and frog."
            in section(text))


def test_csv_holds_every_estimators_per_class_scores(pets):
    run, predictions, _ = pets
    frame = pd.read_csv(run / "per_class.csv", keep_default_na=False)
    assert list(frame.columns) == ["dataset", "estimator", "family", "train_size", "best_of_family",
                                   "class", "support", "precision", "recall", "f1", "folds"]
    assert (frame["train_size"] == "").all()  # the whole training part
    assert len(frame) == 3 * len(PETS)
    families = {"cnn-simple": "cnn", "knn-pixels": "classical", "logreg-pixels": "classical"}
    for estimator, folds in predictions.items():
        rows = frame[frame["estimator"] == estimator].set_index("class")
        assert list(rows.index) == PETS  # the dataset's class order
        expected = sklearn_scores(folds, PETS)
        for metric, values in expected.items():
            assert rows[metric].to_dict() == pytest.approx(values)
        assert set(rows["family"]) == {families[estimator]} and set(rows["folds"]) == {2}
        assert set(rows["best_of_family"]) == {estimator != "logreg-pixels"}
    assert set(frame["dataset"]) == {"pets"}


def test_long_class_lists_show_the_ten_largest_differences_each_way(tmp_path):
    classes = [f"c{i:02d}" for i in range(30)]
    rng = np.random.default_rng(0)
    cnn_errors = dict(zip(classes, rng.integers(0, 7, 30).tolist()))
    knn_errors = dict(zip(classes, rng.integers(0, 7, 30).tolist()))
    predictions = {"cnn-simple": folds_with_errors(cnn_errors, classes),
                   "knn-pixels": folds_with_errors(knn_errors, classes)}
    run = make_run(tmp_path / "many", predictions, classes)
    part = section(write_report(run).path.read_text())
    cnn, knn = (sklearn_scores(predictions[e], classes)["f1"] for e in ("cnn-simple", "knn-pixels"))
    difference = {c: cnn[c] - knn[c] for c in classes}
    order = sorted(classes, key=lambda c: (-difference[c], c))
    ahead = [c for c in order if difference[c] > 0][:10]
    behind = [c for c in order if difference[c] < 0][-10:]
    assert len(ahead) == len(behind) == 10
    assert [r[0] for r in table_rows(part)] == ahead + behind
    assert f"{30 - 20} class(es) with smaller differences are left out; per_class.csv has them all." in part
    assert "Classes with the 10 largest F1 differences each way (cnn-simple minus knn-pixels)" in part
    assert len(pd.read_csv(run / "per_class.csv")) == 2 * 30


def test_one_family_gets_the_table_by_name_without_a_sentence(tmp_path):
    predictions = {"knn-pixels": folds_with_errors(KNN_ERRORS, PETS),
                   "logreg-pixels": folds_with_errors(WEAK_ERRORS, PETS)}
    part = section(write_report(make_run(tmp_path / "one", predictions, PETS)).path.read_text())
    assert "Only the classical family has predictions here: no families to compare." in part
    assert "beats" not in part and "F1 difference" not in part
    rows = table_rows(part)
    knn = sklearn_scores(predictions["knn-pixels"], PETS)
    assert [r[0] for r in rows] == sorted(PETS)
    assert [r[2] for r in rows] == [f"{knn['f1'][c]:.3f}" for c in sorted(PETS)]
    assert len(rows[0]) == 4  # class, support, F1 and recall of knn-pixels alone


def test_old_cells_failures_unregistered_names_and_untested_classes_never_break_it(tmp_path):
    classes = PETS + ["horse"]  # in run.json, but no image of it was tested
    predictions = {
        "cnn-simple": [None, None],  # cells of an older version: no predictions stored
        "knn-pixels": folds_with_errors(KNN_ERRORS, PETS),
        "gone-plugin": folds_with_errors(CNN_ERRORS, PETS),  # no longer registered
        "logreg-pixels": [None, None],
    }
    run = make_run(tmp_path / "odd", predictions, classes, failed={("knn-pixels", 1), ("logreg-pixels", 0),
                                                                   ("logreg-pixels", 1)})
    part = section(write_report(run).path.read_text())
    assert "No per-class scores for cnn-simple: the cells hold no out-of-fold predictions" in part
    assert "Not registered any more (a removed plug-in?), so of family unknown: gone-plugin." in part
    assert "No test image of horse among the pooled predictions." in part
    # two families, neither the CNN's nor both of the question's: the better family comes first
    assert "gone-plugin beats knn-pixels most on cat (F1 0.941 vs 0.000), dog and bird" in part
    assert "their ok folds (gone-plugin 2, knn-pixels 1)" in part
    # knn-pixels: only its ok fold is pooled; unknown is a family of its own, compared with it
    knn = sklearn_scores(predictions["knn-pixels"][:1], PETS)
    rows = {r[0]: r for r in table_rows(part)}
    assert set(rows) == set(PETS)
    assert rows["cat"][1] == "8/4"  # supports differ: one fold of knn-pixels failed
    assert [rows[c][4] for c in PETS] == [f"{knn['f1'][c]:.3f}" for c in PETS]
    frame = pd.read_csv(run / "per_class.csv")
    assert set(frame["estimator"]) == {"knn-pixels", "gone-plugin"}
    assert set(frame[frame["estimator"] == "knn-pixels"]["folds"]) == {1}
    assert frame[frame["class"] == "horse"]["support"].eq(0).all()


def test_no_ok_cell_gives_no_section_and_no_csv(tmp_path):
    run = make_run(tmp_path / "none", {"knn-pixels": [None, None]}, PETS,
                   failed={("knn-pixels", 0), ("knn-pixels", 1)})
    text = write_report(run).path.read_text()
    assert "### Per-class scores" not in text and not (run / "per_class.csv").exists()


def test_holdout_repeats_are_pooled_and_support_counts_predictions(tmp_path):
    repeat = folds_with_errors(KNN_ERRORS, PETS, per_fold=4, folds=1)[0]
    shifted = (repeat[0], repeat[1], repeat[2][1:] + repeat[2][:1])  # same test rows, other predictions
    predictions = {"knn-pixels": [repeat, shifted, repeat]}
    run = make_run(tmp_path / "holdout", predictions, PETS)
    part = section(write_report(run).path.read_text())
    assert "support: predictions of the class (the repeats score the same test images" in part
    expected = sklearn_scores(predictions["knn-pixels"], PETS)
    rows = {r[0]: r for r in table_rows(part)}
    assert {c: rows[c][1] for c in PETS} == {c: "12" for c in PETS}  # 4 images x 3 repeats
    assert {c: rows[c][2] for c in PETS} == {c: f"{expected['f1'][c]:.3f}" for c in PETS}


def test_a_real_run_reports_per_class_scores_equal_to_scikit_learns(tmp_path):
    from benchmark import run_benchmark

    results = run_benchmark(datasets=["digits"], estimators=["knn-pixels", "logreg-pixels"], folds=2,
                            max_per_class=8, out=tmp_path / "digits")
    text = (results.path / "report.md").read_text()
    part = section(text, "digits")
    assert "Only the classical family has predictions here" in part
    frame = pd.read_csv(results.path / "per_class.csv")
    classes = [str(c) for c in results.meta["datasets"]["digits"]["classes"]]
    assert len(classes) == 10 and len(frame) == 2 * 10
    for estimator in ("knn-pixels", "logreg-pixels"):
        cells = [c for c in results.cells if c.estimator == estimator and c.status == "ok"]
        assert len(cells) == 2
        folds = [(c.test_index, c.y_true, c.y_pred) for c in cells]
        expected = sklearn_scores(folds, classes)
        rows = frame[frame["estimator"] == estimator]
        assert [str(c) for c in rows["class"]] == classes
        for metric in ("precision", "recall", "f1"):
            assert rows[metric].tolist() == pytest.approx([expected[metric][c] for c in classes])
        assert rows["support"].tolist() == [8] * 10
    best = results.leaderboard("digits").iloc[0]["estimator"]
    assert f"Best estimator of each family by mean macro-F1: {best} (classical)." in part
    assert frame.groupby("estimator")["best_of_family"].first().to_dict() == {
        best: True, ({"knn-pixels", "logreg-pixels"} - {best}).pop(): False}


def test_with_three_families_the_best_cnn_is_compared_with_the_best_classical(tmp_path):
    predictions = {"gone-plugin": folds_with_errors(dict.fromkeys(PETS, 0), PETS),  # the best, unknown
                   "cnn-simple": folds_with_errors(CNN_ERRORS, PETS),
                   "logreg-pixels": folds_with_errors(WEAK_ERRORS, PETS)}
    part = section(write_report(make_run(tmp_path / "three", predictions, PETS)).path.read_text())
    assert "gone-plugin (unknown), cnn-simple (cnn), logreg-pixels (classical)" in part
    assert "Classes by F1 difference (cnn-simple minus logreg-pixels)" in part
    cnn, weak = (sklearn_scores(predictions[e], PETS)["f1"] for e in ("cnn-simple", "logreg-pixels"))
    top = max(PETS, key=lambda c: cnn[c] - weak[c])
    assert (f"cnn-simple beats logreg-pixels most on {top} (F1 {cnn[top]:.3f} vs {weak[top]:.3f}), "
            in part) and "logreg-pixels is ahead on no class." in part
    rows = table_rows(part)
    assert len(rows[0]) == 2 + 3 * 2 + 1  # the pair, then the third family, then the difference
    assert all(r[6:8] == ["1.000", "1.000"] for r in rows)


def test_one_family_with_a_long_class_list_shows_its_highest_and_lowest_f1(tmp_path):
    classes = [f"c{i:02d}" for i in range(30)]
    errors = dict(zip(classes, np.random.default_rng(1).integers(0, 7, 30).tolist()))
    predictions = {"knn-pixels": folds_with_errors(errors, classes)}
    part = section(write_report(make_run(tmp_path / "long", predictions, classes)).path.read_text())
    f1 = sklearn_scores(predictions["knn-pixels"], classes)["f1"]
    order = sorted(classes, key=lambda c: (-f1[c], c))
    assert [r[0] for r in table_rows(part)] == order[:10] + order[-10:]
    assert "Classes with the 10 highest and the 10 lowest F1, highest first" in part
    assert "10 class(es) in between are left out; per_class.csv has them all." in part


def test_the_family_recorded_in_run_json_wins_over_the_registry(tmp_path):
    # a CNN plug-in that is no longer installed where the report is regenerated
    predictions = {"gone-plugin": folds_with_errors(dict.fromkeys(PETS, 0), PETS),
                   "logreg-pixels": folds_with_errors(WEAK_ERRORS, PETS)}
    run = make_run(tmp_path / "recorded", predictions, PETS,
                   families={"gone-plugin": "cnn", "logreg-pixels": "classical"})
    part = section(write_report(run).path.read_text())
    assert "gone-plugin (cnn), logreg-pixels (classical)" in part
    assert "Not registered any more" not in part
    assert "Classes by F1 difference (gone-plugin minus logreg-pixels)" in part
    summary = pd.read_csv(run / "summary.csv")
    assert dict(zip(summary["estimator"], summary["family"])) == {"gone-plugin": "cnn", "logreg-pixels": "classical"}


@pytest.mark.slow
def test_a_run_records_each_estimators_family(tmp_path):
    from benchmark import run_benchmark

    results = run_benchmark(datasets=["faces"], estimators=["knn-pixels", "cnn-fast"], folds=2,
                            max_per_class=6, settings={"cnn-fast": {"epochs": 1}}, out=tmp_path / "run")
    assert results.meta["families"] == {"knn-pixels": "classical", "cnn-fast": "cnn"}
