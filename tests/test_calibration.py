"""Stored out-of-fold probabilities and the report's probabilistic scores (issue 18, item 4)."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import brier_score_loss, log_loss, top_k_accuracy_score

from benchmark import run_benchmark
from benchmark.execution.cell_record import Cell, read_cell
from benchmark.execution.store import RunStore
from benchmark.reporting.calibration import N_BINS, probabilistic_scores, reliability_bins
from benchmark.reporting.leaderboard import render
from benchmark.reporting.report import write_report


# --- the scores -----------------------------------------------------------------------------

@pytest.mark.parametrize("n_classes", [3, 12])
def test_log_loss_brier_and_top_k_equal_scikit_learns(n_classes):
    rng = np.random.default_rng(n_classes)
    # an estimator's classes_ need not sort as text: 10 and 11 come before 2 as text
    classes = [str(c) for c in range(n_classes)]
    y_true = rng.choice(classes, size=200)
    proba = rng.dirichlet(np.ones(n_classes) * 0.5, size=200).astype(np.float32)
    scores, _ = probabilistic_scores(y_true, proba, classes)

    order = np.argsort(classes)  # scikit-learn reads columns in sorted label order
    labels, reordered = sorted(classes), proba[:, order].astype(float)
    reordered /= reordered.sum(axis=1, keepdims=True)  # float32 rows: 1 within 1e-7, not 1e-15
    assert scores["log_loss"] == pytest.approx(log_loss(y_true, reordered, labels=labels), rel=1e-6)
    brier = brier_score_loss(y_true, reordered, labels=labels, scale_by_half=False)
    assert scores["brier"] == pytest.approx(brier, rel=1e-6)
    onehot = (np.asarray(classes)[None, :] == y_true[:, None]).astype(float)
    assert scores["brier"] == pytest.approx(((proba - onehot) ** 2).sum(axis=1).mean(), rel=1e-5)
    if n_classes > 5:
        top5 = top_k_accuracy_score(y_true, reordered, k=5, labels=labels)
        assert scores["top5_accuracy"] == pytest.approx(top5)
    else:
        assert np.isnan(scores["top5_accuracy"])  # 5 classes or fewer: top-5 says nothing


def test_a_test_class_the_fit_never_saw_gets_zero_probability():
    y_true = np.array(["a", "b", "c"])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.5, 0.5]])  # the fit knew only a and b
    scores, _ = probabilistic_scores(y_true, proba, ["a", "b"])
    padded = np.hstack([proba, np.zeros((3, 1))])
    assert scores["log_loss"] == pytest.approx(log_loss(y_true, padded, labels=["a", "b", "c"]))
    assert scores["brier"] == pytest.approx(((padded - np.eye(3)) ** 2).sum(axis=1).mean())


def test_ece_equals_a_hand_computed_example():
    # top-label confidence, correct?, bin of 15 equal-width bins [m/15, (m+1)/15):
    #   0.90 right -> bin 13 [0.867, 0.933)   gap |1 - 0.90| = 0.10
    #   0.95 wrong -> bin 14 [0.933, 1.000]   gap |0 - 0.95| = 0.95
    #   0.50 right -> bin 7  [0.467, 0.533)   gap |1 - 0.50| = 0.50
    #   0.45 wrong and 0.42 right -> bin 6 [0.400, 0.467): accuracy 1/2, mean confidence 0.435,
    #                                         gap 0.065, weight 2
    # ECE = (0.10 + 0.95 + 0.50 + 2 * 0.065) / 5 = 1.68 / 5 = 0.336
    labels = ["a", "b", "c"]
    proba = np.array([[0.90, 0.05, 0.05], [0.95, 0.03, 0.02], [0.10, 0.50, 0.40],
                      [0.20, 0.45, 0.35], [0.25, 0.33, 0.42]])
    y_true = np.array(["a", "b", "b", "c", "c"])
    bins = reliability_bins(proba, y_true, labels)
    assert bins.ece == pytest.approx(0.336)
    assert probabilistic_scores(y_true, proba, labels)[0]["ece"] == pytest.approx(0.336)
    assert len(bins.counts) == N_BINS and bins.counts.tolist() == [0] * 6 + [2, 1] + [0] * 5 + [1, 1]
    confidence, accuracy, counts = bins.curve()
    assert confidence == pytest.approx([0.435, 0.5, 0.9, 0.95])
    assert accuracy.tolist() == [0.5, 1, 1, 0] and counts.tolist() == [2, 1, 1, 1]
    halves = reliability_bins(proba[:2], y_true[:2], labels) + reliability_bins(proba[2:], y_true[2:], labels)
    assert halves.ece == pytest.approx(0.336)  # bins of two folds add up to the pooled ones


# --- through runs ---------------------------------------------------------------------------

@pytest.fixture
def digits_run(tmp_path):
    """digits (10 classes), two deterministic estimators with predict_proba, written to disk."""
    results = run_benchmark(["digits"], ["logreg-pixels", "knn-pixels"], folds=2, max_per_class=15,
                            out=tmp_path / "run")
    return results


def test_a_run_stores_probabilities_whose_argmax_is_the_prediction(digits_run):
    store = RunStore(digits_run.path)
    assert len(store.cell_files()) == 4  # the .npy files are not cells
    for path in store.cell_files():
        record = json.loads(path.read_text())
        assert record["proba_file"] == path.name.replace(".json", ".proba.npy")
        assert record["proba_classes"] == [str(c) for c in range(10)]
        assert record["proba_seconds"] >= 0 and "probabilities" not in record
        proba = np.load(path.with_name(record["proba_file"]))
        assert proba.dtype == np.float32 and proba.shape == (len(record["y_true"]), 10)
        np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
        if record["estimator"] == "logreg-pixels":  # knn may tie: argmax takes the first class
            predicted = np.asarray(record["proba_classes"])[proba.argmax(axis=1)]
            assert predicted.tolist() == record["y_pred"]
    summary = pd.read_csv(digits_run.path / "summary.csv")
    assert summary["proba_folds"].tolist() == [2, 2]
    for metric in ("log_loss", "brier", "top5_accuracy", "ece"):
        assert summary[f"{metric}_mean"].notna().all()
    scores = pd.read_csv(digits_run.path / "scores.csv")
    assert scores["ece"].between(0, 1).all() and scores["top5_accuracy"].between(0, 1).all()
    # the in-memory results equal what the report computes from the stored files
    assert digits_run.summary["log_loss_mean"].tolist() == pytest.approx(summary["log_loss_mean"].tolist())


def test_the_reliability_diagram_is_drawn_and_linked(digits_run):
    text = (digits_run.path / "report.md").read_text()
    assert "plots/digits-reliability.png" in text
    with Image.open(digits_run.path / "plots" / "digits-reliability.png") as image:
        assert image.format == "PNG"
    section = text[text.index("## Dataset: digits"):]
    header = next(line for line in section.splitlines() if line.startswith("| rank"))
    assert [h.strip() for h in header.split("|")[7:11]] == ["log loss", "Brier", "top-5 accuracy", "ECE"]
    assert "Problems" not in text
    # the terminal's leaderboard stays narrow: log loss and ECE, fold means alone
    terminal = render(digits_run.summary, digits_run.overall).splitlines()
    assert re.split(r"\s{2,}", terminal[2].strip())[4:6] == ["log loss", "ECE"]
    assert "Brier" not in terminal[2] and re.search(r"\d\.\d{3}\s+\d\.\d{3}\s+[\d.]+\s+[\d.]+", terminal[4])


@pytest.mark.slow
def test_replaced_cells_take_their_probabilities_with_them(digits_run):
    run = digits_run.path
    before = {p.name: p.read_bytes() for p in run.glob("cells/digits/logreg-pixels/*.npy")}
    assert len(before) == 2
    # another C for logreg-pixels: its cells are recomputed, the old ones set aside
    run_benchmark(["digits"], ["logreg-pixels", "knn-pixels"], folds=2, max_per_class=15, out=run,
                  settings={"logreg-pixels": {"C": 0.5}})
    moved = {p.name: p.read_bytes() for p in run.glob("replaced/*/cells/digits/logreg-pixels/*.npy")}
    assert moved == before
    assert len(list(run.glob("replaced/*/cells/digits/logreg-pixels/fold-*.json"))) == 2
    assert not list(run.glob("replaced/*/cells/digits/knn-pixels/*"))  # reused, left in place
    now = sorted(p.name for p in run.glob("cells/digits/logreg-pixels/*"))
    assert now == ["fold-0.json", "fold-0.proba.npy", "fold-1.json", "fold-1.proba.npy"]


@pytest.mark.slow
def test_a_damaged_probability_file_gives_n_a_and_a_problem(digits_run):
    store = RunStore(digits_run.path)
    truncated = store.proba_path("digits", "logreg-pixels", 0)
    truncated.write_bytes(truncated.read_bytes()[:100])
    halved = store.proba_path("digits", "knn-pixels", 1)
    np.save(halved, np.load(halved) / 2)  # a valid .npy file whose rows sum to 1/2
    assert read_cell(store.cell_path("digits", "logreg-pixels", 0)).status == "ok"  # never opened
    report = write_report(store.path)
    problems = [p for p in report.problems if "probabilities" in p]
    assert len(problems) == 2
    assert "digits / logreg-pixels / fold 0: its stored probabilities cannot be used" in problems[0]
    assert "sums to 0.5, not 1" in problems[1]
    scores = pd.read_csv(store.output("scores.csv")).set_index(["estimator", "fold"])
    assert np.isnan(scores.loc[("logreg-pixels", 0), "log_loss"])
    assert not np.isnan(scores.loc[("logreg-pixels", 1), "log_loss"])
    summary = pd.read_csv(store.output("summary.csv")).set_index("estimator")
    assert summary["proba_folds"].to_dict() == {"logreg-pixels": 1, "knn-pixels": 1}
    assert summary.loc["logreg-pixels", "log_loss_mean"] == scores.loc[("logreg-pixels", 1), "log_loss"]
    text = store.report_file.read_text()
    assert "(1/2 folds)" in text and "its stored probabilities cannot be used" in text
    store.proba_path("digits", "knn-pixels", 0).unlink()  # missing altogether
    assert any("knn-pixels / fold 0" in p and "FileNotFoundError" in p
               for p in write_report(store.path).problems)


class NearestMean(ClassifierMixin, BaseEstimator):
    """A plug-in with no predict_proba: the class whose mean image is nearest."""

    def fit(self, X, y):
        X = np.asarray(X, dtype=float).reshape(len(X), -1)
        self.classes_ = np.unique(y)
        self.means_ = np.stack([X[np.asarray(y) == c].mean(axis=0) for c in self.classes_])
        return self

    def predict(self, X):
        X = np.asarray(X, dtype=float).reshape(len(X), -1)
        return self.classes_[((X[:, None, :] - self.means_[None]) ** 2).sum(axis=2).argmin(axis=1)]


def test_an_estimator_without_predict_proba_scores_n_a_and_nothing_breaks(tmp_path, fresh_registry):
    fresh_registry.register("nearest-mean")(NearestMean)
    results = run_benchmark(["faces"], ["nearest-mean", "logreg-pixels"], folds=2, max_per_class=15)
    assert not results.problems
    cells = {c.estimator: c for c in results.cells if c.fold == 0}
    assert cells["nearest-mean"].status == "ok" and cells["nearest-mean"].proba_file is None
    assert cells["logreg-pixels"].probabilities.shape == (cells["logreg-pixels"].n_test, 2)
    board = results.leaderboard("faces").set_index("estimator")
    assert board.loc["nearest-mean", "proba_folds"] == 0 and np.isnan(board.loc["nearest-mean", "ece_mean"])
    assert board.loc["logreg-pixels", "proba_folds"] == 2
    # the notebook run kept its probabilities in memory: its figures and save() still have them
    assert ("faces", "reliability") in results.figures()
    saved = results.save(tmp_path / "saved")
    assert sorted(p.name for p in saved.glob("cells/faces/*/*.npy")) == ["fold-0.proba.npy", "fold-1.proba.npy"]
    assert not list(saved.glob("cells/faces/nearest-mean/*.npy"))
    section = (saved / "report.md").read_text().split("## Dataset: faces")[1]
    header = next(line for line in section.splitlines() if line.startswith("| rank"))
    assert "log loss" in header and "top-5 accuracy" not in header  # 2 classes: no top-5 column
    row = next(line for line in section.splitlines() if re.match(r"\| \d +\| nearest-mean ", line))
    assert row.count("n/a") == 3  # log loss, Brier, ECE
    assert "n/a: no probabilities stored for nearest-mean (no `predict_proba`" in section


def test_saving_a_cell_again_keeps_its_file_and_a_cell_without_probabilities_removes_a_stale_one(tmp_path):
    store = RunStore(tmp_path / "run").prepare()
    labels = ["a", "b"]
    cell = Cell("d", "e", 0, "ok", scores={m: 1.0 for m in ("accuracy", "f1_macro", "f1_weighted",
                                                              "balanced_accuracy")},
                n_test=2, test_index=[0, 1], y_true=labels, y_pred=labels, proba_classes=labels,
                probabilities=np.array([[0.9, 0.1], [0.2, 0.8]]))
    store.save_cell(cell)
    stored = read_cell(store.cell_path("d", "e", 0))
    assert stored.probabilities is None and stored.proba_file == "fold-0.proba.npy"
    store.save_cell(stored)  # read back and saved again: the file stays and stays named
    np.testing.assert_allclose(store.load_probabilities(read_cell(store.cell_path("d", "e", 0))),
                               [[0.9, 0.1], [0.2, 0.8]], rtol=1e-6)
    store.save_cell(Cell("d", "e", 0, "ok", scores=cell.scores, n_test=2, test_index=[0, 1],
                         y_true=labels, y_pred=labels))
    assert not store.proba_path("d", "e", 0).exists()
    assert read_cell(store.cell_path("d", "e", 0)).proba_file is None
