"""The files of a run: scores.csv, run.json, leaderboard.md, and results/latest."""

import json
import os
import platform
import re
import sys
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from features.cache import atomic_write

from . import __version__
from .errors import UsageError
from .leaderboard import describe_sampling, history_frame, overall_frame, render, scores_frame, summary_frame

LIBRARIES = ("numpy", "scipy", "scikit-learn", "scikit-image", "pandas", "joblib", "pillow",
             "tabulate", "tensorflow", "keras")


def new_run_id():
    return time.strftime("%Y%m%d-%H%M%S")


def prepare_run_dir(path):
    """Create the run directory and check it can be written; UsageError if not."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"cannot write results to {str(path)!r} ({reason}); choose another directory with --out"
        ) from None
    return path


def library_versions():
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def escape_markdown(text):
    """Text safe inside a GitHub Markdown table cell or heading (no markup, no HTML, one line)."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def markdown_report(result, summary, overall):
    c = result.config
    lines = [
        f"# Leaderboard — run {escape_markdown(result.run_dir.name)}",
        "",
        f"Each dataset's protocol is in the table below: stratified {c.folds}-fold "
        f"cross-validation (shuffled, seed {c.seed}), or the dataset's official train/test split "
        f"repeated with seeds {c.seed}, {c.seed + 1}, ... (a *fold* is then a repeat). Every "
        "estimator on a dataset gets the same splits and the same images. Scores are mean ± "
        "standard deviation over folds; ranks and sorting by macro-F1. Times are seconds per "
        "fold (fit, predict); *feature s* is the one-off cost of computing the estimator's "
        "features for the whole dataset, shared by every fold and every estimator that uses the "
        "same features.",
        "",
    ]
    if result.datasets:
        lines += ["| dataset | images used | image size | classes | protocol and sample | skipped files |",
                  "|---|---|---|---|---|---|"]
        for name, s in result.datasets.items():
            sampling = describe_sampling(s["sampling"]) if "sampling" in s else "not run"
            lines.append(
                f"| {escape_markdown(name)} | {s['images']} | {s['image_size']} | "
                f"{len(s['classes'])} | {escape_markdown(sampling)} | {len(s['skipped_files'])} |"
            )
        lines.append("")
    text = render(summary, overall, tablefmt="github", escape=escape_markdown,
                  heading=lambda t: f"## {t}")
    lines.append(text)
    problems = _problems(result)
    if problems:
        lines += ["## Problems", ""] + [f"- {escape_markdown(p)}" for p in problems] + [""]
    if c.unavailable:
        lines += ["## Datasets not run", "", "Named datasets that are not on this machine:", ""]
        lines += [f"- {escape_markdown(n)}: {escape_markdown(r)}" for n, r in c.unavailable.items()]
        lines.append("")
    return "\n".join(lines)


def _problems(result):
    problems = [f"dataset {name} skipped: {reason}" for name, reason in result.skipped_datasets.items()]
    for name, s in result.datasets.items():
        for f in s["skipped_files"]:
            problems.append(f"{name}: unreadable file {f['path']}: {f['reason']}")
        duplicates = s.get("duplicates") or {}
        for group in duplicates.get("label_conflicts", []):
            where = group.get("names") or [f"image {i}" for i in group["indices"]]
            problems.append(f"{name}: label conflict, one image under classes "
                            f"{', '.join(group['labels'])}: {', '.join(map(str, where))}")
        if duplicates.get("within_class_copies"):
            problems.append(f"{name}: {duplicates['within_class_copies']} duplicate image(s) within "
                            f"a class ({duplicates['within_class_groups']} group(s)); see run.json")
    for cell in result.failed_cells:
        problems.append(f"{cell.dataset} / {cell.estimator} / fold {cell.fold} failed: {cell.error}")
    return problems


def write_outputs(result, argv=None):
    """Write every file of the run; return (summary, overall) frames for the caller to show."""
    run_dir = result.run_dir
    scores = scores_frame(result.cells)
    summary = summary_frame(scores)
    overall = overall_frame(summary)
    atomic_write(run_dir / "scores.csv", lambda f: f.write(scores.to_csv(index=False).encode()))
    history = history_frame(result.cells)
    if len(history):
        atomic_write(run_dir / "history.csv", lambda f: f.write(history.to_csv(index=False).encode()))
    meta = {
        "run_id": run_dir.name,
        "version": __version__,
        "command": argv if argv is not None else sys.argv,
        "config": asdict(result.config),
        "datasets": result.datasets,
        "skipped_datasets": result.skipped_datasets,
        "failed_cells": len(result.failed_cells),
        "libraries": library_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write(run_dir / "run.json", lambda f: f.write(json.dumps(meta, indent=2).encode()))
    report = markdown_report(result, summary, overall)
    atomic_write(run_dir / "leaderboard.md", lambda f: f.write(report.encode()))
    _point_latest(run_dir)
    return summary, overall


def _point_latest(run_dir):
    """Make `<results root>/latest` a relative symlink to the newest run.

    Only a missing `latest` or one that is already a symlink is (re)written: a file or folder
    of the user's that happens to be called `latest` is never replaced.
    """
    latest = run_dir.parent / "latest"
    try:
        if latest.is_symlink():
            latest.unlink()
        elif latest.exists():
            return
        latest.symlink_to(run_dir.name, target_is_directory=True)
    except OSError:  # e.g. a file system without symlinks: the run itself is complete
        pass
