"""Training budgets that follow the data, convergence checks, and the report's diagnostics."""

import json
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from estimators import create_estimator, list_estimators, register
from estimators.budget import StepBudget
from estimators.cnn_fast import FastCNN
from estimators.convergence import check_convergence
from estimators.tags import benchmark_tags

CNN_NAMES = list_estimators(family="cnn")


def rule(budget, n):
    """The documented rule, written out independently of StepBudget.plan."""
    batch = budget.batch_size
    while batch // 2 >= budget.min_batch and math.ceil(n / batch) < budget.steps_per_epoch:
        batch //= 2
    batch = min(batch, n)
    steps = math.ceil(n / batch)
    epochs = min(max(budget.epochs, math.ceil(budget.min_steps / steps)), budget.max_epochs)
    return batch, epochs, steps * epochs


@pytest.mark.parametrize("name", CNN_NAMES)
@pytest.mark.parametrize("n", [300, 3_000, 50_000])
def test_each_cnn_budget_follows_the_documented_rule(name, n):
    budget = benchmark_tags(create_estimator(name)).step_budget
    plan = budget.plan(n)
    assert (plan.batch_size, plan.epochs, plan.steps) == rule(budget, n)
    assert plan.steps_per_epoch == math.ceil(n / plan.batch_size)
    assert plan.steps >= min(budget.min_steps, plan.steps_per_epoch * budget.max_epochs)


def test_cnn_fast_budget_figures():
    """The figures docs/training-budgets.md and the docstring quote: CIFAR-10 trains exactly as the recipe
    says (batch 512 x 10 epochs); small sets get smaller batches (not below 64) and more epochs."""
    budget = benchmark_tags(FastCNN()).step_budget
    figures = lambda plan: (plan.batch_size, plan.epochs, plan.steps_per_epoch, plan.steps)  # noqa: E731
    assert figures(budget.plan(49_000)) == (512, 10, 96, 960)
    assert figures(budget.plan(3_000)) == (128, 17, 24, 408)
    assert figures(budget.plan(300)) == (64, 80, 5, 400)  # the floor of 64: 5 steps an epoch
    assert budget.plan(300).batch_from == "rule" and budget.plan(49_000).epochs_from == "recipe"


def test_explicit_epochs_and_batch_size_win():
    budget = StepBudget(batch_size=512, epochs=10, min_steps=1000, max_epochs=100)
    plan = budget.plan(300, batch_size=100, epochs=3)
    assert (plan.batch_size, plan.epochs, plan.steps, plan.batch_from, plan.epochs_from) == (100, 3, 9, "user", "user")
    assert budget.plan(300, epochs=2).epochs == 2 and budget.plan(300, batch_size=64).batch_size == 64
    # a training set smaller than one batch: one step per epoch over every image
    small = budget.plan(10, batch_size=64)
    assert (small.batch_size, small.steps_per_epoch) == (10, 1)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "10", True])
@pytest.mark.parametrize("parameter", ["epochs", "batch_size"])
def test_a_bad_epochs_or_batch_size_is_a_clear_value_error(parameter, bad):
    with pytest.raises(ValueError, match=rf"^{parameter} must be a whole number >= 1"):
        StepBudget(batch_size=64, epochs=10, min_steps=100, max_epochs=50).plan(100, **{parameter: bad})


@pytest.mark.parametrize("name", CNN_NAMES)
@pytest.mark.parametrize("parameter", ["epochs", "batch_size"])
def test_fit_refuses_zero_epochs_or_batch_size_before_training(name, parameter):
    X = np.zeros((8, 8, 8, 1), np.uint8)
    y = np.array(["a", "b"] * 4)
    with pytest.raises(ValueError, match=rf"{parameter} must be a whole number >= 1"):
        create_estimator(name).set_params(**{parameter: 0}).fit(X, y)
    with pytest.raises(ValueError, match=rf"'{parameter}' parameter .* must be an int in the range \[1, inf\)"):
        create_estimator(name, **{parameter: 0})  # a setting without code: refused before any fit


# -- the convergence check on hand-made curves -----------------------------------------------
PLAN = StepBudget(batch_size=32, epochs=8, min_steps=10, max_epochs=8).plan(320)
Y = np.repeat([0, 1, 2, 3], 80)


def test_flat_curves_at_high_accuracy_pass():
    loss = [1.4, 0.8, 0.5, 0.40, 0.36, 0.35, 0.35, 0.35]
    accuracy = [0.4, 0.7, 0.9, 0.97, 0.99, 0.995, 0.995, 0.995]
    result = check_convergence({"loss": loss, "accuracy": accuracy}, PLAN, Y, 4)
    assert not result["undertrained"] and result["reasons"] == []
    assert result["window_epochs"] == 2 and result["accuracy_rise"] == 0.0
    assert result["chance_accuracy"] == 0.25 and result["train_accuracy"] == 0.995
    json.dumps(result)


def test_curves_still_climbing_at_the_end_are_flagged_with_the_evidence():
    loss = [1.4, 1.3, 1.2, 1.1, 1.0, 0.9, 0.8, 0.7]
    accuracy = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65]
    result = check_convergence({"loss": loss, "accuracy": accuracy}, PLAN, Y, 4)
    assert result["undertrained"]
    # the last 2 epochs' rise, from the epoch before them
    assert result["accuracy_rise"] == pytest.approx(0.1) and result["loss_share"] == pytest.approx(0.2 / 0.7, abs=1e-4)
    assert result["reasons"] == ["still improving over the last 2 of 8 epochs: training accuracy "
                                 "0.550 → 0.650, loss 0.900 → 0.700 (29% of its whole fall)"]


def test_a_late_rise_to_a_fitted_training_set_is_not_flagged():
    loss = [1.4, 0.8, 0.5, 0.40, 0.36, 0.35, 0.35, 0.349]
    accuracy = [0.4, 0.7, 0.9, 0.95, 0.96, 0.97, 0.98, 0.995]  # +0.025 from epoch 6, but to 0.995
    assert not check_convergence({"loss": loss, "accuracy": accuracy}, PLAN, Y, 4)["undertrained"]
    accuracy[5:] = [0.95, 0.96, 0.975]  # the same rise to below FITTED: still improving
    assert check_convergence({"loss": loss, "accuracy": accuracy}, PLAN, Y, 4)["undertrained"]


def test_an_early_stop_on_a_small_validation_split_before_the_training_set_is_fit_is_flagged():
    loss = [1.4, 0.8, 0.5, 0.42, 0.41, 0.41]
    accuracy = [0.4, 0.8, 0.93, 0.96, 0.965, 0.966]  # flat, but not fit, and stopped at 6 of 8
    stopped = check_convergence({"loss": loss, "accuracy": accuracy}, PLAN, Y, 4, n_validation=61)
    assert stopped["undertrained"] and stopped["stopped_early"] and stopped["validation_images"] == 61
    assert stopped["reasons"] == ["stopped on noise: early stopping ended training after 6 of 8 epochs, "
                                  "judged on 61 validation images, with the training accuracy at 0.966"]
    # a large validation split, or a training set already fit, is trusted
    assert not check_convergence({"loss": loss, "accuracy": accuracy}, PLAN, Y, 4, n_validation=5000)["undertrained"]
    fit = accuracy[:-1] + [0.995]
    assert not check_convergence({"loss": loss, "accuracy": fit}, PLAN, Y, 4, n_validation=61)["undertrained"]


def test_one_epoch_is_too_short_and_chance_level_did_not_learn():
    one = check_convergence({"loss": [1.2], "accuracy": [0.9]}, PLAN, Y, 4)
    assert one["undertrained"] and one["reasons"][0].startswith("too short: 1 epoch(s)")
    flat_at_chance = check_convergence({"loss": [1.39] * 8, "accuracy": [0.25] * 8}, PLAN, Y, 4)
    assert flat_at_chance["undertrained"]
    assert flat_at_chance["reasons"] == ["did not learn: training accuracy 0.250, where always "
                                         "answering the largest class scores 0.250"]


def test_a_loss_that_climbs_back_after_its_lowest_epoch_is_flagged_as_diverged():
    # digits, cnn-fast at batch 16 (fold 3): the loss fell to 1.31, then rose back to 1.82
    loss = [2.08, 1.97, 1.46, 1.74, 1.31, 2.10, 1.88, 1.82]
    accuracy = [0.2, 0.3, 0.55, 0.45, 0.6, 0.4, 0.47, 0.476]
    result = check_convergence({"loss": loss, "accuracy": accuracy}, PLAN, Y, 4)
    assert result["undertrained"]
    assert "lost ground: the training loss fell from 2.080 to 1.310, then rose back to 1.820 by the " \
           "last epoch (training diverged part way)" in result["reasons"]
    # a last epoch a little above the lowest (augmentation noise) is not divergence:
    # 0.36 - 0.35 is 1% of the fall from 1.4
    noisy = [1.4, 0.8, 0.5, 0.40, 0.36, 0.35, 0.35, 0.36]
    assert not any(r.startswith("lost ground") for r in check_convergence(
        {"loss": noisy, "accuracy": [0.99] * 8}, PLAN, Y, 4)["reasons"])


# -- CNN fits: the plan and the check are kept on the estimator -------------------------------
def separable(n, size=12, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["cat", "dog"])[np.arange(n) % 2]
    X = rng.integers(0, 100, (n, size, size, 3), dtype=np.uint8)
    X[y == "dog"] += 140
    return X, y


def test_a_fitted_cnn_keeps_its_plan_and_convergence_check():
    X, y = separable(64)
    estimator = create_estimator("cnn-fast", epochs=4, batch_size=16, input_size=8, validation_fraction=0)
    estimator.fit(X, y)
    plan = estimator.budget_
    assert (plan.batch_size, plan.epochs, plan.steps_per_epoch, plan.steps) == (16, 4, 4, 16)
    assert len(estimator.history_["loss"]) == 4 == estimator.convergence_["epochs_run"]
    assert estimator.convergence_["batch_size"] == 16 and estimator.convergence_["steps"] == 16
    assert estimator.convergence_["train_accuracy"] == pytest.approx(estimator.history_["accuracy"][-1], abs=1e-4)


@pytest.mark.slow
def test_default_budget_trains_a_small_set_with_small_batches_and_enough_steps():
    X, y = separable(40, size=8)  # smaller than the recipe's batch of 512
    estimator = create_estimator("cnn-fast", input_size=8, validation_fraction=0).fit(X, y)
    plan = estimator.budget_
    # the batch would halve to 16 for 3 steps an epoch, but cnn-fast's floor is 64: one step
    # over all 40 images
    assert plan.batch_size == 40 and plan.steps_per_epoch == 1
    # 400 steps would take 400 epochs: the rule caps them at max_epochs
    assert (plan.epochs, plan.steps) == (benchmark_tags(FastCNN()).step_budget.max_epochs, benchmark_tags(FastCNN()).step_budget.max_epochs)
    assert plan.epochs == len(estimator.history_["loss"])
    assert np.mean(estimator.predict(X) == y) == 1.0


@pytest.mark.slow
def test_odd_training_sets_do_not_crash_and_the_check_says_what_happened():
    rng = np.random.default_rng(0)
    # one class has a single image (it stays out of the inner validation split)
    X = rng.integers(0, 255, (21, 8, 8, 1), dtype=np.uint8)
    y = np.array(["a"] * 10 + ["b"] * 10 + ["c"])
    estimator = create_estimator("cnn-vgg", epochs=2, input_size=8).fit(X, y)
    assert estimator.predict(X).shape == (21,) and estimator.n_validation_ == 2
    # a training set smaller than one batch: one step an epoch over all of it
    estimator = create_estimator("cnn-simple", epochs=2, batch_size=64, input_size=16).fit(X, y)
    assert (estimator.budget_.batch_size, estimator.budget_.steps) == (estimator.n_train_, 2)
    # every image identical: nothing to learn, and the check says so
    same = np.full((40, 8, 8, 1), 128, np.uint8)
    labels = np.array(["a", "b"] * 20)
    estimator = create_estimator("cnn-fast", epochs=4, batch_size=8, input_size=8).fit(same, labels)
    assert estimator.convergence_["undertrained"]
    assert any(r.startswith("did not learn") for r in estimator.convergence_["reasons"])


# -- the runner and the report ----------------------------------------------------------------
@pytest.fixture
def extra_estimators(fresh_registry):

    @register("cnn-one-epoch")
    def one_epoch():
        return FastCNN(epochs=1, input_size=8)

    @register("logreg-one-iteration")
    def one_iteration():
        return create_estimator("logreg-pixels").set_params(max_iter=1)


@pytest.mark.slow
def test_undertrained_and_unconverged_fits_are_flagged_in_the_report_not_printed(
        tmp_path, extra_estimators, capfd):
    out = tmp_path / "run"
    code = main(["run", "--datasets", "faces", "--estimators", "cnn-one-epoch,logreg-one-iteration,knn-pixels",
                 "--folds", "3", "--out", str(out), "--no-cache", "--jobs", "1"])
    captured = capfd.readouterr()
    assert code == 0
    assert "ConvergenceWarning" not in captured.err and "Warning" not in captured.err
    assert "cnn-one-epoch (!)" in captured.out and "logreg-one-iteration (!)" in captured.out

    cell = json.loads((out / "cells" / "faces" / "logreg-one-iteration" / "fold-0.json").read_text())
    assert cell["diagnostics"]["undertrained"]
    assert any(w.startswith("ConvergenceWarning: lbfgs failed to converge") for w in cell["diagnostics"]["warnings"])
    cnn = json.loads((out / "cells" / "faces" / "cnn-one-epoch" / "fold-0.json").read_text())
    assert cnn["diagnostics"]["training"]["epochs_run"] == 1
    assert cnn["diagnostics"]["reasons"][0].startswith("too short: 1 epoch(s)")

    summary = pd.read_csv(out / "summary.csv").set_index("estimator")
    assert summary.loc["cnn-one-epoch", "undertrained_folds"] == 3
    assert summary.loc["logreg-one-iteration", "undertrained_folds"] == 3
    assert summary.loc["knn-pixels", "undertrained_folds"] == 0
    assert "undertrained on 3/3 folds" in summary.loc["cnn-one-epoch", "training_note"]
    assert pd.isna(summary.loc["knn-pixels", "training_note"])
    scores = pd.read_csv(out / "scores.csv")
    assert scores[scores.estimator == "cnn-one-epoch"]["epochs"].tolist() == [1, 1, 1]

    report = (out / "report.md").read_text()
    section = report[report.index("### Training diagnostics"):]
    assert "- **cnn-one-epoch** ⚠: undertrained on 3/3 folds" in section
    assert "too short: 1 epoch(s)" in section
    assert "- **logreg-one-iteration** ⚠: undertrained on 3/3 folds" in section
    assert "did not converge: ConvergenceWarning: lbfgs failed to converge" in section
    assert "knn-pixels**" not in section
    assert re.search(r"\| cnn-one-epoch ⚠ +\|", report) and re.search(r"\| knn-pixels +\|", report)


def test_a_cells_warnings_and_prints_stay_in_the_cell(tmp_path, capfd):
    from benchmark.execution.cells import CellTask, run_cell
    from benchmark.data.protocols import Split

    class Noisy(type(create_estimator("knn-pixels"))):
        def fit(self, X, y):
            print("printed by fit")
            warnings.warn("something odd", UserWarning)
            return super().fit(X, y)

    X = np.random.default_rng(0).integers(0, 255, (20, 8, 8, 1), dtype=np.uint8)
    y = np.array(["a", "b"] * 10)
    task = CellTask("d", "noisy", 0, "k", Noisy(), Split(np.arange(10), np.arange(10, 20), 0),
                    None, (None, "in-fit"), 1)
    cell = run_cell(task, X, y)
    assert cell.status == "ok"
    assert cell.diagnostics["warnings"] == ["UserWarning: something odd"]
    assert "printed by fit" in cell.diagnostics["printed"]
    assert not cell.diagnostics["undertrained"]
    captured = capfd.readouterr()
    assert "printed by fit" not in captured.out + captured.err and "something odd" not in captured.err


def test_cnn_vgg_patience_is_a_share_of_the_planned_epochs_and_waits_for_half_the_steps():
    from estimators.cnn_vgg import VGGCNN

    vgg = VGGCNN()
    vgg.budget_ = benchmark_tags(VGGCNN()).step_budget.plan(45_000)  # CIFAR-10: the studies' 3 and 6 epochs
    assert (vgg.budget_.batch_size, vgg.budget_.epochs) == (64, 30)
    assert vgg.watch_plan() == (3, 6, 1)
    vgg.budget_ = benchmark_tags(VGGCNN()).step_budget.plan(576)  # shapes: 18 steps an epoch, the recipe's 30 epochs
    assert (vgg.budget_.batch_size, vgg.budget_.epochs, vgg.budget_.steps) == (32, 30, 540)
    assert vgg.watch_plan() == (3, 6, 14)
    vgg.budget_ = benchmark_tags(VGGCNN()).step_budget.plan(144)  # faces: 9 steps an epoch, capped at 30 epochs
    assert (vgg.budget_.batch_size, vgg.budget_.epochs, vgg.budget_.steps) == (16, 30, 270)
    assert vgg.watch_plan() == (3, 6, 28)
    vgg.set_params(lr_patience=2, stop_patience=4)
    assert vgg.watch_plan()[:2] == (2, 4)
    with pytest.raises(ValueError, match="stop_patience must be a whole number >= 1"):
        vgg.set_params(stop_patience=0).watch_plan()


def test_cells_without_diagnostics_are_not_reported_as_checked(tmp_path):
    """A run stored by an older version has no diagnostics: the report must not claim they passed."""
    from benchmark.execution.cell_record import Cell
    from benchmark.execution.store import RunStore
    from benchmark.reporting.report import write_report

    run = tmp_path / "old"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({
        "run_id": "old", "status": "finished",
        "config": {"datasets": ["d"], "estimators": ["e1", "e2"], "folds": 3, "seed": 0},
        "plan": {"d": {"estimators": ["e1", "e2"], "folds": 3}},
        "datasets": {"d": {"images": 60, "image_size": "8x8x1", "classes": {"a": 30, "b": 30},
                           "fingerprint": "fp", "skipped_files": []}},
    }))
    for estimator, value in (("e1", 0.9), ("e2", 0.7)):
        for fold in range(3):
            y = ["a"] * 10 + ["b"] * 10
            RunStore(run).save_cell(Cell("d", estimator, fold, "ok", scores={m: value + fold / 100 for m in (
                "accuracy", "f1_macro", "f1_weighted", "balanced_accuracy")}, fit_seconds=1.0,
                predict_seconds=0.1, n_train=40, n_test=20, test_index=list(range(20)), y_true=y, y_pred=y))
    text = write_report(run).path.read_text()
    section = text[text.index("### Training diagnostics"):]
    assert "No training diagnostics were recorded for e1, e2" in section
    assert "passed its checks" not in section
