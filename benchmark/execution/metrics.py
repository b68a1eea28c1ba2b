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


UNKNOWN_EXAMPLES = 5  # distinct unknown labels kept in a cell


def unknown_predictions(y_pred, train_labels):
    """{"count": test rows, "labels": up to UNKNOWN_EXAMPLES distinct ones as text} of the
    predictions that are none of the classes the estimator was trained on (a plug-in's made-up
    label, a NaN), or None when every prediction is one of them."""
    import numpy as np

    y_pred = np.asarray(y_pred).ravel()
    classes = np.unique(np.asarray(train_labels))
    try:
        known = np.isin(y_pred, classes)
    except TypeError:  # labels that do not compare with the predictions: compared as text
        known = np.isin(y_pred.astype(str), classes.astype(str))
    if known.all():
        return None
    labels = list(dict.fromkeys(y_pred[~known].astype(str).tolist()))
    return {"count": int((~known).sum()), "labels": labels[:UNKNOWN_EXAMPLES]}
