"""Benchmark check: two run directories hold the same results, cell for cell.

Claim checked
    A change that should not alter any result (a refactoring: issue 31's schema, estimator
    declaration and module splits; issue 15's runner rewrite) leaves every cell of
    `run --all --no-cache` identical: the same cells exist, and each has the same status, the
    same scores (all metrics, exactly), the same out-of-fold rows, true and predicted labels, the
    same training size, and the same out-of-fold probabilities (the .npy beside the cell, exactly).

How to use it
    Run the same command with the old code and with the new, into two directories, e.g.::

        git worktree add --detach /tmp/base <old commit>
        (cd /tmp/base && python -m benchmark run --all --no-cache --out /tmp/run-old)
        python -m benchmark run --all --no-cache --out /tmp/run-new
        python benchmarks/cell_identity.py /tmp/run-old /tmp/run-new [--rename OLD=NEW ...]

    `--rename` maps an estimator renamed between the two codes (old name = new name). Only the
    cells' stored JSON and .npy files are read (no import of either code base), so the check does
    not depend on the code under test. What is not compared, because it legitimately differs:
    the cell key and code identity (they hash the source files, which a refactoring edits),
    timings, captured warnings and printed output.

Prints one line per differing cell and a summary; exit status 1 when any cell differs (this is
a check meant for a person or a script, not a timed measurement).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

COMPARED = ("status", "scores", "test_index", "y_true", "y_pred", "train_size", "n_train",
            "n_test", "proba_classes", "default_scores")


def cells(run_dir, rename):
    """{(dataset, estimator, fold, train_size): (record, directory)} of a run's cells."""
    found = {}
    for path in sorted(Path(run_dir, "cells").rglob("*.json")):
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or "estimator" not in record:
            continue
        estimator = rename.get(record["estimator"], record["estimator"])
        found[(record["dataset"], estimator, record["fold"], record.get("train_size"))] = (record, path.parent)
    return found


def probabilities(record, folder):
    name = record.get("proba_file")
    return None if name is None else np.load(folder / name, allow_pickle=False)


def differences(old, new):
    """The names of the compared fields that differ between two cell records (and 'proba')."""
    (a, folder_a), (b, folder_b) = old, new
    changed = [name for name in COMPARED if a.get(name) != b.get(name)]
    pa, pb = probabilities(a, folder_a), probabilities(b, folder_b)
    if (pa is None) != (pb is None) or (pa is not None and not np.array_equal(pa, pb)):
        changed.append("proba")
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                        help="an estimator renamed between the two runs")
    args = parser.parse_args(argv)
    rename = dict(item.split("=", 1) for item in args.rename)
    old, new = cells(args.old, rename), cells(args.new, {})
    only_old, only_new = sorted(old.keys() - new.keys(), key=str), sorted(new.keys() - old.keys(), key=str)
    differing = 0
    for key in only_old:
        print(f"only in {args.old}: {key}")
    for key in only_new:
        print(f"only in {args.new}: {key}")
    for key in sorted(old.keys() & new.keys(), key=str):
        changed = differences(old[key], new[key])
        if changed:
            differing += 1
            print(f"differs: {key}: {', '.join(changed)}")
    same = len(old.keys() & new.keys()) - differing
    print(f"{same} identical cell(s), {differing} differing, {len(only_old)} only in old, "
          f"{len(only_new)} only in new")
    return 1 if differing or only_old or only_new else 0


if __name__ == "__main__":
    sys.exit(main())
