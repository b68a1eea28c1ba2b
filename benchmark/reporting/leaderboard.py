"""Leaderboards: per-fold scores -> per-dataset and overall tables (data, then text)."""

import json

import numpy as np
import pandas as pd
from tabulate import tabulate

from benchmark.execution.metrics import METRICS
from benchmark.reporting.calibration import PROBABILISTIC, TERMINAL_PROBABILISTIC, shown_metrics
from benchmark.reporting.stats import ALPHA, compare_to_best, fold_interval

SCORE_COLUMNS = list(METRICS)


def scores_frame(cells, probabilistic=None):
    """One row per (dataset, estimator, fold, training size) cell, failed cells included; with
    the probabilistic scores of `probabilistic` (calibration.Calibration.scores; NaN for a cell
    it has no row of: no probabilities). `train_size`: the most training images per class the
    cell was fitted on (`run --train-sizes`), empty (NA) for the whole training part."""
    rows = []
    for c in cells:
        row = {
            "dataset": c.dataset,
            "estimator": c.estimator,
            "fold": c.fold,
            "train_size": c.train_size,
            "status": c.status,
            **{m: c.scores.get(m) for m in SCORE_COLUMNS},
            "fit_seconds": c.fit_seconds,
            "predict_seconds": c.predict_seconds,
            "proba_seconds": c.proba_seconds,
            "feature_seconds": c.feature_seconds,
            "feature_source": c.feature_source,
            "n_train": c.n_train,
            "n_test": c.n_test,
            "error": c.error,
            **_diagnosis_columns(c),
            # run --tune: the parameters chosen in this fold (JSON), the search's seconds and
            # the untuned defaults' macro-F1 on the same test fold
            "tuned_params": json.dumps(c.tuning.get("params")) if c.tuning else None,
            "tuning_seconds": c.tuning.get("seconds") if c.tuning else None,
            "default_f1_macro": (c.default_scores or {}).get("f1_macro"),
        }
        rows.append(row)
    columns = ["dataset", "estimator", "fold", "train_size", "status", *SCORE_COLUMNS, "fit_seconds",
               "predict_seconds", "proba_seconds", "feature_seconds", "feature_source", "n_train",
               "n_test", "error", *DIAGNOSIS_COLUMNS, "tuned_params", "tuning_seconds",
               "default_f1_macro"]
    frame = pd.DataFrame(rows, columns=columns).astype({"train_size": "Int64"})
    keys = ["dataset", "estimator", "fold", "train_size"]
    if probabilistic is None:
        probabilistic = pd.DataFrame(columns=[*keys, *PROBABILISTIC])
    probabilistic = probabilistic.astype({"train_size": "Int64", **{m: float for m in PROBABILISTIC}})
    frame = frame.merge(probabilistic, on=keys, how="left")
    at = columns.index(SCORE_COLUMNS[-1]) + 1  # the probabilistic scores after the others
    return frame[columns[:at] + list(PROBABILISTIC) + columns[at:]]


DIAGNOSIS_COLUMNS = ["undertrained", "train_accuracy", "epochs", "batch_size", "steps",
                     "warnings", "diagnosis"]


def _diagnosis_columns(cell):
    """A cell's training diagnostics (benchmark.execution.cell_output.diagnose_fit) as scores.csv columns."""
    d = cell.diagnostics if isinstance(cell.diagnostics, dict) else {}
    training = d.get("training") if isinstance(d.get("training"), dict) else {}
    return {
        "undertrained": bool(d.get("undertrained")) if d else None,
        "train_accuracy": training.get("train_accuracy"),
        "epochs": training.get("epochs_run"),
        "batch_size": training.get("batch_size"),
        "steps": training.get("steps"),
        "warnings": " | ".join(d.get("warnings") or []),
        "diagnosis": " | ".join(d.get("reasons") or []),
    }


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


def summary_frame(scores, alpha=ALPHA):
    """One row per (dataset, estimator) over its successful folds.

    For each metric: mean, std and a 95% confidence interval (`stats.fold_interval`); for each
    probabilistic score (calibration.PROBABILISTIC) mean and std over the folds that stored
    probabilities, and their number `proba_folds`; mean fit and predict seconds; `rank` by mean macro-F1 within the dataset; and the comparison
    with the dataset's best estimator on the same folds (`stats.compare_to_best`: corrected
    resampled t-test, Holm-adjusted): `p_vs_best`, `worse_than_best`, `test_note`.
    """
    rows = []
    for (dataset, estimator), group in scores.groupby(["dataset", "estimator"], sort=False):
        ok = group[group["status"] == "ok"]
        row = {"dataset": dataset, "estimator": estimator, "folds": len(group), "folds_ok": len(ok),
               "folds_missing": int((group["status"] == "missing").sum())}
        n_train, n_test = ok["n_train"].mean(), ok["n_test"].mean()
        for metric in SCORE_COLUMNS:
            values = ok[metric].to_numpy(dtype=float)
            interval = fold_interval(values, n_train, n_test) if len(values) else None
            for stat in ("mean", "std", "low", "high"):
                row[f"{metric}_{stat}"] = getattr(interval, stat) if interval else np.nan
            # every score lies in [0, 1]; the t interval is symmetric and can overshoot
            row[f"{metric}_low"], row[f"{metric}_high"] = np.clip(
                [row[f"{metric}_low"], row[f"{metric}_high"]], 0.0, 1.0)
        with_proba = ok[ok["log_loss"].notna()] if "log_loss" in ok else ok.iloc[:0]
        row["proba_folds"] = len(with_proba)
        for metric in PROBABILISTIC:
            values = with_proba[metric].to_numpy(dtype=float) if len(with_proba) else np.array([])
            values = values[np.isfinite(values)]
            row[f"{metric}_mean"] = values.mean() if len(values) else np.nan
            row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else np.nan
        row["fit_seconds"] = ok["fit_seconds"].mean()
        row["predict_seconds"] = ok["predict_seconds"].mean()
        row["feature_seconds"] = ok["feature_seconds"].iloc[0] if len(ok) else np.nan
        row["n_train"], row["n_test"] = n_train, n_test
        flagged = ok["undertrained"].fillna(False).astype(bool)
        row["undertrained_folds"] = int(flagged.sum())
        row["train_accuracy"] = ok["train_accuracy"].astype(float).mean()
        row["warned_folds"] = int((ok["warnings"].fillna("") != "").sum())
        rows.append(row)
    summary = pd.DataFrame(rows)
    if summary.empty:
        return summary
    summary = _underfit(summary)
    summary["training_note"] = summary.apply(training_note, axis=1)
    summary["rank"] = summary.groupby("dataset")["f1_macro_mean"].rank(ascending=False, method="min")
    ok = scores[scores["status"] == "ok"]
    tests = [
        compare_to_best(ok[ok["dataset"] == dataset], "f1_macro", alpha).assign(dataset=dataset)
        for dataset in ok["dataset"].drop_duplicates()
    ]
    if tests:
        tests = pd.concat(tests)[["dataset", "estimator", "is_best", "p_holm", "significant", "note"]]
        tests.columns = ["dataset", "estimator", "is_best", "p_vs_best", "worse_than_best", "test_note"]
        summary = summary.merge(tests, on=["dataset", "estimator"], how="left")
    else:
        summary = summary.assign(is_best=False, p_vs_best=np.nan, worse_than_best=False, test_note="")
    position = {name: i for i, name in enumerate(summary["dataset"].drop_duplicates())}
    summary["_position"] = summary["dataset"].map(position)  # datasets in run order
    summary = summary.sort_values(["_position", "f1_macro_mean"], ascending=[True, False], kind="stable")
    return summary.drop(columns="_position").reset_index(drop=True)


UNDERFIT_GAP = 0.10  # training accuracy this far below the dataset's best test accuracy


def _underfit(summary):
    """`underfit`: the estimator's mean training accuracy (CNNs record it) is more than
    UNDERFIT_GAP below the best mean test accuracy any estimator reached on the dataset: it
    did not even fit its training images as well as another model predicts unseen ones."""
    best = summary.groupby("dataset")["accuracy_mean"].transform("max")
    summary["best_accuracy"] = best
    summary["underfit"] = (summary["train_accuracy"] < best - UNDERFIT_GAP).fillna(False)
    return summary


def training_note(row):
    """One line on how well an estimator trained on a dataset, "" when nothing was flagged."""
    parts = []
    if row["undertrained_folds"]:
        parts.append(f"undertrained on {row['undertrained_folds']}/{row['folds_ok']} folds")
    if row.get("underfit"):
        parts.append(f"training accuracy {row['train_accuracy']:.3f} far below the best test "
                     f"accuracy here ({row['best_accuracy']:.3f})")
    if row["warned_folds"]:
        parts.append(f"warnings on {row['warned_folds']}/{row['folds_ok']} folds")
    return "; ".join(parts)


def is_flagged(row):
    """Whether the leaderboard marks the row: a fold undertrained, or underfit."""
    return bool(row.get("undertrained_folds")) or bool(row.get("underfit"))


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
        pretrained_on=("pretrained_on", "first"),
    )
    return overall.reset_index().sort_values(["mean_rank", "f1_macro"], ascending=[True, False])


NOT_RUN = "not run yet"


def no_score(row):
    """What a leaderboard shows for an estimator without a score: "not run yet" when none of
    its cells has a result file (a run in progress, or stopped before them), else "failed"."""
    missing = row.get("folds_missing")
    return NOT_RUN if missing is not None and missing == row["folds"] else "failed"


def _pm(row, metric):
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    if pd.isna(mean):
        return no_score(row)
    return f"{mean:.3f} ± {0.0 if pd.isna(std) else std:.3f}"


def probability_text(row, metric):
    """A leaderboard cell: fold mean ± std, "(k/n folds)" when only some folds have
    probabilities, "n/a" when none has, "failed" when the estimator failed every fold ("not
    run yet" when none of its folds has a result)."""
    if pd.isna(row.get("f1_macro_mean")):
        return no_score(row)
    mean = row.get(f"{metric}_mean")
    if mean is None or pd.isna(mean):
        return "n/a"
    std = row.get(f"{metric}_std")
    text = f"{mean:.3f} ± {0 if pd.isna(std) else std:.3f}"
    if row["proba_folds"] < row["folds_ok"]:
        text += f" ({int(row['proba_folds'])}/{int(row['folds_ok'])} folds)"
    return text


def seconds_text(value):
    return "" if pd.isna(value) else f"{value:.2f}"


TERMINAL_MARK = "(!)"  # after an estimator whose training looked unfinished (see is_flagged)


def dataset_table(summary, dataset, metrics=("accuracy", "f1_macro"), score=None, mark=None,
                  escape=str, probabilistic=TERMINAL_PROBABILISTIC, probability_score=None):
    """Rows (list of lists) and headers of one dataset's leaderboard: the terminal's, or with
    the report's `metrics`, `score(row, metric)` text, flag `mark` and Markdown `escape`, and
    its `probabilistic` scores with `probability_score(row, metric)` text (the terminal's:
    fold means alone, "n/a" without probabilities)."""
    score = score or _pm
    probability_score = probability_score or _mean_or_na
    probabilistic = shown_metrics(summary, dataset, probabilistic)
    mark = TERMINAL_MARK if mark is None else mark
    rows = []
    for _, r in summary[summary["dataset"] == dataset].iterrows():
        rows.append([
            "" if pd.isna(r["rank"]) else int(r["rank"]),
            escape(marked_name(r)) + (f" {mark}" if is_flagged(r) else ""),
            *(score(r, m) for m in metrics),
            *(probability_score(r, m) for m in probabilistic),
            seconds_text(r["fit_seconds"]),
            seconds_text(r["predict_seconds"]),
            seconds_text(r["feature_seconds"]),
            f"{r['folds_ok']}/{r['folds']}",
            escape(versus_best(r)),
        ])
    headers = ["rank", "estimator", *(METRICS[m][0] for m in metrics),
               *(PROBABILISTIC[m] for m in probabilistic), "fit s", "predict s", "feature s",
               "folds", "vs best"]
    return rows, headers


def marked_name(row):
    """The estimator's name, with "(pretrained on ImageNet-1k)" for one that starts from a
    network trained on external data."""
    pretrained_on = row.get("pretrained_on")
    return f"{row['estimator']} (pretrained on {pretrained_on})" if isinstance(pretrained_on, str) else row["estimator"]


def _mean_or_na(row, metric):
    if pd.isna(row["f1_macro_mean"]):
        return no_score(row)
    mean = row.get(f"{metric}_mean")
    return "n/a" if mean is None or pd.isna(mean) else f"{mean:.3f}"


def versus_best(row):
    """"best", "worse (p 0.003)" or "not sig. (p 0.41)" from a summary row (Holm-adjusted p)."""
    if pd.isna(row.get("f1_macro_mean")):
        return ""
    if row.get("is_best") == True:  # noqa: E712 (NaN for cells without a test, numpy bools)
        return "best"
    p = row.get("p_vs_best")
    if p is None or pd.isna(p):
        return row.get("test_note") or "no test"
    return f"{'worse' if row.get('worse_than_best') == True else 'not sig.'} (p {p:.2g})"  # noqa: E712


def overall_table(overall):
    rows = [
        [i + 1, marked_name(r), f"{r['mean_rank']:.2f}", int(r["datasets"]),
         f"{r['f1_macro']:.3f}", f"{r['accuracy']:.3f}", seconds_text(r["fit_seconds"])]
        for i, (_, r) in enumerate(overall.iterrows())
    ]
    headers = ["#", "estimator", "mean rank", "datasets", "mean macro-F1", "mean accuracy", "fit s"]
    return rows, headers


def render(summary, overall):
    """Every leaderboard as terminal text: one table per dataset, then the overall one."""
    parts = []
    for dataset in summary["dataset"].drop_duplicates():
        rows, headers = dataset_table(summary, dataset)
        parts.append(f"Dataset: {dataset}{size_title(summary, dataset)}")
        parts.append(tabulate(rows, headers, disable_numparse=True))
    if "undertrained_folds" in summary and summary.apply(is_flagged, axis=1).any():
        parts.append(f"{TERMINAL_MARK} training looked unfinished (still improving, diverged, stopped near "
                     "chance, or far below the best model): see Training diagnostics in report.md")
    if len(overall):
        rows, headers = overall_table(overall)
        parts.append(f"Overall (mean rank by macro-F1 across datasets){sized_datasets_note(summary)}")
        parts.append(tabulate(rows, headers, disable_numparse=True))
    return "\n\n".join(parts) + "\n"


def terminal_leaderboards(analysis):
    """What the terminal prints of an Analysis after a run or `report`: every leaderboard
    (render) and a blank line, or nothing when no cell has a result."""
    if not len(analysis.summary):
        return ""
    return render(analysis.summary, analysis.overall) + "\n"


def ranked_train_size(summary, dataset):
    """The most training images per class `dataset`'s leaderboard rows were trained on (the
    summary's `train_size`), or None for the whole training part."""
    if "train_size" not in summary:
        return None
    sizes = summary.loc[summary["dataset"] == dataset, "train_size"].dropna()
    return int(sizes.iloc[0]) if len(sizes) else None


def size_title(summary, dataset):
    """" — trained on at most N images per class" for a leaderboard of `run --train-sizes`
    cells fitted on at most N images per class, "" for one of the whole training part."""
    size = ranked_train_size(summary, dataset)
    return "" if size is None else f" — trained on at most {size} images per class"


def sized_datasets_note(summary):
    """"; models trained on at most N images per class (digits), ..." for the datasets whose
    leaderboards rank cells of a training size, "" when none does."""
    sized = {}
    for dataset in summary["dataset"].drop_duplicates() if len(summary) else []:
        size = ranked_train_size(summary, dataset)
        if size is not None:
            sized.setdefault(size, []).append(str(dataset))
    if not sized:
        return ""
    return "; models trained on at most " + ", ".join(
        f"{size} images per class ({', '.join(names)})" for size, names in sized.items())


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
    if sampling.get("dedupe"):
        d = sampling["dedupe"]
        text += (f"; --dedupe dropped {d['dropped_images']} near-duplicate(s) of "
                 f"{d['clusters']} cluster(s) before splitting")
        if d.get("cross_class_conflicts"):
            text += f" ({d['cross_class_conflicts']} of them under another class than the image kept)"
    if sampling.get("grouping"):
        text += f"; {describe_grouping(sampling['grouping'])}"
    if sampling.get("note"):
        text += f"; {sampling['note']}"
    return text


GROUP_CLASSES_SHOWN = 6  # classes listed with their group counts; more are summarised


def describe_grouping(grouping):
    """What the splits group images by and how many groups each class has, compactly:
    "grouped by regex '...': 120 groups (cat 40, dog 80)". With many classes only the range
    and the fewest-grouped ones are named: they limit the folds."""
    per_class = grouping.get("groups_per_class") or {}
    if len(per_class) <= GROUP_CLASSES_SHOWN:
        classes = ", ".join(f"{c} {n}" for c, n in per_class.items())
    else:
        fewest = sorted(per_class.items(), key=lambda item: item[1])[:3]
        classes = (f"{min(per_class.values())} to {max(per_class.values())} per class; fewest "
                   + ", ".join(f"{c} {n}" for c, n in fewest))
    text = f"grouped by {grouping['by']}: {grouping['groups']} groups ({classes})"
    if grouping.get("unmatched_own_group"):
        text += f", {grouping['unmatched_own_group']} unmatched file(s) each its own group"
    listed_skipped = grouping.get("listed_skipped") or []
    if listed_skipped:
        more = f", and {len(listed_skipped) - 3} more" if len(listed_skipped) > 3 else ""
        text += (f"; {len(listed_skipped)} file(s) of the groups file skipped as unreadable: "
                 f"{', '.join(listed_skipped[:3])}{more}")
    return text
