"""The same tuning budget for every estimator: declared search spaces, searched inside the
training fold.

An estimator declares the parameters worth tuning and where to look in its tags
(estimators.tags), in the format of scikit-learn's `ParameterSampler` (a list of values, or a
scipy.stats distribution):

    class MySVM(FeatureClassifier):
        def __benchmark_tags__(self):
            tags = super().__benchmark_tags__()
            tags.search_space = {"C": loguniform(0.3, 100), "kernel": ["rbf", "linear"]}
            return tags

`tune` then draws candidates at random from that space (the estimator's own defaults are always
the first candidate, so a search can only pick something its inner cross-validation prefers),
scores each by macro-F1 over a stratified k-fold cross-validation of the images it is given -
under the runner, the outer training fold, so the outer test fold is never seen - and returns
the best. Every estimator gets the same budget: the same number of candidates (or the same
seconds) and the same inner folds.

Written as a loop over `ParameterSampler` candidates rather than with `RandomizedSearchCV` /
`HalvingRandomSearchCV` for two reasons: scikit-learn's searches have no time budget, and an
estimator built on a cached feature extractor (estimators.base.FeatureClassifier) is scored on
its precomputed feature rows through `fit_features`, so its features are computed once per
dataset instead of once per inner fold and candidate.
"""

import math
import time
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.model_selection import ParameterSampler, StratifiedKFold

from .tags import benchmark_tags, search_space_problems

UNITS = ("configurations", "seconds")


@dataclass(frozen=True)
class TuningBudget:
    """What each estimator may spend on its search, in each training fold."""

    amount: float  # candidates (whole number) or seconds
    unit: str = "configurations"  # "configurations" | "seconds"
    folds: int = 3  # inner stratified folds

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError(f"tuning budget unit must be one of {UNITS}; got {self.unit!r}")
        if not (isinstance(self.amount, (int, float)) and math.isfinite(self.amount) and self.amount > 0):
            raise ValueError(f"the tuning budget must be a positive number; got {self.amount!r}")
        if self.unit == "configurations" and int(self.amount) != self.amount:
            raise ValueError(f"a tuning budget in configurations is a whole number; got {self.amount!r}")
        if not isinstance(self.folds, int) or self.folds < 2:
            raise ValueError(f"tuning needs at least 2 inner folds; got {self.folds!r}")

    @classmethod
    def parse(cls, text, folds=3):
        """'8' (configurations) or '60s' (seconds); ValueError with what to write instead."""
        text = str(text).strip()
        seconds = text.endswith("s")
        try:
            amount = float(text[:-1]) if seconds else int(text)
        except ValueError:
            raise ValueError(
                f"--tune-budget must be a number of configurations (e.g. 8) or of seconds "
                f"(e.g. 60s); got {text!r}"
            ) from None
        if amount <= 0:
            raise ValueError(f"--tune-budget must be above 0; got {text!r}: give e.g. 8 or 60s")
        return cls(amount, "seconds" if seconds else "configurations", folds)

    def describe(self):
        amount = f"{self.amount:g} s" if self.unit == "seconds" else f"{int(self.amount)} configurations"
        return f"random search, {amount} per estimator and training fold, {self.folds}-fold inner CV"

    def as_dict(self):
        return {"amount": self.amount, "unit": self.unit, "folds": self.folds}


def search_space(estimator):
    """The {parameter: values or distribution} `estimator` declares ({} when none).

    ValueError, naming the estimator's parameters, when the space names a parameter the
    estimator does not have or gives neither a non-empty list nor a distribution, so a typo
    fails when the run starts rather than in every cell.
    """
    space = benchmark_tags(estimator).search_space
    problems = search_space_problems(estimator, space)
    if problems:
        raise ValueError(problems[0])
    return dict(space)


def plain(value):
    """A JSON-friendly copy of a parameter value (NumPy scalars to Python ones)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


def _candidates(estimator, space, seed):
    """The defaults first, then random draws from `space`; endless for a space with a
    distribution, else every combination once."""
    defaults = {name: estimator.get_params(deep=True)[name] for name in space}
    yield defaults
    seen = [defaults]
    finite = all(not hasattr(v, "rvs") for v in space.values())
    total = math.prod(len(v) for v in space.values()) if finite else None
    batch, offset = 64, 0
    while True:
        n = min(batch, total) if finite else batch
        drawn = list(ParameterSampler(space, n_iter=n, random_state=seed + offset))
        offset += 1
        for candidate in drawn:
            if candidate not in seen:
                seen.append(candidate)
                yield candidate
        if finite:
            return


def inner_score(estimator, params, X, y, splits, image_shape=None):
    """Mean macro-F1 of `estimator` with `params` over the inner `splits` of (X, y).

    With `image_shape`, X holds feature rows of images of that shape (fit_features)."""
    scores = []
    for train, test in splits:
        model = clone(estimator).set_params(**params)
        if image_shape is not None:
            model.fit_features(X[train], y[train], image_shape)
            predicted = model.predict_features(X[test])
        else:
            model.fit(X[train], y[train])
            predicted = model.predict(X[test])
        scores.append(f1_score(y[test], predicted, average="macro"))
    return float(np.mean(scores))


def tune(estimator, X, y, budget, *, seed=0, image_shape=None):
    """(best parameters, record) of a random search over `estimator`'s declared space.

    The record (stored in the cell) holds the chosen and default parameters, their inner
    macro-F1, every candidate scored, the budget and the seconds spent. When the training
    images are too few for `budget.folds` stratified inner folds, or the estimator declares
    no space, the defaults are returned and `fallback` says why. A candidate whose fit
    raises scores nothing and is counted in `failed`, so one bad corner of a space never
    fails the cell.
    """
    started = time.perf_counter()
    space = search_space(estimator)
    defaults = {name: plain(estimator.get_params(deep=True)[name]) for name in space}
    record = {"budget": budget.as_dict(), "default": defaults, "params": defaults,
              "chose_default": True, "candidates": [], "failed": 0, "fallback": None}
    y = np.asarray(y)
    smallest = int(np.unique(y, return_counts=True)[1].min()) if len(y) else 0
    if not space:
        record["fallback"] = "the estimator declares no search space: defaults kept"
    elif smallest < budget.folds:
        record["fallback"] = (f"the rarest class has {smallest} training image(s), fewer than the "
                              f"{budget.folds} inner folds: defaults kept")
    if record["fallback"]:
        record["seconds"] = time.perf_counter() - started
        return {}, record
    splits = list(StratifiedKFold(budget.folds, shuffle=True, random_state=seed).split(
        np.zeros(len(y)), y))
    best, best_score = None, -math.inf
    for n, candidate in enumerate(_candidates(estimator, space, seed)):
        if budget.unit == "configurations" and n >= budget.amount:
            break
        if budget.unit == "seconds" and n > 0 and time.perf_counter() - started >= budget.amount:
            break
        try:
            score = inner_score(estimator, candidate, X, y, splits, image_shape)
        except Exception:
            record["failed"] += 1
            continue
        record["candidates"].append({"params": {k: plain(v) for k, v in candidate.items()},
                                     "inner_f1": score})
        if score > best_score:  # ties keep the earlier candidate: the defaults come first
            best, best_score = candidate, score
    record["seconds"] = time.perf_counter() - started
    if best is None:
        record["fallback"] = f"all {record['failed']} candidates failed to fit: defaults kept"
        return {}, record
    record["params"] = {k: plain(v) for k, v in best.items()}
    record["chose_default"] = record["params"] == defaults
    record["inner_f1"] = best_score
    return dict(best), record
