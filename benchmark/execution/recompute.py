"""Why a stored cell of a run is computed again on a rerun or resume, in words for run.json,
the report and the command line (benchmark.execution.runner collects them)."""

from features.code_identity import changes, identity_digest

FAILED_BEFORE = "it failed before"
NO_IDENTITY = "stored before code identity was recorded"
OTHER_CHANGE = "its data, parameters, split or run options changed"


def recompute_reasons(old, identity, key_with):
    """Why stored cell `old` is computed again: [reason, ...]. `identity`: its estimator's code
    identity now; `key_with(code digest)`: the cell's key now, with that code hash. The stored
    identity, hashed with today's other inputs, tells a code change from a change of anything
    else (both can be listed)."""
    if old.status != "ok":
        return [FAILED_BEFORE]
    if old.code is None:
        return [NO_IDENTITY]
    files, libraries = changes(old.code, identity)
    reasons = []
    if files:
        reasons.append(f"estimator code changed ({old.estimator}: {', '.join(files)})")
    if libraries:
        reasons.append(f"library versions changed: {', '.join(libraries)}")
    if key_with(identity_digest(old.code)) != old.key:
        reasons.append(OTHER_CHANGE)
    return reasons or [OTHER_CHANGE]


def count_reasons(recomputed):
    """{reason: cells} over each recomputed cell's reasons, most frequent first."""
    counts = {}
    for reasons in recomputed:
        for reason in reasons:
            counts[reason] = counts.get(reason, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def recomputed_text(count, reasons):
    """One line, each reason with the number of cells it applies to: "3 stored cell(s)
    recomputed: estimator code changed (knn-hog: estimators/knn.py) [3 cells]"; None when
    nothing was recomputed."""
    if not count:
        return None
    return f"{count} stored cell(s) recomputed: " + "; ".join(
        f"{reason} [{cells} cell{'s' if cells != 1 else ''}]" for reason, cells in reasons.items())
