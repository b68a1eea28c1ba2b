import math
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmark.reporting import plots

HOSTILE = "a$b_c|d\n<e>"


def assert_png(path, max_side=1000):
    assert path.is_file()
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG"
        width, height = image.size
    assert 200 <= width <= max_side and 100 <= height <= max_side
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left
    return width, height


@pytest.fixture(autouse=True)
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_bar_chart_with_nan_interval_and_hostile_names(tmp_path):
    path = tmp_path / "bars.png"
    out = plots.bar_chart(["cnn", HOSTILE, "knn $x$", "failed"], [0.9, 0.7, 0.5, math.nan],
                          [0.85, math.nan, 0.4, math.nan], [0.95, math.nan, 0.6, math.nan],
                          path, f"digits {HOSTILE}")
    assert out == path
    assert_png(path)


def test_bar_chart_height_grows_with_estimators(tmp_path):
    small = assert_png(plots.bar_chart(["a", "b"], [0.5, 0.6], [0.4, 0.5], [0.6, 0.7],
                                       tmp_path / "s" / "bars.png", "t"))
    names = [f"est-{i}" for i in range(20)]
    big = assert_png(plots.bar_chart(names, np.linspace(0.9, 0.1, 20), np.full(20, np.nan),
                                     np.full(20, np.nan), tmp_path / "b" / "bars.png", "t"))
    assert big[1] > small[1]


@pytest.mark.parametrize("t, s, expected", [
    ([1.0], [0.5], [0]),
    ([1, 2, 3], [0.5, 0.6, 0.7], [0, 1, 2]),           # each slower one is better
    ([1, 2, 3], [0.7, 0.6, 0.5], [0]),                 # fastest is also best
    ([2, 1, 3, 4], [0.8, 0.6, 0.7, 0.9], [1, 0, 3]),   # 2 is dominated by 0
    ([1, 1, 2], [0.5, 0.6, 0.6], [1]),                 # equal time: lower score dominated;
                                                       # equal score: slower one dominated
    ([1, 1, 2], [0.6, 0.6, 0.7], [0, 1, 2]),           # exact duplicates dominate neither
    ([1, math.nan, 2], [0.5, 0.9, math.nan], [0]),     # NaN never on the front
    ([], [], []),
])
def test_pareto_front(t, s, expected):
    assert plots.pareto_front(t, s) == expected


def test_pareto_plot_returns_front_names_by_fit_time(tmp_path):
    names = ["slow-best", "fast-bad", "dominated", HOSTILE, "zero-time"]
    path, front = plots.pareto_plot(names, [100.0, 0.5, 200.0, 5.0, 0.0],
                                    [0.95, 0.3, 0.9, 0.8, 0.2], tmp_path / "pareto.png", "t $")
    assert front == ["zero-time", "fast-bad", HOSTILE, "slow-best"]
    assert_png(path)


def test_confusion_matrix_three_hostile_classes(tmp_path):
    labels = [HOSTILE, "b$", "c_d"]
    y_true = [HOSTILE, HOSTILE, "b$", "b$", "c_d", "c_d"]
    y_pred = [HOSTILE, "b$", "b$", "b$", "c_d", HOSTILE]
    assert_png(plots.confusion_matrix_plot(y_true, y_pred, labels, tmp_path / "cm.png", HOSTILE))


def test_confusion_matrix_many_classes_and_absent_class(tmp_path, rng):
    labels = [f"class_{i}" for i in range(60)]
    y_true = rng.choice(labels[:-1], size=600)  # last class never occurs: row of zeros
    y_pred = np.where(rng.random(600) < 0.7, y_true, rng.choice(labels, size=600))
    width, height = assert_png(plots.confusion_matrix_plot(y_true, y_pred, labels,
                                                           tmp_path / "cm.png", "cifar"))
    assert width >= 800 and height >= 800


def history(folds_epochs, metrics, estimators=("cnn-small", HOSTILE)):
    rows = [
        (est, fold, epoch, metric, 1.0 / epoch if "loss" in metric else 1 - 1.0 / (epoch + 1))
        for est in estimators
        for fold, epochs in enumerate(folds_epochs)
        for epoch in range(1, epochs + 1)
        for metric in metrics
    ]
    return pd.DataFrame(rows, columns=["estimator", "fold", "epoch", "metric", "value"])


def test_learning_curves_folds_of_different_lengths(tmp_path):
    frame = history([5, 3, 8], ["loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"])
    frame.insert(0, "dataset", "digits")
    assert_png(plots.learning_curves(frame, tmp_path / "curves.png", f"digits {HOSTILE}"))


def test_learning_curves_without_validation(tmp_path):
    frame = history([4, 4], ["loss", "accuracy"], estimators=["cnn"])
    assert_png(plots.learning_curves(frame, tmp_path / "curves.png", "t"))


@pytest.mark.parametrize("pvalue", [1.0, 0.001])
def test_cd_diagram(tmp_path, pvalue):
    names = ["cnn", "knn-hog", HOSTILE, "svm"]
    ranks = pd.Series([1.2, 2.5, 2.9, 3.4], index=names)
    matrix = np.full((4, 4), pvalue)
    np.fill_diagonal(matrix, 1.0)
    pvalues = pd.DataFrame(matrix, index=names[::-1], columns=names[::-1])  # any order
    assert_png(plots.cd_diagram(ranks, pvalues, tmp_path / "cd.png", f"CD {HOSTILE}"))


def test_cd_diagram_two_estimators(tmp_path):
    names = ["a", "b"]
    pvalues = pd.DataFrame([[1.0, 0.01], [0.01, 1.0]], index=names, columns=names)
    assert_png(plots.cd_diagram(pd.Series([1.0, 2.0], index=names), pvalues,
                                tmp_path / "cd.png", "t"))


def test_failed_save_leaves_no_temp_file(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(plots.os, "replace", boom)
    with pytest.raises(OSError):
        plots.bar_chart(["a"], [0.5], [0.4], [0.6], tmp_path / "bars.png", "t")
    assert list(tmp_path.iterdir()) == []
