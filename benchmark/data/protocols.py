"""Which images train and which score each cell: the evaluation protocol and the sample budget.

* `cv`: stratified k-fold cross-validation on the pooled images (an official split, if any, is
  ignored) - the default for small datasets.
* `holdout`: train on the official train split, score on the official test split, repeated
  `repeats` times with seeds seed, seed+1, ... (the estimators' `random_state`, and the
  training sample when a cap applies) to show a spread - the default for datasets with an
  official split and at least `HOLDOUT_MIN_IMAGES` images.

Groups (benchmark.data.groups): images that share a source (frames of one video, style
transfers of one content image) stay on one side of every split. cv then uses scikit-learn's
`StratifiedGroupKFold`; holdout keeps the official test split whole and drops the training
images whose group also has test images, and says how many.

Budgets: `max_per_class` keeps a stratified random sample of at most that many images per class
(per side of the split for holdout): cross-validating CNNs on 60,000 images takes hours on two
cores. The sample depends only on the seed, so every estimator sees the same images.
"""

from dataclasses import dataclass

import numpy as np

from benchmark.data.dataset import DatasetError

PROTOCOLS = ("auto", "cv", "holdout")
HOLDOUT_MIN_IMAGES = 10_000


@dataclass
class Split:
    train: np.ndarray  # row indices into the planned (sub-sampled) dataset
    test: np.ndarray
    seed: int  # the estimators' random_state for this cell


@dataclass
class Plan:
    protocol: str  # "cv" | "holdout"
    rows: np.ndarray  # rows of the loaded dataset that the run uses, in order
    splits: list
    max_per_class: int  # None: no cap
    available: int  # images in the loaded dataset
    note: str = ""  # what the report must say about the plan (e.g. repeats that could not differ)
    # grouped splits: assign_groups' facts plus the groups used, groups per class and (holdout)
    # the training images dropped; None: ungrouped
    grouping: dict = None

    def describe(self, labels):
        """JSON-ready facts for the report: protocol, cap and the sample counts used."""
        used = labels[self.rows]
        train = {len(s.train) for s in self.splits}
        test = {len(s.test) for s in self.splits}
        return {
            "protocol": self.protocol,
            "splits": len(self.splits),
            "max_per_class": self.max_per_class,
            "available_images": int(self.available),
            "used_images": int(len(self.rows)),
            "used_per_class": {str(c): int(k) for c, k in zip(*np.unique(used, return_counts=True))},
            "train_images": sorted(int(n) for n in train),
            "test_images": sorted(int(n) for n in test),
            "note": self.note,
            **({"grouping": self.grouping} if self.grouping is not None else {}),
        }


def resolve_protocol(protocol, dataset):
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
    if protocol == "auto":
        big = len(dataset.labels) >= HOLDOUT_MIN_IMAGES
        return "holdout" if dataset.has_official_split and big else "cv"
    if protocol == "holdout" and not dataset.has_official_split:
        raise DatasetError(f"dataset {dataset.name!r} has no official train/test split; "
                           "use --protocol cv (or auto)")
    return protocol


def stratified_cap(labels, rows, max_per_class, seed):
    """`rows` restricted to a seeded random sample of at most `max_per_class` per class (sorted)."""
    if max_per_class is None:
        return np.asarray(rows)
    rng = np.random.default_rng(seed)
    rows = np.asarray(rows)
    kept = []
    for label in np.unique(labels[rows]):
        members = rows[labels[rows] == label]
        kept.append(rng.permutation(members)[:max_per_class])
    return np.sort(np.concatenate(kept)) if kept else rows[:0]


def cv_splits(labels, folds, seed):
    """[(train, test)] of stratified, shuffled, seeded k-fold cross-validation."""
    from sklearn.model_selection import StratifiedKFold  # here: the CLI imports this module

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def grouped_cv_splits(labels, groups, folds, seed):
    """[(train, test)] of stratified, shuffled, seeded k-fold cross-validation that keeps each
    group in one fold (scikit-learn's StratifiedGroupKFold)."""
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels, groups))


def plan_splits(dataset, *, protocol="auto", folds=5, repeats=3, max_per_class=None, seed=0,
                groups=None, group_facts=None, resampled=False):
    """The rows used and the (train, test, seed) splits of one dataset; DatasetError if impossible.

    `groups`: each image's group (aligned with dataset.labels; see benchmark.data.groups), to
    keep every group on one side of each split; None: ungrouped. `group_facts`: what the
    groups are (assign_groups' facts), copied into describe()'s "grouping". `resampled`: the
    runner draws its own training sample from each split (--train-sizes), so holdout repeats
    on the same images still differ and are all kept."""
    protocol = resolve_protocol(protocol, dataset)
    labels = dataset.labels
    everything = np.arange(len(labels))
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(labels):
            raise ValueError(f"groups must give one group per image ({len(labels)}); got {len(groups)}")
    if protocol == "cv":
        rows = stratified_cap(labels, everything, max_per_class, seed)
        if max_per_class is not None and max_per_class < folds:  # the cap, not the data, is short
            raise DatasetError(f"dataset {dataset.name!r}: --max-per-class {max_per_class} leaves each "
                               f"class fewer images than the {folds} folds need; use --max-per-class "
                               f"{folds} or more (or fewer --folds)")
        _check_classes(dataset.name, labels[rows], folds, f"{folds} folds", "use --folds {n} or add images")
        if groups is None:
            splits = [Split(train, test, seed) for train, test in cv_splits(labels[rows], folds, seed)]
            return Plan("cv", rows, splits, max_per_class, len(labels))
        _check_groups(dataset.name, labels[rows], groups[rows], folds)
        pairs = grouped_cv_splits(labels[rows], groups[rows], folds, seed)
        _check_training_classes(dataset.name, labels[rows], pairs)
        splits = [Split(train, test, seed) for train, test in pairs]
        return Plan("cv", rows, splits, max_per_class, len(labels),
                    grouping=_grouping_facts(group_facts, labels[rows], groups[rows]))

    split = np.asarray(dataset.split)
    train_rows, test_rows = everything[split == "train"], everything[split == "test"]
    notes, dropped = [], None
    if groups is not None:  # before the class checks, so a class this empties is named as such
        train_rows, dropped, note = _drop_leaking(dataset.name, labels, groups, train_rows, test_rows)
        notes.append(note)
    test_rows = stratified_cap(labels, test_rows, max_per_class, seed)
    trains = [stratified_cap(labels, train_rows, max_per_class, seed + r) for r in range(repeats)]
    _check_classes(dataset.name, labels[trains[0]], 1, "its training split", "add training images")
    missing = sorted(set(labels[test_rows]) - set(labels[trains[0]]))
    if missing:
        raise DatasetError(f"dataset {dataset.name!r}: class(es) {', '.join(missing)} appear in the "
                           "test split but not in the training split; add training images for them")
    identical = repeats > 1 and all(np.array_equal(train, trains[0]) for train in trains[1:])
    if identical and resampled:
        notes.append(f"{repeats} repeats, each with its own training samples for --train-sizes; at "
                     "'max' every repeat trains on the same images, so there only the estimators' "
                     "seeds differ")
    elif identical:
        # every repeat would train on the same images and score the same test images: their
        # scores would not be independent evidence (a deterministic estimator repeats itself
        # exactly, giving intervals of +-0 and tests with p = 0), so the split runs once
        trains = trains[:1]
        notes.append(f"{repeats} repeats asked, but with no sample cap below the class sizes every "
                     "repeat would train and score on the same images: run once")
    rows = np.unique(np.concatenate([test_rows, *trains]))
    position = {row: i for i, row in enumerate(rows.tolist())}
    to_plan = np.vectorize(position.__getitem__, otypes=[np.int64])
    splits = [Split(to_plan(train), to_plan(test_rows), seed + r) for r, train in enumerate(trains)]
    grouping = None
    if groups is not None:
        grouping = {**_grouping_facts(group_facts, labels[rows], groups[rows]), **dropped}
    return Plan("holdout", rows, splits, max_per_class, len(labels), "; ".join(notes), grouping)


def _drop_leaking(name, labels, groups, train_rows, test_rows):
    """(training rows left, {dropped counts}, note) once the training images whose group also
    has images in the (whole) official test split are dropped: they would leak. The test split
    stays whole; its sample does not change which training images go. DatasetError when a
    class loses every training image."""
    leaking = np.isin(groups[train_rows], np.unique(groups[test_rows]))
    kept = train_rows[~leaking]
    emptied = sorted(set(labels[train_rows].tolist()) - set(labels[kept].tolist()))
    n_groups = len(np.unique(groups[train_rows][leaking]))
    if emptied:
        raise DatasetError(f"dataset {name!r}: class(es) {', '.join(emptied)} keep no training image: "
                           "every one is in a group that also has test images; check the grouping "
                           "(a finer one keeps more) or use --protocol cv")
    if leaking.any():
        note = (f"{int(leaking.sum())} training image(s) of {n_groups} group(s) that also have test "
                "images dropped")
    else:
        note = "no group spans the train and test splits"
    return kept, {"dropped_train_images": int(leaking.sum()), "dropped_groups": n_groups}, note


def _grouping_facts(facts, labels, groups):
    """assign_groups' facts plus the groups used in all and per class (a group whose images
    span classes counts in each)."""
    per_class = {str(c): int(len(np.unique(groups[labels == c]))) for c in np.unique(labels)}
    return {**(facts or {}), "groups": int(len(np.unique(groups))), "groups_per_class": per_class}


def _check_groups(name, labels, groups, folds):
    """DatasetError when a class has fewer distinct groups than folds: some test fold could not
    hold it without splitting a group."""
    short = {}
    for c in np.unique(labels).tolist():
        n = len(np.unique(groups[labels == c]))
        if n < folds:
            short[c] = n
    if short:
        listed = ", ".join(f"class {c!r} has {n} group(s)" for c, n in short.items())
        fewest = min(short.values())
        fix = f"use --folds {fewest}" if fewest >= 2 else "add images of other sources to it"
        raise DatasetError(f"dataset {name!r}: {listed}, fewer than the {folds} folds; {fix} or a "
                           "grouping that splits its sources finer")


def _check_training_classes(name, labels, pairs):
    """DatasetError when a grouped fold leaves a class out of its training side."""
    every = set(labels.tolist())
    for k, (train, _) in enumerate(pairs):
        missing = sorted(every - set(labels[train].tolist()))
        if missing:
            raise DatasetError(f"dataset {name!r}: the groups of class(es) {', '.join(missing)} all "
                               f"fall in test fold {k + 1}, leaving its training side without them; "
                               "use fewer --folds or a finer grouping")


def _check_classes(name, labels, needed, what, fix):
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise DatasetError(f"dataset {name!r} has {len(classes)} class(es) "
                           f"({', '.join(map(str, classes)) or 'no images'}); a classifier needs at least 2")
    small = {c: k for c, k in zip(classes.tolist(), counts.tolist()) if k < needed}
    if small:
        listed = ", ".join(f"class {c!r} has {k} image(s)" for c, k in small.items())
        fewest = min(small.values())
        hint = fix.format(n=fewest) if fewest >= 2 else "add images to it or remove it"
        raise DatasetError(f"dataset {name!r}: {listed}, fewer than the {what}; {hint}")


MAX_SIZE = "max"  # --train-sizes: the whole training part of each split


def parse_train_sizes(text):
    """[int | "max"] from "10,30,100,max" (sorted, without repeats, "max" last); ValueError
    with the reason when a size is not a whole number >= 1 or "max"."""
    sizes = set()
    for part in str(text).split(","):
        part = part.strip().lower()
        if part == MAX_SIZE:
            sizes.add(MAX_SIZE)
            continue
        try:
            size = int(part)
        except ValueError:
            raise ValueError(f"--train-sizes takes images per class as whole numbers >= 1 or "
                             f"'max', separated by commas (e.g. 10,30,100,max); got {part!r}") from None
        if size < 1:
            raise ValueError(f"--train-sizes: a training size must be at least 1 image per class; got {size}")
        sizes.add(size)
    if not sizes:
        raise ValueError("--train-sizes needs at least one size, e.g. 10,30,100,max")
    return sorted(s for s in sizes if s != MAX_SIZE) + ([MAX_SIZE] if MAX_SIZE in sizes else [])


def nested_training_samples(labels, train, sizes, seed):
    """{size: sorted training rows} for each size of `sizes` (images per class, or "max"):
    a stratified random sample of `train` with at most `size` images of each class, nested
    (a smaller size's sample is part of every larger one: each class's rows are shuffled once,
    with `seed`, and every size takes the first `size` of them), and {size: {class: rows
    available}} for the classes that had fewer training images than the size (capped: they
    use all of theirs)."""
    rng = np.random.default_rng(seed)
    train = np.asarray(train)
    shuffled = {label: rng.permutation(train[labels[train] == label]) for label in np.unique(labels[train])}
    samples, capped = {}, {}
    for size in sizes:
        if size == MAX_SIZE:
            samples[size] = np.sort(train)
            continue
        samples[size] = np.sort(np.concatenate([rows[:size] for rows in shuffled.values()]))
        short = {str(label): len(rows) for label, rows in shuffled.items() if len(rows) < size}
        if short:
            capped[size] = short
    return samples, capped
