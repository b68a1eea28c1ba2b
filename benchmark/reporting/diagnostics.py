"""How each estimator trained: the CNNs' budgets and convergence checks, the other iterative
estimators' own checks, the warnings their fits raised and the library notices kept aside.

Compute, then render (as benchmark.reporting.stats): `training_diagnostics(stored)` reads the
cells' diagnostics (benchmark.execution.cells.diagnose_fit) into one row per (dataset,
estimator); `diagnostics_section` writes a dataset's "Training diagnostics" from those rows and
the summary's flags.
"""

import re

import pandas as pd

from benchmark.reporting.leaderboard import is_flagged
from benchmark.reporting.markdown import MARK
from benchmark.reporting.markdown import escape_markdown as esc
from benchmark.reporting.markdown import table

EVIDENCE_SHOWN = 3  # distinct reasons and warnings listed under a flagged estimator

COLUMNS = ["dataset", "estimator", "folds", "budget_folds", "batch_size", "epochs_run",
           "epochs_planned", "steps", "train_accuracy", "undertrained_folds", "check_folds",
           "training", "check_flagged_folds", "notice_folds", "unrecorded_folds", "evidence",
           "augmentation"]


def training_diagnostics(stored):
    """One row per (dataset, estimator) with ok cells, in the cells' order: its ok `folds`;
    of the folds with a CNN budget record (`budget_folds`), the batch size, epochs run and
    planned, steps and last-epoch training accuracy, each as a range over folds ("32" or
    "32-64"), and `undertrained_folds`; of the folds with another estimator's own check
    (`check_folds`), a one-line `training` summary and `check_flagged_folds`; the folds that kept
    library deprecation notices and those computed without diagnostics (`unrecorded_folds`);
    `evidence`: every distinct reason and warning as (text, [folds]), folds whose texts differ
    only in figures sharing one (the first fold's figures); `augmentation`: what a classical
    estimator with a mirror switch did in its folds ("mirror (train + test)", "none"), else None."""
    groups = {}
    for c in stored.cells:
        if c.status == "ok":
            groups.setdefault((c.dataset, c.estimator), []).append(c)
    rows = []
    for (dataset, estimator), cells in groups.items():
        budgets, checks = [], []
        for c in cells:
            training = (c.diagnostics or {}).get("training") or {}
            if not isinstance(training, dict) or not training:
                continue
            # a CNN's budget record (estimators.convergence), or another estimator's own check:
            # shown by its `summary` line, so a plug-in's record never breaks the report
            (budgets if "epochs_run" in training else checks).append(training)
        rows.append({
            "dataset": dataset, "estimator": estimator, "folds": len(cells),
            "budget_folds": len(budgets),
            "batch_size": _span(r["batch_size"] for r in budgets) if budgets else None,
            "epochs_run": _span(r["epochs_run"] for r in budgets) if budgets else None,
            "epochs_planned": _span(r["epochs"] for r in budgets) if budgets else None,
            "steps": _span(r["steps"] for r in budgets) if budgets else None,
            "train_accuracy": _span(f"{r['train_accuracy']:.3f}" for r in budgets
                                    if r.get("train_accuracy") is not None) if budgets else None,
            "undertrained_folds": sum(bool(r.get("undertrained")) for r in budgets),
            "check_folds": len(checks),
            "training": _training_summary(checks) if checks else None,
            "check_flagged_folds": sum(bool(r.get("reasons")) for r in checks),
            "notice_folds": sum(bool((c.diagnostics or {}).get("notices")) for c in cells),
            "unrecorded_folds": sum(c.diagnostics is None for c in cells),
            "evidence": _evidence(cells),
            "augmentation": "; ".join(dict.fromkeys(
                str(c.diagnostics["augmentation"]) for c in cells
                if (c.diagnostics or {}).get("augmentation"))) or None,
        })
    return pd.DataFrame(rows, columns=COLUMNS)


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


def _evidence(cells):
    """[(text, [folds])] of the distinct reasons and warnings of one estimator's `cells`."""
    folds = {}
    for c in cells:
        d = c.diagnostics or {}
        for text in list(d.get("reasons") or []) + [f"warning: {w}" for w in d.get("warnings") or []
                                                    if not w.startswith("ConvergenceWarning")]:
            folds.setdefault(_shape(text), (text, []))[1].append(c.fold)
    return list(folds.values())


def _shape(text):
    """A reason with its numbers blanked: folds whose reasons differ only in figures share a line."""
    return re.sub(r"\d+(\.\d+)?", "#", text)


def _evidence_lines(evidence, limit=EVIDENCE_SHOWN):
    """Up to `limit` of an estimator's (text, [folds]), each with the folds it came from."""
    out = []
    for text, f in evidence:
        where = f"fold {f[0]}" if len(f) == 1 else f"folds {', '.join(map(str, f))} (figures of fold {f[0]})"
        out.append(f"{where}: {esc(text)}")
    return out[:limit] + ([f"... and {len(out) - limit} more in the cells' diagnostics"] if len(out) > limit else [])


def _augmentation_lines(dataset, estimators, meta):
    """A line on the classical estimators' mirror augmentation on `dataset`: which trained on
    mirrors, and which did not because a mirror changes this dataset's labels."""
    if not len(estimators) or estimators["augmentation"].isna().all():
        return []
    described = (meta.get("datasets") or {}).get(dataset) or {}
    changes_labels = described.get("mirror_invariant") is False
    parts = []
    for r in estimators.dropna(subset=["augmentation"]).itertuples():
        if r.augmentation == "none" and changes_labels:
            parts.append(f"{esc(r.estimator)}: not applied (a mirror changes this dataset's labels)")
        else:
            parts.append(f"{esc(r.estimator)}: {esc(r.augmentation)}")
    return [f"Mirror augmentation of the classical estimators: {'; '.join(parts)}.", ""]


def diagnostics_section(dataset, analysis):
    """The dataset's "Training diagnostics": the CNNs' budgets and convergence checks and every
    warning a fit raised, with the evidence for each estimator marked in the tables, rendered
    from `analysis.diagnostics` (training_diagnostics) and `analysis.summary`."""
    summary = analysis.summary
    rows = summary[summary["dataset"] == dataset]
    frame = analysis.diagnostics
    estimators = frame[frame["dataset"] == dataset] if len(frame) else frame
    lines = ["### Training diagnostics", ""]
    budgets = estimators[estimators["budget_folds"] > 0] if len(estimators) else estimators
    if len(budgets):
        table_rows = [[esc(r["estimator"]), r["batch_size"], f"{r['epochs_run']} of {r['epochs_planned']}",
                       r["steps"], r["train_accuracy"], f"{r['undertrained_folds']}/{r['budget_folds']}"]
                      for _, r in budgets.iterrows()]
        lines += ["Budgets the CNNs trained with (per fold; batch size and epochs follow the "
                  "training-set size unless set explicitly) and their convergence check:", "",
                  table(table_rows, ["estimator", "batch", "epochs run of planned", "steps planned",
                                     "last-epoch training accuracy", "folds flagged"]), ""]
    checks = estimators[estimators["check_folds"] > 0] if len(estimators) else estimators
    if len(checks):
        lines += ["Training checks of the other iterative estimators (per fold):", "",
                  table([[esc(r["estimator"]), r["training"], f"{r['check_flagged_folds']}/{r['check_folds']}"]
                         for _, r in checks.iterrows()],
                        ["estimator", "training", "folds flagged"]), ""]
    flagged = rows[rows.apply(is_flagged, axis=1) | (rows["warned_folds"] > 0)]
    noticed = estimators[estimators["notice_folds"] > 0] if len(estimators) else estimators
    notice = ([f"Library deprecation notices (about the libraries, not this training) are kept in "
               f"the cells of: {', '.join(f'{esc(r.estimator)} ({r.notice_folds} fold(s))' for r in noticed.itertuples())}.", ""]
              if len(noticed) else [])
    lines += _augmentation_lines(dataset, estimators, analysis.meta)
    unchecked = sorted(estimators[estimators["unrecorded_folds"] > 0]["estimator"]) if len(estimators) else []
    if unchecked:
        lines += [f"No training diagnostics were recorded for {', '.join(map(esc, unchecked))} (cells "
                  "computed by a version of this tool without them): run again to check their "
                  "training.", ""]
    if flagged.empty:
        if len(unchecked) == len(estimators):
            return lines
        checked = ("no CNN was still improving, diverging or near chance at the end, and no fit "
                   "raised a warning.")
        return lines + [("Every other estimator's training passed its checks on every fold: " if unchecked
                         else "Every estimator's training passed its checks on every fold: ") + checked,
                        ""] + notice
    evidence = dict(zip(estimators["estimator"], estimators["evidence"])) if len(estimators) else {}
    for _, r in flagged.iterrows():
        mark = f" {MARK}" if is_flagged(r) else ""
        lines.append(f"- **{esc(r['estimator'])}**{mark}: {esc(r['training_note'])}.")
        for text in _evidence_lines(evidence.get(r["estimator"], [])):
            lines.append(f"  - {text}")
    return lines + ["", f"Scores marked {MARK} measure a training that had not finished (or did not "
                    "converge): more epochs, another batch size or learning rate may change them. "
                    "`benchmarks/budget_sufficiency.py` compares the default budget with 4x.",
                    ""] + notice
