"""The scores computed for every (dataset, estimator, fold) cell."""

from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

# name -> (column title, function of (y_true, y_pred))
METRICS = {
    "accuracy": ("accuracy", accuracy_score),
    "f1_macro": ("macro-F1", lambda t, p: f1_score(t, p, average="macro", zero_division=0)),
    "f1_weighted": ("weighted-F1", lambda t, p: f1_score(t, p, average="weighted", zero_division=0)),
    "balanced_accuracy": ("balanced accuracy", balanced_accuracy_score),
}


def score_predictions(y_true, y_pred):
    return {name: float(fn(y_true, y_pred)) for name, (_, fn) in METRICS.items()}
