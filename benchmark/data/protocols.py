"""Which images train and which score each cell: the evaluation protocol and the sample budget.

* `cv`: stratified k-fold cross-validation on the pooled images (an official split, if any, is
  ignored) - the default for small datasets.
* `holdout`: train on the official train split, score on the official test split, repeated
  `repeats` times with seeds seed, seed+1, ... (the estimators' `random_state`, and the
  training sample when a cap applies) to show a spread - the default for datasets with an
  official split and at least `HOLDOUT_MIN_IMAGES` images.

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


def plan_splits(dataset, *, protocol="auto", folds=5, repeats=3, max_per_class=None, seed=0):
    """The rows used and the (train, test, seed) splits of one dataset; DatasetError if impossible."""
    protocol = resolve_protocol(protocol, dataset)
    labels = dataset.labels
    everything = np.arange(len(labels))
    if protocol == "cv":
        rows = stratified_cap(labels, everything, max_per_class, seed)
        if max_per_class is not None and max_per_class < folds:  # the cap, not the data, is short
            raise DatasetError(f"dataset {dataset.name!r}: --max-per-class {max_per_class} leaves each "
                               f"class fewer images than the {folds} folds need; use --max-per-class "
                               f"{folds} or more (or fewer --folds)")
        _check_classes(dataset.name, labels[rows], folds, f"{folds} folds", "use --folds {n} or add images")
        splits = [Split(train, test, seed) for train, test in cv_splits(labels[rows], folds, seed)]
        return Plan("cv", rows, splits, max_per_class, len(labels))

    split = np.asarray(dataset.split)
    train_rows, test_rows = everything[split == "train"], everything[split == "test"]
    test_rows = stratified_cap(labels, test_rows, max_per_class, seed)
    trains = [stratified_cap(labels, train_rows, max_per_class, seed + r) for r in range(repeats)]
    _check_classes(dataset.name, labels[trains[0]], 1, "its training split", "add training images")
    missing = sorted(set(labels[test_rows]) - set(labels[trains[0]]))
    if missing:
        raise DatasetError(f"dataset {dataset.name!r}: class(es) {', '.join(missing)} appear in the "
                           "test split but not in the training split; add training images for them")
    note = ""
    if repeats > 1 and all(np.array_equal(train, trains[0]) for train in trains[1:]):
        # every repeat would train on the same images and score the same test images: their
        # scores would not be independent evidence (a deterministic estimator repeats itself
        # exactly, giving intervals of +-0 and tests with p = 0), so the split runs once
        trains = trains[:1]
        note = (f"{repeats} repeats asked, but with no sample cap below the class sizes every "
                "repeat would train and score on the same images: run once")
    rows = np.unique(np.concatenate([test_rows, *trains]))
    position = {row: i for i, row in enumerate(rows.tolist())}
    to_plan = np.vectorize(position.__getitem__, otypes=[np.int64])
    splits = [Split(to_plan(train), to_plan(test_rows), seed + r) for r, train in enumerate(trains)]
    return Plan("holdout", rows, splits, max_per_class, len(labels), note)


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
