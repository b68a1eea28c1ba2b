"""Leaderboards: per-fold scores -> per-dataset and overall tables (data, then text)."""

import pandas as pd
from tabulate import tabulate

from .metrics import METRICS

SCORE_COLUMNS = list(METRICS)


def scores_frame(cells):
    """One row per (dataset, estimator, fold) cell, failed cells included."""
    rows = []
    for c in cells:
        row = {
            "dataset": c.dataset,
            "estimator": c.estimator,
            "fold": c.fold,
            "status": c.status,
            **{m: c.scores.get(m) for m in SCORE_COLUMNS},
            "fit_seconds": c.fit_seconds,
            "predict_seconds": c.predict_seconds,
            "feature_seconds": c.feature_seconds,
            "feature_source": c.feature_source,
            "n_train": c.n_train,
            "n_test": c.n_test,
            "error": c.error,
        }
        rows.append(row)
    columns = ["dataset", "estimator", "fold", "status", *SCORE_COLUMNS, "fit_seconds",
               "predict_seconds", "feature_seconds", "feature_source", "n_train", "n_test", "error"]
    return pd.DataFrame(rows, columns=columns)


def history_frame(cells):
    """Per-epoch training curves in long form: dataset, estimator, fold, epoch, metric, value."""
    rows = [
        (c.dataset, c.estimator, c.fold, epoch, metric, value)
        for c in cells
        if c.history
        for metric, values in c.history.items()
        for epoch, value in enumerate(values, start=1)
    ]
    return pd.DataFrame(rows, columns=["dataset", "estimator", "fold", "epoch", "metric", "value"])


def summary_frame(scores):
    """One row per (dataset, estimator): mean and std over the successful folds."""
    ok = scores[scores["status"] == "ok"]
    grouped = ok.groupby(["dataset", "estimator"], sort=False)
    summary = grouped[SCORE_COLUMNS].agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    summary["fit_seconds"] = grouped["fit_seconds"].mean()
    summary["predict_seconds"] = grouped["predict_seconds"].mean()
    summary["feature_seconds"] = grouped["feature_seconds"].first()
    summary["folds_ok"] = grouped.size()
    summary = summary.reset_index()
    totals = scores.groupby(["dataset", "estimator"], sort=False).size().rename("folds").reset_index()
    summary = totals.merge(summary, on=["dataset", "estimator"], how="left")
    summary["folds_ok"] = summary["folds_ok"].fillna(0).astype(int)
    summary["rank"] = summary.groupby("dataset")["f1_macro_mean"].rank(ascending=False, method="min")
    return summary.sort_values(["dataset", "f1_macro_mean"], ascending=[True, False], kind="stable")


def overall_frame(summary):
    """Estimators by mean rank (by macro-F1) over the datasets where all their folds ran."""
    complete = summary[summary["folds_ok"] == summary["folds"]].copy()
    complete["rank"] = complete.groupby("dataset")["f1_macro_mean"].rank(ascending=False, method="average")
    overall = complete.groupby("estimator").agg(
        mean_rank=("rank", "mean"),
        datasets=("dataset", "nunique"),
        f1_macro=("f1_macro_mean", "mean"),
        accuracy=("accuracy_mean", "mean"),
        fit_seconds=("fit_seconds", "mean"),
    )
    return overall.reset_index().sort_values(["mean_rank", "f1_macro"], ascending=[True, False])


def _pm(mean, std):
    if pd.isna(mean):
        return "failed"
    return f"{mean:.3f} ± {0.0 if pd.isna(std) else std:.3f}"


def _seconds(value):
    return "" if pd.isna(value) else f"{value:.2f}"


def dataset_table(summary, dataset, escape=str):
    """Rows (list of lists) and headers of one dataset's leaderboard."""
    rows = []
    for _, r in summary[summary["dataset"] == dataset].iterrows():
        folds = f"{r['folds_ok']}/{r['folds']}"
        rows.append([
            "" if pd.isna(r["rank"]) else int(r["rank"]),
            escape(r["estimator"]),
            _pm(r["accuracy_mean"], r["accuracy_std"]),
            _pm(r["f1_macro_mean"], r["f1_macro_std"]),
            _seconds(r["fit_seconds"]),
            _seconds(r["predict_seconds"]),
            _seconds(r["feature_seconds"]),
            folds,
        ])
    headers = ["rank", "estimator", "accuracy", "macro-F1", "fit s", "predict s", "feature s", "folds"]
    return rows, headers


def overall_table(overall, escape=str):
    rows = [
        [i + 1, escape(r["estimator"]), f"{r['mean_rank']:.2f}", int(r["datasets"]),
         f"{r['f1_macro']:.3f}", f"{r['accuracy']:.3f}", _seconds(r["fit_seconds"])]
        for i, (_, r) in enumerate(overall.iterrows())
    ]
    headers = ["#", "estimator", "mean rank", "datasets", "mean macro-F1", "mean accuracy", "fit s"]
    return rows, headers


def render(summary, overall, tablefmt="simple", escape=str, heading=lambda text: text):
    """Every leaderboard as text: one table per dataset, then the overall one."""
    parts = []
    for dataset in summary["dataset"].drop_duplicates():
        rows, headers = dataset_table(summary, dataset, escape)
        parts.append(heading(f"Dataset: {escape(dataset)}"))
        parts.append(tabulate(rows, headers, tablefmt=tablefmt, disable_numparse=True))
    if len(overall):
        rows, headers = overall_table(overall, escape)
        parts.append(heading("Overall (mean rank by macro-F1 across datasets)"))
        parts.append(tabulate(rows, headers, tablefmt=tablefmt, disable_numparse=True))
    return "\n\n".join(parts) + "\n"


def describe_sampling(sampling):
    """How a dataset was evaluated, in one line: protocol, split sizes and sample counts."""
    if sampling["protocol"] == "cv":
        how = f"{sampling['splits']}-fold cross-validation"
    else:
        train = "/".join(map(str, sampling["train_images"]))
        test = "/".join(map(str, sampling["test_images"]))
        how = f"official split, {sampling['splits']} repeat(s): train {train}, test {test}"
    text = f"{how}; {sampling['used_images']} of {sampling['available_images']} images used"
    if sampling["max_per_class"]:
        text += f" (at most {sampling['max_per_class']} per class)"
    return text
