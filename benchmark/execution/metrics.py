"""The scores computed for every (dataset, estimator, fold) cell.

scikit-learn is imported when the first cell is scored, not with this module, so the command
line (which lists the metric names) starts without it.
"""

# name -> (column title, scikit-learn function, its keyword arguments)
METRICS = {
    "accuracy": ("accuracy", "accuracy_score", {}),
    "f1_macro": ("macro-F1", "f1_score", {"average": "macro", "zero_division": 0}),
    "f1_weighted": ("weighted-F1", "f1_score", {"average": "weighted", "zero_division": 0}),
    "balanced_accuracy": ("balanced accuracy", "balanced_accuracy_score", {}),
}


def score_predictions(y_true, y_pred):
    from sklearn import metrics

    return {name: float(getattr(metrics, function)(y_true, y_pred, **kwargs))
            for name, (_, function, kwargs) in METRICS.items()}
