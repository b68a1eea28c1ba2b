"""report.md, its plots and the CSVs of a run, regenerated from the stored cells alone.

`write_report(run_dir)` reads run.json and cells/ (see `benchmark.reporting.results`), recomputes every
score, table and test from the out-of-fold predictions and per-fold scores, draws the plots and
writes `report.md`, `scores.csv`, `summary.csv`, `history.csv`, `per_class.csv` and `plots/*.png`. Nothing is
refitted, so `python -m benchmark report RUN` gives the same report as the run itself.
"""

import math
import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from features.cache import atomic_write

from benchmark.reporting.calibration import (
    PROBABILISTIC, calibrate, calibration_section, reliability_jobs,
)
from benchmark.reporting.leaderboard import (
    SCORE_COLUMNS, dataset_table, describe_sampling, history_frame, is_flagged, no_score,
    overall_frame, probability_text, ranked_train_size, scores_frame, size_title,
    sized_datasets_note, summary_frame,
)
from benchmark.reporting.markdown import MARK
from benchmark.reporting.markdown import escape_markdown as esc
from benchmark.reporting.markdown import link_path, table
from benchmark.reporting.results import load_run, plan_order, ranked_size
from benchmark.execution.cell_record import slug
from benchmark.execution.recompute import recomputed_text
from benchmark.execution.store import RunStore
from benchmark.reporting.stats import ALPHA, MIN_FOLDS, Ranking, rank_estimators
from benchmark.reporting.near_duplicates import (
    dedupe_line, dedupe_problems, near_duplicate_cell, near_duplicate_problems,
)
from benchmark.reporting.per_class import CSV_FILE, per_class_frame, per_class_section
from benchmark.reporting.training_sizes import plot_args, size_frame, size_section
from benchmark.reporting.tuning import tuning_fact, tuning_problems, tuning_section



@dataclass
class Report:
    path: Path
    summary: pd.DataFrame
    overall: pd.DataFrame
    ranking: Ranking  # stats.rank_estimators: what the ranking section and the CD diagram show
    problems: list  # one line each: failed, missing or unreadable cells, skipped datasets
    unreadable: list = field(default_factory=list)  # [(path, reason)] of files that could not be read


@dataclass
class Analysis:
    """What a report says about a run, computed from its cells (no file written)."""

    scores: pd.DataFrame  # one row per (dataset, estimator, fold), absent cells included
    summary: pd.DataFrame  # one row per (dataset, estimator): means, intervals, ranks, tests
    overall: pd.DataFrame  # one row per estimator: mean rank across datasets
    history: pd.DataFrame  # the CNNs' per-epoch curves
    ranking: Ranking  # the cross-dataset statistics (Friedman, Nemenyi)
    problems: list  # one line each: failed, missing or unreadable cells, skipped datasets
    calibration: object = None  # calibration.Calibration: probabilistic scores, reliability bins
    # `run --train-sizes`: summary rows (as `summary`'s) of the training sizes the leaderboards
    # do not rank, one per (dataset, estimator, size); empty otherwise. `scores` holds their folds
    size_summary: pd.DataFrame = field(default_factory=pd.DataFrame)

    def every_summary(self):
        """`summary` and `size_summary` together, as summary.csv holds them: datasets in run
        order, then the training sizes (the whole training part last), then best first."""
        return _by_size(pd.concat([self.summary, self.size_summary], ignore_index=True), "rank")


def analyse(stored, alpha=ALPHA):
    """The Analysis of a StoredRun (benchmark.reporting.results)."""
    absent = stored.absent()
    order = plan_order(stored.meta)
    cells = sorted(stored.cells + absent, key=lambda c: (*order(c.dataset, c.estimator), c.fold))
    calibration = calibrate(stored)
    scores = scores_frame(cells, calibration.scores)
    summary = _described(summary_frame(scores, alpha), stored)
    overall = overall_frame(summary) if len(summary) else pd.DataFrame()
    size_scores, size_summary = _other_sizes(stored, alpha)
    if len(size_scores):
        scores = _by_size(pd.concat([scores, size_scores], ignore_index=True), "fold")
    return Analysis(scores, summary, overall, history_frame(stored.cells), rank_estimators(summary, alpha),
                    _problems(stored, absent) + calibration.problems, calibration, size_summary)


def _described(summary, stored):
    """The summary with each estimator's family and the training size of each row's cells
    (`train_size`: at most that many images per class; NA: the whole training part)."""
    if not len(summary):
        return summary
    at = summary.columns.get_loc("estimator") + 1
    summary.insert(at, "family", summary["estimator"].map(stored.family))
    plan = stored.meta.get("plan") or {}
    sizes = summary["dataset"].map(lambda name: ranked_size(plan.get(name) or {}))
    summary.insert(at + 1, "train_size", pd.array(sizes.tolist(), dtype="Int64"))
    return summary


def _other_sizes(stored, alpha):
    """(scores, summary) frames of the `run --train-sizes` cells whose size the leaderboards do
    not rank: each size summarised (ranked, tested against its best) on its own."""
    plan = stored.meta.get("plan") or {}
    others = {}
    for c in stored.sized_cells or []:
        if c.train_size != ranked_size(plan.get(c.dataset) or {}):
            others.setdefault(c.train_size, []).append(c)
    scores, summaries = [], []
    for size, cells in sorted(others.items(), key=lambda item: (item[0] is None, item[0] or 0)):
        frame = scores_frame(cells, calibrate(replace(stored, cells=cells)).scores)
        scores.append(frame)
        summary = summary_frame(frame, alpha)
        if len(summary):
            summaries.append(_described(summary, stored).assign(
                train_size=pd.array([size] * len(summary), dtype="Int64")))
    return (pd.concat(scores, ignore_index=True) if scores else pd.DataFrame(),
            pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame())


def _by_size(frame, then):
    """`frame` sorted by dataset (in the order it first appears), training size (the whole
    training part last), then by `then` ("fold": estimators in order; "rank": best first)."""
    if not len(frame):
        return frame
    position = {name: i for i, name in enumerate(frame["dataset"].drop_duplicates())}
    estimators = {name: i for i, name in enumerate(frame["estimator"].drop_duplicates())}
    keys = pd.DataFrame({"dataset": frame["dataset"].map(position),
                         "size": frame["train_size"].astype("Float64").fillna(float("inf")),
                         "estimator": frame["estimator"].map(estimators), "then": frame[then]})
    by = ["dataset", "size", "estimator", "then"] if then == "fold" else ["dataset", "size", "then"]
    order = keys.astype(float).sort_values(by, kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def write_report(run_dir, alpha=ALPHA, n_jobs=1, mapper=None):
    """Regenerate every derived file of `run_dir`; return the Report (frames for the terminal).

    `n_jobs` processes, or `mapper` (see _draw_plots), draw the plots."""
    stored = load_run(run_dir)
    store = RunStore(run_dir)
    run_dir = store.path
    result = analyse(stored, alpha)
    summary, history, ranking, problems = result.summary, result.history, result.ranking, result.problems
    _write_csv(store.output("scores.csv"), result.scores)
    _write_csv(store.output("summary.csv"), result.every_summary())
    if len(history):
        _write_csv(store.output("history.csv"), history)
    per_class = per_class_frame(stored, summary)
    if len(per_class):
        _write_csv(store.output(CSV_FILE), per_class)
    plots = _draw_plots(run_dir, stored, summary, history, ranking, alpha, n_jobs, mapper,
                        result.calibration)
    text = _markdown(stored, summary, result.overall, ranking, plots, problems, alpha)
    path = store.report_file
    atomic_write(path, lambda f: f.write(text.encode()))
    return Report(path, summary, result.overall, ranking, problems, list(stored.unreadable))


def figures(stored, result, alpha=ALPHA):
    """{(dataset, kind): matplotlib Figure} of every plot the report draws ("" for the
    cross-dataset ones; kinds: f1, pareto, confusion, curves, reliability, cd), without
    writing files."""
    calibration = getattr(result, "calibration", None) or calibrate(stored)
    jobs, _ = _plot_jobs(None, stored, result.summary, result.history, result.ranking, alpha,
                         calibration)
    drawn = {}
    for dataset, kind, function, args in jobs:
        fig = _draw(function, args)
        drawn[(dataset, kind)] = fig[0] if isinstance(fig, tuple) else fig
    return drawn


def _write_csv(path, frame):
    atomic_write(path, lambda f: f.write(frame.to_csv(index=False).encode()))


# --- plots ----------------------------------------------------------------------------------

def _draw_plots(run_dir, stored, summary, history, ranking, alpha, n_jobs=1, mapper=None,
                calibration=None):
    """{dataset or "": {kind: path relative to run_dir}}; old PNGs are removed first.

    The plots are independent, so with `n_jobs` > 1 they are drawn in parallel (joblib
    processes: matplotlib holds the GIL while it renders), or by `mapper` (a function of a list
    of (function, args) returning an iterator over their results, or None to decline) - e.g. a local Dask
    cluster's idle workers.
    """
    from joblib import delayed

    from benchmark.execution.worker_pool import parallel

    # absolute: the workers drawing them may have another working directory (see running_dir)
    folder = RunStore(run_dir).plots_dir.absolute()
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    jobs, drawn = _plot_jobs(folder, stored, summary, history, ranking, alpha, calibration)
    paths = None
    try:
        paths = mapper([(_draw, (f, args)) for _, _, f, args in jobs]) if mapper else None
        paths = None if paths is None else list(paths)
        if paths is None:
            paths = parallel(n_jobs)(delayed(_draw)(f, args) for _, _, f, args in jobs)
    except Exception:  # a worker killed while drawing (or a broken pool): draw them here
        paths = [_draw(f, args) for _, _, f, args in jobs]
    for (dataset, kind, _, _), path in zip(jobs, paths):
        path = path[0] if isinstance(path, tuple) else path  # pareto_plot: (path, front)
        drawn.setdefault(dataset, {})[kind] = path.relative_to(folder.parent)
    return drawn


def _plot_jobs(folder, stored, summary, history, ranking, alpha, calibration=None):
    """([(dataset, kind, plots function, args)], {dataset: {"confusion_of": estimator}}) of
    every plot; each is written into `folder`, or returned as a figure when it is None."""

    def at(name):
        return None if folder is None else folder / name

    jobs, drawn = [], {}  # jobs: (dataset, kind, function, args)
    for dataset in summary["dataset"].drop_duplicates() if len(summary) else []:
        rows = summary[(summary["dataset"] == dataset) & summary["f1_macro_mean"].notna()]
        if rows.empty:
            continue
        name = slug(dataset)
        jobs.append((dataset, "f1", "bar_chart", (
            list(rows["estimator"]), list(rows["f1_macro_mean"]), list(rows["f1_macro_low"]),
            list(rows["f1_macro_high"]), at(f"{name}-macro-f1.png"),
            f"{dataset}: macro-F1 (mean, 95% CI over folds)")))
        cost = rows["fit_seconds"] + rows["feature_seconds"].fillna(0)
        jobs.append((dataset, "pareto", "pareto_plot", (
            list(rows["estimator"]), list(cost), list(rows["f1_macro_mean"]),
            at(f"{name}-pareto.png"), f"{dataset}: macro-F1 vs training cost (fit s + feature s)")))
        best = rows.iloc[0]["estimator"]
        cells = [c for c in stored.cells if c.dataset == dataset and c.estimator == best
                 and c.status == "ok" and c.y_true is not None]
        if cells:
            y_true = [y for c in cells for y in c.y_true]
            y_pred = [y for c in cells for y in c.y_pred]
            jobs.append((dataset, "confusion", "confusion_matrix_plot", (
                y_true, y_pred, _class_order(stored, dataset, y_true, y_pred),
                at(f"{name}-confusion.png"),
                f"{dataset}: {best}, out-of-fold predictions of {len(cells)} fold(s)")))
            drawn.setdefault(dataset, {})["confusion_of"] = best
        sizes = size_frame(stored, dataset)
        if len(sizes):
            jobs.append((dataset, "sizes", "training_size_plot", (
                plot_args(sizes), at(f"{name}-training-sizes.png"),
                f"{dataset}: macro-F1 by training images per class")))
        curves = history[history["dataset"] == dataset] if len(history) else history
        if len(curves):
            jobs.append((dataset, "curves", "learning_curves", (
                curves, at(f"{name}-learning-curves.png"),
                f"{dataset}: CNN learning curves (mean over folds; band: min-max)")))
    jobs += reliability_jobs(summary, calibration, at)
    if ranking.pvalues is not None:
        jobs.append(("", "cd", "cd_diagram", (
            ranking.friedman.mean_ranks, ranking.pvalues, at("critical-difference.png"),
            f"Mean rank by macro-F1 over {ranking.matrix.shape[0]} datasets (Nemenyi, alpha {alpha})",
            alpha)))
    return jobs, drawn


def _draw(function, args):
    """Draw one plot with `function`, the name of a benchmark.reporting.plots function. matplotlib is
    imported here, in the process that draws: with workers drawing, the main process never
    spends the 0.2-0.5 s of importing it."""
    from benchmark.reporting import plots

    return getattr(plots, function)(*args)


def _class_order(stored, dataset, y_true, y_pred):
    """The dataset's class names in its own order (from run.json), else sorted."""
    classes = ((stored.meta.get("datasets") or {}).get(dataset) or {}).get("classes") or {}
    names = [str(c) for c in classes]
    extra = sorted((set(map(str, y_true)) | set(map(str, y_pred))) - set(names))
    return names + extra


# --- Markdown -------------------------------------------------------------------------------

def _pm(row, metric):
    mean = row[f"{metric}_mean"]
    if pd.isna(mean):
        return no_score(row)
    std, low, high = row[f"{metric}_std"], row[f"{metric}_low"], row[f"{metric}_high"]
    text = f"{mean:.3f} ± {0 if pd.isna(std) else std:.3f}"
    if not pd.isna(low):
        text += f" [{low:.3f}, {high:.3f}]"
    return text


def _image(path, alt):
    return f"![{esc(alt)}]({link_path(path)})"


def _markdown(stored, summary, overall, ranking, plots, problems, alpha):
    meta = stored.meta
    config = meta.get("config") or {}
    lines = [f"# Benchmark report — run {esc(meta.get('run_id') or stored.run_dir.name)}", ""]
    lines += _run_facts(meta, stored.run_dir) + [""] + _command_block(meta.get("command"))
    lines += [
        "How to read it: every estimator on a dataset gets the same splits and images. Scores "
        "are mean ± standard deviation over folds, then a 95% confidence interval [low, high] "
        "for the mean, widened by the Nadeau-Bengio correction because folds share training "
        "images. *vs best* compares each estimator with the dataset's best (highest mean "
        "macro-F1) on the same folds with the corrected resampled t-test of Nadeau and Bengio "
        f"(2003), Holm-adjusted over the dataset's estimators: *worse* means p < {alpha}; *not "
        "sig.* means the data cannot tell them apart. Times are seconds per fold; *feature s* "
        "is the one-off cost of computing the estimator's features for the whole dataset.",
        "",
    ]
    datasets = meta.get("datasets") or {}
    if datasets:
        rows = []
        for name, s in datasets.items():
            sampling = describe_sampling(s["sampling"]) if "sampling" in s else "not run"
            rows.append([esc(name), s["images"], s["image_size"], len(s["classes"]), esc(sampling),
                         esc(near_duplicate_cell(s.get("near_duplicates"))),
                         esc(str(s.get("fingerprint", ""))[:12]), len(s.get("skipped_files", []))])
        lines += ["## Datasets", "", table(rows, ["dataset", "images used", "image size", "classes",
                                                  "protocol and sample", "test images with a near-duplicate in training",
                                                  "fingerprint", "skipped files"]), ""]
        described = [(n, s["description"]) for n, s in datasets.items() if s.get("description")]
        lines += [f"- {esc(n)}: {esc(d)}" for n, d in described] + ([""] if described else [])
        deduped = [dedupe_line(n, (s.get("sampling") or {}).get("dedupe")) for n, s in datasets.items()]
        deduped = [line for line in deduped if line]
        lines += deduped + ([""] if deduped else [])
    if len(summary):
        lines += _overview(summary, overall) + _ranking_text(ranking, plots, alpha, summary)
        for dataset in summary["dataset"].drop_duplicates():
            lines += _dataset_section(dataset, summary, plots.get(dataset, {}), config, stored)
    else:
        lines += ["No cell finished, so there is nothing to rank yet.", ""]
    if problems:
        lines += ["## Problems", ""] + [f"- {esc(p)}" for p in problems] + [""]
    if config.get("unavailable"):
        lines += ["## Datasets not run", "", "Named datasets that are not on this machine:", ""]
        lines += [f"- {esc(n)}: {esc(r)}" for n, r in config["unavailable"].items()] + [""]
    return "\n".join(lines)


def _run_facts(meta, run_dir=None):
    """The run's facts as Markdown list items (each escaped once; the command as code)."""
    config, machine = meta.get("config") or {}, meta.get("machine") or {}
    facts = []
    if config:
        facts.append(esc(f"seed {config.get('seed')}, protocol {config.get('protocol')}, "
                         f"{config.get('folds')} folds for cross-validation, {config.get('repeats')} "
                         "repeats for official splits"))
        for name, params in (config.get("params") or {}).items():  # --set / experiment file
            facts.append(esc(f"{name} with " + ", ".join(f"{k}={v!r}" for k, v in params.items())))
        if config.get("experiment"):
            facts.append(esc(f"experiment file {config['experiment']}"))
        facts.append(esc(tuning_fact(config)))
    if machine:
        gpus = ", ".join(machine.get("gpus") or []) or "no GPU"
        facts.append(esc(f"{machine.get('cpu')} ({machine.get('cpu_count')} cores), {gpus}"))
    recomputed = meta.get("recomputed") or {}
    if meta.get("reused_cells") or recomputed.get("count"):
        reruns = f"{meta.get('reused_cells') or 0} stored cell(s) reused"
        line = recomputed_text(recomputed.get("count"), recomputed.get("reasons") or {})
        facts.append(esc(reruns + (f"; {line}" if line else "")))
    libraries = meta.get("libraries") or {}
    if libraries:
        facts.append(esc(", ".join(f"{k} {v}" for k, v in libraries.items())))
    project = meta.get("project")
    if project:
        facts.append(esc(f"commit {project['commit'][:12]}"
                         f"{' (with local changes)' if project['dirty'] else ''}"))
    status = meta.get("status")
    if status == "running" and run_dir is not None and not RunStore(run_dir).in_use():
        status = "stopped"  # run.json says running, but no process holds the run: it was killed
        facts.append(f"**status: {status}** (its process ended without finishing - killed, or the "
                     f"machine stopped; `python -m benchmark run --resume` finishes it; see Problems)")
    elif status and status != "finished":
        facts.append(f"**status: {esc(status)}** (the run did not finish; see Problems)")
    return [f"- {f}" for f in facts]


def _command_block(command):
    """The command that ran as a fenced code block, ready to paste into a POSIX shell: the
    program as recorded ("python -m benchmark"), then each argument `shlex.quote`d, so that
    `shlex.split` gives the arguments back exactly (spaces, quotes, `$`, newlines, unicode).
    The fence is longer than any run of backticks in the command, so none can close it."""
    if not command:
        return []
    text = " ".join([str(command[0])] + [shlex.quote(str(part)) for part in command[1:]])
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return ["Command:", "", fence, text, fence, ""]


def _overview(summary, overall):
    """Estimators x datasets, mean macro-F1, the best of each dataset in bold."""
    datasets = list(summary["dataset"].drop_duplicates())
    order = list(overall["estimator"]) if len(overall) else []
    order += [e for e in summary["estimator"].drop_duplicates() if e not in order]
    ranks = dict(zip(overall["estimator"], overall["mean_rank"])) if len(overall) else {}
    best = summary[summary["rank"] == 1].groupby("dataset")["estimator"].apply(set).to_dict()
    rows = []
    for estimator in order:
        row = [esc(estimator), f"{ranks[estimator]:.2f}" if estimator in ranks else ""]
        for dataset in datasets:
            hit = summary[(summary["dataset"] == dataset) & (summary["estimator"] == estimator)]
            value = hit["f1_macro_mean"].iloc[0] if len(hit) else math.nan
            cell = "" if not len(hit) else no_score(hit.iloc[0]) if pd.isna(value) else f"{value:.3f}"
            if len(hit) and is_flagged(hit.iloc[0]):
                cell += f" {MARK}"
            row.append(f"**{cell}**" if estimator in best.get(dataset, ()) else cell)
        rows.append(row)
    return ["## Overview: macro-F1", "",
            f"Mean macro-F1 over folds; the best estimator of each dataset in bold; rows by mean rank; "
            f"{MARK}: training looked unfinished on that dataset (see its Training diagnostics)"
            f"{esc(sized_datasets_note(summary))}.",
            "", table(rows, ["estimator", "mean rank", *map(esc, datasets)]), ""]


def _ranking_text(ranking, plots, alpha, summary):
    lines = ["## Overall ranking", ""]
    f = ranking.friedman
    if f is None:
        return lines + ["No estimator ran every fold of every dataset, so there is no ranking.", ""]
    n, k = ranking.matrix.shape
    rows = [[i + 1, esc(e), f"{r:.2f}"] for i, (e, r) in enumerate(f.mean_ranks.items())]
    lines += [f"Mean rank by macro-F1 (1 = best) over {n} dataset(s){esc(sized_datasets_note(summary))}.", "",
              table(rows, ["#", "estimator", "mean rank"]), ""]
    flagged = summary[summary.apply(is_flagged, axis=1)]
    if len(flagged):
        where = flagged.groupby("estimator", sort=False)["dataset"].apply(list)
        lines += [f"{MARK} Part of this ranking rests on training that looked unfinished: "
                  + "; ".join(f"{esc(e)} on {', '.join(map(esc, d))}" for e, d in where.items())
                  + " (see those datasets' Training diagnostics).", ""]
    if ranking.left_out:
        lines += [f"Left out of the ranking and the tests because some of their cells failed or are "
                  f"missing: {', '.join(map(esc, ranking.left_out))}.", ""]
    if f.reason is not None:
        return lines + [f"No Friedman test: {esc(f.reason)}", ""]
    verdict = "differ" if f.p_value < alpha else "cannot be told apart"
    lines += [f"Friedman test over {n} datasets and {k} estimators: chi² = {f.statistic:.2f}, "
              f"p = {f.p_value:.3g} (Iman-Davenport F = {f.iman_davenport:.2f}, p = "
              f"{f.iman_davenport_p:.3g}); at alpha {alpha} the estimators' ranks {verdict}.", ""]
    if f.p_value >= alpha:
        lines += ["With no difference found, no post-hoc test is run (and no critical-difference "
                  "diagram drawn): the data cannot rank these estimators across datasets."]
    elif ranking.groups:
        lines += [f"Nemenyi post-hoc test: critical difference {ranking.cd:.2f} in mean rank. "
                  "Groups whose members are not significantly different from each other:", ""]
        lines += [f"- {', '.join(map(esc, g))}" for g in ranking.groups]
    else:
        lines += [f"Nemenyi post-hoc test: critical difference {ranking.cd:.2f} in mean rank; "
                  "every pair of estimators differs significantly."]
    lines.append("")
    if "cd" in plots.get("", {}):
        lines += [_image(plots[""]["cd"], "critical-difference diagram"), ""]
    return lines


def _dataset_section(dataset, summary, plots, config, stored):
    rows, headers = dataset_table(summary, dataset, SCORE_COLUMNS, score=_pm, mark=MARK, escape=esc,
                                  probabilistic=PROBABILISTIC, probability_score=probability_text)
    lines = [f"## Dataset: {esc(dataset)}{size_title(summary, dataset)}", ""]
    size = ranked_train_size(summary, dataset)
    if size is not None:
        lines += [f"Every estimator here was trained on at most {size} images per class of each split's "
                  "training part (`--train-sizes`), a nested, stratified sample, and scored on the "
                  "split's whole test part.", ""]
    lines += [table(rows, headers), ""]
    folds = summary[summary["dataset"] == dataset]["folds_ok"].max()
    if folds < MIN_FOLDS:
        lines += [f"Only {folds} fold(s): too few for a paired test (at least {MIN_FOLDS} are needed).", ""]
    for kind, alt in (("f1", "macro-F1 by estimator"), ("pareto", "macro-F1 vs training cost"),
                      ("confusion", "confusion matrix"), ("curves", "learning curves")):
        if kind in plots:
            if kind == "confusion":
                lines.append(f"Confusion matrix of the best estimator, {esc(plots['confusion_of'])}, "
                             "from its out-of-fold predictions (rows: true class, share of the row):")
                lines.append("")
            lines += [_image(plots[kind], f"{dataset}: {alt}"), ""]
    lines += size_section(dataset, stored, plots.get("sizes"))
    lines += calibration_section(dataset, summary, plots.get("reliability"))
    return (lines + tuning_section(dataset, stored) + _diagnostics_section(dataset, summary, stored)
            + per_class_section(dataset, summary, stored))


def _diagnostics_section(dataset, summary, stored):
    """How each estimator trained on `dataset`: the CNNs' budgets and convergence checks and
    every warning a fit raised, with the evidence for each estimator marked in the tables."""
    rows = summary[summary["dataset"] == dataset]
    lines = ["### Training diagnostics", ""]
    cells = [c for c in stored.cells if c.dataset == dataset and c.status == "ok"]
    budgets, others = {}, {}
    for c in cells:
        training = (c.diagnostics or {}).get("training") or {}
        if not isinstance(training, dict) or not training:
            continue
        # a CNN's budget record (estimators.convergence), or another estimator's own check:
        # shown by its `summary` line, so a plug-in's record never breaks the report
        kind = budgets if "epochs_run" in training else others
        kind.setdefault(c.estimator, []).append(training)
    if budgets:
        table_rows = []
        for estimator, runs in budgets.items():
            table_rows.append([esc(estimator), _span(r["batch_size"] for r in runs),
                               _span(r["epochs_run"] for r in runs) + " of " + _span(r["epochs"] for r in runs),
                               _span(r["steps"] for r in runs),
                               _span(f"{r['train_accuracy']:.3f}" for r in runs if r.get("train_accuracy") is not None),
                               f"{sum(bool(r.get('undertrained')) for r in runs)}/{len(runs)}"])
        lines += ["Budgets the CNNs trained with (per fold; batch size and epochs follow the "
                  "training-set size unless set explicitly) and their convergence check:", "",
                  table(table_rows, ["estimator", "batch", "epochs run of planned", "steps planned",
                                     "last-epoch training accuracy", "folds flagged"]), ""]
    if others:
        lines += ["Training checks of the other iterative estimators (per fold):", "",
                  table([[esc(estimator), _training_summary(runs),
                          f"{sum(bool(r.get('reasons')) for r in runs)}/{len(runs)}"]
                         for estimator, runs in others.items()],
                        ["estimator", "training", "folds flagged"]), ""]
    flagged = rows[rows.apply(is_flagged, axis=1) | (rows["warned_folds"] > 0)]
    notices = {}
    for c in cells:
        if (c.diagnostics or {}).get("notices"):
            notices[c.estimator] = notices.get(c.estimator, 0) + 1
    notice = ([f"Library deprecation notices (about the libraries, not this training) are kept in "
               f"the cells of: {', '.join(f'{esc(e)} ({n} fold(s))' for e, n in notices.items())}.", ""]
              if notices else [])
    unchecked = sorted({c.estimator for c in cells if c.diagnostics is None})
    if unchecked:
        lines += [f"No training diagnostics were recorded for {', '.join(map(esc, unchecked))} (cells "
                  "computed by a version of this tool without them): run again to check their "
                  "training.", ""]
    if flagged.empty:
        if len(unchecked) == len({c.estimator for c in cells}):
            return lines
        checks = ("no CNN was still improving, diverging or near chance at the end, and no fit "
                  "raised a warning.")
        return lines + [("Every other estimator's training passed its checks on every fold: " if unchecked
                         else "Every estimator's training passed its checks on every fold: ") + checks,
                        ""] + notice
    for _, r in flagged.iterrows():
        mark = f" {MARK}" if is_flagged(r) else ""
        lines.append(f"- **{esc(r['estimator'])}**{mark}: {esc(r['training_note'])}.")
        for text in _evidence(cells, r["estimator"]):
            lines.append(f"  - {text}")
    return lines + ["", f"Scores marked {MARK} measure a training that had not finished (or did not "
                    "converge): more epochs, another batch size or learning rate may change them. "
                    "`benchmarks/budget_sufficiency.py` compares the default budget with 4x.",
                    ""] + notice


def _training_summary(runs):
    """One line for the per-fold training records of a non-CNN estimator."""
    if all(isinstance(r.get("rounds"), int) and isinstance(r.get("max_rounds"), int) for r in runs):
        stopped = sum(bool(r.get("early_stopped")) for r in runs)
        return (f"{_span(r['rounds'] for r in runs)} of {_span(r['max_rounds'] for r in runs)} "
                f"rounds, early-stopped in {stopped}/{len(runs)} folds")
    return "; ".join(dict.fromkeys(str(r.get("summary", "")) for r in runs if r.get("summary")))


def _span(values):
    values = [v for v in values if v is not None]
    if not values:
        return ""
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def _evidence(cells, estimator, limit=3):
    """Up to `limit` distinct reasons and warnings, each with the folds it came from."""
    folds = {}
    for c in cells:
        if c.estimator != estimator:
            continue
        d = c.diagnostics or {}
        for text in list(d.get("reasons") or []) + [f"warning: {w}" for w in d.get("warnings") or []
                                                    if not w.startswith("ConvergenceWarning")]:
            folds.setdefault(_shape(text), (text, []))[1].append(c.fold)
    out = []
    for text, f in folds.values():
        where = f"fold {f[0]}" if len(f) == 1 else f"folds {', '.join(map(str, f))} (figures of fold {f[0]})"
        out.append(f"{where}: {esc(text)}")
    return out[:limit] + ([f"... and {len(out) - limit} more in the cells' diagnostics"] if len(out) > limit else [])


def _shape(text):
    """A reason with its numbers blanked: folds whose reasons differ only in figures share a line."""
    return re.sub(r"\d+(\.\d+)?", "#", text)


def _in_progress(stored):
    """Whether the run is being computed now: run.json says running and a process holds it."""
    return (stored.meta.get("status") == "running" and stored.run_dir is not None
            and RunStore(stored.run_dir).in_use())


def _problems(stored, absent):
    meta = stored.meta
    problems = [f"dataset {n} skipped: {r}" for n, r in (meta.get("skipped_datasets") or {}).items()]
    for name, s in (meta.get("datasets") or {}).items():
        for f in s.get("skipped_files", []):
            problems.append(f"{name}: skipped {f['path']}: {f['reason']}")
        for f in s.get("excluded_folders", []):
            problems.append(f"{name}: {f['path']}/ {f['reason']}")
        duplicates = s.get("duplicates") or {}
        for group in duplicates.get("label_conflicts", []):
            where = group.get("names") or [f"image {i}" for i in group["indices"]]
            problems.append(f"{name}: label conflict, one image under classes "
                            f"{', '.join(group['labels'])}: {', '.join(map(str, where))}")
        if duplicates.get("within_class_copies"):
            problems.append(f"{name}: {duplicates['within_class_copies']} duplicate image(s) within "
                            f"a class ({duplicates['within_class_groups']} group(s)); see run.json")
        identical = [g.get("names") or [] for g in duplicates.get("label_conflicts", [])]
        problems += near_duplicate_problems(name, s.get("near_duplicates"), identical)
        problems += dedupe_problems(name, (s.get("sampling") or {}).get("dedupe"))
    for cell in stored.sized_cells or stored.cells:  # every training size's (run --train-sizes)
        if cell.status != "ok":
            size = "" if cell.train_size is None else f" (at most {cell.train_size} images per class)"
            problems.append(f"{cell.dataset} / {cell.estimator} / fold {cell.fold}{size} failed: {cell.error}")
    problems += _unknown_prediction_problems(stored.sized_cells or stored.cells)
    problems += tuning_problems(stored)
    missing = [c for c in absent if c.status == "missing"]
    if missing:
        shown = ", ".join(f"{c.dataset} / {c.estimator} / fold {c.fold}" for c in missing[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        why = ("not run yet: the run is in progress" if _in_progress(stored)
               else "not run yet, or the run was interrupted")
        problems.append(f"{len(missing)} planned cell(s) have no result ({why}): {shown}{more}")
    for path, reason in stored.unreadable:
        problems.append(f"cannot read {path}: {reason}; the rest of the run is reported without it")
    return problems


def _unknown_prediction_problems(cells):
    """One line per cell whose estimator predicted labels that are not among its training
    classes (cells.run_cell records them): those predictions count as wrong in every score."""
    problems = []
    for cell in cells:
        unknown = (cell.diagnostics or {}).get("unknown_predictions") if cell.status == "ok" else None
        if not isinstance(unknown, dict):
            continue
        examples = ", ".join(repr(label) for label in unknown.get("labels") or [])
        size = "" if cell.train_size is None else f" (trained on at most {cell.train_size} images per class)"
        problems.append(f"estimator {cell.estimator} predicted labels not among the classes (e.g. "
                        f"{examples}) on dataset {cell.dataset} fold {cell.fold}{size}: "
                        f"{unknown.get('count')} of {cell.n_test} test images, scored as wrong")
    return problems
