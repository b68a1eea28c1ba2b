"""The report's lines on near-duplicates (benchmark.data.near_duplicates): how many test images
have one on the training side of their split, in the Datasets table, and in Problems when any
do, with examples, the cross-class pairs and where the full list is."""

LISTED = 10  # cross-class near-duplicate pairs named in Problems; the CSV has them all


def near_duplicate_cell(facts):
    """The Datasets table's cell: "12 of 2,527 (0.5%)", "none of 2,527", "not checked: why"."""
    if not facts:
        return "not checked"
    if facts.get("not_checked"):
        return f"not checked: {facts['not_checked']}"
    leaked, tested = facts["test_images_with_train_near_duplicate"], facts["test_images"]
    if not leaked:
        return f"none of {tested:,}"
    return f"{leaked:,} of {tested:,} ({leaked / max(tested, 1):.1%})"


def near_duplicate_problems(name, facts, identical=()):
    """Problems lines: test images with a near-duplicate in training, and cross-class pairs
    other than those of `identical` (sets of names of identical images, already listed)."""
    if not facts or facts.get("not_checked"):
        return []
    problems = []
    leaked, tested = facts["test_images_with_train_near_duplicate"], facts["test_images"]
    where = f"; every pair in {facts['csv']}" if facts.get("csv") else ""
    if leaked:
        examples = ", ".join(f"{e['test']} ~ {e['train']} ({e['similarity']:.2f})" for e in facts["examples"])
        problems.append(
            f"{name}: {leaked:,} of {tested:,} test images ({leaked / max(tested, 1):.1%}) have a "
            f"near-duplicate on the training side of their split (an image that matches it pixel for "
            f"pixel after at most a 1-pixel shift, a 10% zoom or a brightness change: a re-encoded, "
            f"resized, cropped or brightened copy), which inflates scores, kNN's most; e.g. "
            f"{examples}{where}. "
            "--dedupe drops the copies before splitting; --groups near-duplicates keeps each cluster "
            "on one side")
    conflicts = [pair for pair in facts.get("label_conflicts") or []
                 if not any(set(pair["names"]) <= set(group) for group in identical)]
    for pair in conflicts[:LISTED]:
        problems.append(f"{name}: label conflict, near-duplicates under classes "
                        f"{', '.join(pair['labels'])}: {', '.join(pair['names'])} ({pair['similarity']:.2f})")
    more = facts.get("cross_class_pairs", 0) - len(facts.get("label_conflicts") or []) + len(conflicts) - min(len(conflicts), LISTED)
    if more > 0:
        problems.append(f"{name}: {more} more near-duplicate pair(s) under two classes{where}")
    return problems


def dedupe_line(name, dedupe):
    """The Markdown line under the Datasets table on what --dedupe dropped from dataset `name`
    (run.json's sampling "dedupe"), with its cross-class conflicts and a link to the CSV that
    lists every dropped file; None when nothing was dropped."""
    from benchmark.reporting.markdown import escape_markdown as esc
    from benchmark.reporting.markdown import link_path

    if not dedupe or not dedupe.get("dropped_images"):
        return None
    text = (f"{esc(name)}: --dedupe dropped {dedupe['dropped_images']} of {dedupe['images_before']} "
            f"images, near-duplicates of an image kept from each of {dedupe['clusters']} cluster(s)")
    conflicts = dedupe.get("conflicts") or []
    count = dedupe.get("cross_class_conflicts", 0)
    if count:
        shown = "; ".join(f"{c['dropped']} ({c['labels'][0]}) dropped, {c['kept']} ({c['labels'][1]}) kept"
                          for c in conflicts[:3])
        more = f"; and {count - 3} more" if count > 3 else ""
        text += (f" ({count} cross-class conflict(s), near-duplicates under two classes, each resolved "
                 f"by keeping one image under its own class: {esc(shown)}{more})")
    if dedupe.get("csv"):
        text += f"; every dropped file: [{esc(dedupe['csv'])}]({link_path(dedupe['csv'])})"
    return f"- {text}."


def dedupe_problems(name, dedupe):
    """Problems lines: the cross-class conflicts --dedupe resolved (near-duplicates labelled with
    two classes: the data has a label error, and the dropped image's class lost an image)."""
    if not dedupe or not dedupe.get("cross_class_conflicts"):
        return []
    conflicts = dedupe.get("conflicts") or []
    problems = [f"{name}: label conflict resolved by --dedupe: {c['dropped']} ({c['labels'][0]}) dropped, "
                f"near-duplicate of {c['kept']} ({c['labels'][1]}, kept; {c['similarity']:.2f})"
                for c in conflicts[:LISTED]]
    more = dedupe["cross_class_conflicts"] - len(problems)
    if more > 0:
        where = f" (all in {dedupe['csv']})" if dedupe.get("csv") else ""
        problems.append(f"{name}: {more} more label conflict(s) resolved by --dedupe{where}")
    return problems


FRAME_COLUMNS = ["dataset", "checked", "not_checked", "test_images",
                 "test_images_with_train_near_duplicate", "share", "pairs", "clusters",
                 "cross_class_pairs", "examples", "csv", "dedupe_images_before",
                 "dedupe_dropped_images", "dedupe_clusters", "dedupe_cross_class_conflicts", "dedupe_csv"]


def near_duplicate_frame(meta):
    """One row per dataset of run.json's `meta`: whether near-duplicates were looked for (and
    why not), how many test images have one on the training side of their split and their
    share, the near-duplicate pairs and clusters, the pairs under two classes, examples and the
    CSV listing every pair; and what --dedupe dropped (NA without --dedupe)."""
    import pandas as pd

    rows = []
    for name, s in (meta.get("datasets") or {}).items():
        facts = s.get("near_duplicates") or {}
        dedupe = (s.get("sampling") or {}).get("dedupe") or {}
        checked = bool(facts) and not facts.get("not_checked")
        tested = facts.get("test_images") if checked else None
        leaked = facts.get("test_images_with_train_near_duplicate") if checked else None
        rows.append({
            "dataset": name, "checked": checked,
            "not_checked": facts.get("not_checked") if facts else "not recorded by this run",
            "test_images": tested, "test_images_with_train_near_duplicate": leaked,
            "share": leaked / max(tested, 1) if checked and tested is not None and leaked is not None else None,
            "pairs": facts.get("pairs") if checked else None,
            "clusters": facts.get("clusters") if checked else None,
            "cross_class_pairs": facts.get("cross_class_pairs") if checked else None,
            "examples": facts.get("examples") or [], "csv": facts.get("csv"),
            "dedupe_images_before": dedupe.get("images_before"),
            "dedupe_dropped_images": dedupe.get("dropped_images"),
            "dedupe_clusters": dedupe.get("clusters"),
            "dedupe_cross_class_conflicts": dedupe.get("cross_class_conflicts"),
            "dedupe_csv": dedupe.get("csv"),
        })
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    counts = [c for c in FRAME_COLUMNS if c not in ("dataset", "checked", "not_checked", "share",
                                                    "examples", "csv", "dedupe_csv")]
    return frame.astype({c: "Int64" for c in counts}).astype({"share": float})
