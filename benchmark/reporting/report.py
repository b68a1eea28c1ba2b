"""report.md, its plots and the CSVs of a run, regenerated from the stored cells alone.

`write_report(run_dir)` reads run.json and cells/ (see `benchmark.reporting.results`), analyses
them once (`benchmark.reporting.analysis.analyse`: every score, table and test from the
out-of-fold predictions and per-fold scores), then renders that analysis: it draws the plots and
writes `report.md`, `scores.csv`, `summary.csv`, `history.csv`, `per_class.csv` and
`plots/*.png`. Nothing is refitted, so `python -m benchmark report RUN` gives the same report as
the run itself.
"""

import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.cache import atomic_write

from benchmark.reporting.analysis import Analysis, analyse
from benchmark.reporting.calibration import PROBABILISTIC, calibration_section, reliability_jobs
from benchmark.reporting.diagnostics import diagnostics_section
from benchmark.reporting.leaderboard import (
    SCORE_COLUMNS, dataset_table, describe_sampling, is_flagged, no_score, probability_text,
    ranked_train_size, size_title, sized_datasets_note,
)
from benchmark.reporting.markdown import MARK
from benchmark.reporting.markdown import escape_markdown as esc
from benchmark.reporting.markdown import link_path, table
from benchmark.reporting.results import load_run
from benchmark.execution.cell_record import slug
from benchmark.execution.recompute import recomputed_text
from benchmark.execution.store import RunStore
from benchmark.reporting.stats import ALPHA, MIN_FOLDS
from benchmark.reporting.near_duplicates import dedupe_line, near_duplicate_cell
from benchmark.reporting.per_class import CSV_FILE, per_class_section
from benchmark.reporting.training_sizes import dataset_sizes, plot_args, size_section
from benchmark.reporting.tuning import tuning_fact, tuning_section


@dataclass
class Report:
    """What write_report wrote, and the Analysis it rendered (the terminal renders it too)."""

    path: Path
    analysis: Analysis
    unreadable: list = field(default_factory=list)  # [(path, reason)] of files that could not be read

    # the frames the callers of write_report read before the Analysis held them
    summary = property(lambda self: self.analysis.summary)
    overall = property(lambda self: self.analysis.overall)
    ranking = property(lambda self: self.analysis.ranking)
    problems = property(lambda self: self.analysis.problems)


def write_report(run_dir, alpha=ALPHA, n_jobs=1, mapper=None):
    """Regenerate every derived file of `run_dir`; return the Report (with its Analysis).

    `n_jobs` processes, or `mapper` (see _draw_plots), draw the plots."""
    stored = load_run(run_dir)
    store = RunStore(run_dir)
    result = analyse(stored, alpha)
    _write_csv(store.output("scores.csv"), result.scores)
    _write_csv(store.output("summary.csv"), result.every_summary())
    if len(result.history):
        _write_csv(store.output("history.csv"), result.history)
    if len(result.per_class):
        _write_csv(store.output(CSV_FILE), result.per_class)
    plots = _draw_plots(store.path, result, n_jobs, mapper)
    text = _markdown(result, plots)
    path = store.report_file
    atomic_write(path, lambda f: f.write(text.encode()))
    return Report(path, result, list(stored.unreadable))


def figures(analysis):
    """{(dataset, kind): matplotlib Figure} of every plot the report draws from `analysis` (""
    for the cross-dataset ones; kinds: f1, pareto, confusion, sizes, curves, reliability, cd),
    without writing files."""
    jobs, _ = _plot_jobs(None, analysis)
    drawn = {}
    for dataset, kind, function, args in jobs:
        fig = _draw(function, args)
        drawn[(dataset, kind)] = fig[0] if isinstance(fig, tuple) else fig
    return drawn


def _write_csv(path, frame):
    atomic_write(path, lambda f: f.write(frame.to_csv(index=False).encode()))


# --- plots ----------------------------------------------------------------------------------

def _draw_plots(run_dir, analysis, n_jobs=1, mapper=None):
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
    jobs, drawn = _plot_jobs(folder, analysis)
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


def _plot_jobs(folder, analysis):
    """([(dataset, kind, plots function, args)], {dataset: {"confusion_of": estimator}}) of
    every plot of `analysis`; each is written into `folder`, or returned as a figure when it is
    None."""

    def at(name):
        return None if folder is None else folder / name

    summary, history, ranking, alpha = analysis.summary, analysis.history, analysis.ranking, analysis.alpha
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
        confusion = analysis.confusion.get(dataset)
        if confusion is not None:
            jobs.append((dataset, "confusion", "confusion_matrix_plot", (
                confusion.y_true, confusion.y_pred, confusion.classes, at(f"{name}-confusion.png"),
                f"{dataset}: {confusion.estimator}, out-of-fold predictions of {confusion.folds} fold(s)")))
            drawn.setdefault(dataset, {})["confusion_of"] = confusion.estimator
        sizes = dataset_sizes(analysis.sizes, dataset)
        if len(sizes):
            jobs.append((dataset, "sizes", "training_size_plot", (
                plot_args(sizes), at(f"{name}-training-sizes.png"),
                f"{dataset}: macro-F1 by training images per class")))
        curves = history[history["dataset"] == dataset] if len(history) else history
        if len(curves):
            jobs.append((dataset, "curves", "learning_curves", (
                curves, at(f"{name}-learning-curves.png"),
                f"{dataset}: CNN learning curves (mean over folds; band: min-max)")))
    jobs += reliability_jobs(summary, analysis.probabilistic, at)
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


def _markdown(analysis, plots):
    """report.md's text, rendered from `analysis` and the `plots` drawn from it."""
    meta, summary, alpha = analysis.meta, analysis.summary, analysis.alpha
    config = meta.get("config") or {}
    lines = [f"# Benchmark report — run {esc(meta.get('run_id') or analysis.run_dir.name)}", ""]
    lines += _run_facts(meta, analysis.run_dir) + [""] + _command_block(meta.get("command"))
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
        lines += _overview(summary, analysis.overall) + _ranking_text(analysis.ranking, plots, alpha, summary)
        lines += pretrained_note(summary, datasets, meta.get("pretrained_input") or {})
        for dataset in summary["dataset"].drop_duplicates():
            lines += _dataset_section(dataset, analysis, plots.get(dataset, {}))
    else:
        lines += ["No cell finished, so there is nothing to rank yet.", ""]
    if analysis.problems:
        lines += ["## Problems", ""] + [f"- {esc(p)}" for p in analysis.problems] + [""]
    if config.get("unavailable"):
        lines += ["## Datasets not run", "", "Named datasets that are not on this machine:", ""]
        lines += [f"- {esc(n)}: {esc(r)}" for n, r in config["unavailable"].items()] + [""]
    if config.get("unavailable_estimators"):
        lines += ["## Estimators not run", "", "Estimators of the default set that cannot run on this machine:", ""]
        lines += [f"- {esc(n)}: {esc(r)}" for n, r in config["unavailable_estimators"].items()] + [""]
    return "\n".join(lines)


def pretrained_note(summary, datasets=None, input_sides=None):
    """What a reader must know about the "pretrained" family, when the run has one: it starts
    from external data, its score may be inflated where a dataset overlaps that data, and
    where its network saw a dataset's images upsampled or with a grayscale channel repeated as
    colour (`datasets`: run.json's facts; `input_sides`: {estimator: side its network sees})."""
    if "pretrained_on" not in summary or not summary["pretrained_on"].notna().any():
        return []
    names = summary.loc[summary["pretrained_on"].notna(), ["estimator", "pretrained_on"]].drop_duplicates()
    listed = ", ".join(f"{esc(r.estimator)} ({esc(r.pretrained_on)})" for r in names.itertuples())
    adapted = [line for dataset in summary.loc[summary["pretrained_on"].notna(), "dataset"].drop_duplicates()
               if (line := _input_adaptation(dataset, (datasets or {}).get(dataset) or {}, input_sides or {},
                                             names["estimator"]))]
    return [
        f"**Pretrained estimators** ({listed}) start from a network trained on data outside this "
        "benchmark, so they are their own family, beside the from-scratch CNNs and the classical "
        "models (the crossover compares only those two). Their score can be inflated where a "
        "dataset overlaps the pretraining data (CIFAR-10's classes are ImageNet classes, and some "
        "of its images may be near-copies of ImageNet's); this cannot be checked without "
        "ImageNet, and `--dedupe` and the near-duplicate check cannot see it: they compare this "
        "dataset's test images with its own training images only.",
        "",
    ] + adapted + ([""] if adapted else [])


def _input_adaptation(dataset, facts, input_sides, estimators):
    """One list item when the pretrained `estimators`' networks saw `dataset`'s images
    resized up or their grayscale channel repeated as colour; None when neither happened."""
    try:
        height, width, channels = (int(v) for v in str(facts.get("image_size", "")).split("x"))
    except ValueError:  # not recorded (an older run): nothing to say
        return None
    sides = {side: [e for e in estimators if input_sides.get(e) == side]
             for side in sorted({input_sides[e] for e in estimators if e in input_sides})}
    changes = [f"resized up to {side}x{side} ({side / min(height, width):.3g}x) for {', '.join(names)}"
               for side, names in sides.items() if side > min(height, width)]
    if channels == 1:
        changes.append("with its one grayscale channel repeated as red, green and blue")
    if not changes:
        return None
    return esc(f"- {dataset} ({height}x{width}, {'grayscale' if channels == 1 else f'{channels} channels'}): "
               f"the pretrained networks saw each image {'; '.join(changes)}. They were trained on "
               "colour photographs at about their input size, so here they measure how well their "
               "features transfer to images unlike their own.")


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


def _dataset_section(dataset, analysis, plots):
    summary = analysis.summary
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
    lines += size_section(dataset, analysis, plots.get("sizes"))
    lines += calibration_section(dataset, summary, plots.get("reliability"))
    return (lines + tuning_section(dataset, analysis, analysis.alpha) + diagnostics_section(dataset, analysis)
            + per_class_section(dataset, analysis))
