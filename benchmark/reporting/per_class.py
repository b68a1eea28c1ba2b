"""Per-class scores: which classes each family of estimators gets right, and where the families
differ (issue 18, item 3).

Computed from the out-of-fold predictions the cells store, never by refitting:
`estimator_classes` scores one estimator per class, `dataset_classes` every estimator of a
dataset, `per_class_frame` every estimator of a run (the rows of per_class.csv),
`compare_families` picks the best estimator of each family on a dataset and returns a
`FamilyComparison`; `per_class_results` gives both for every dataset, as the run's Analysis
holds them (benchmark.reporting.analysis). `per_class_section` and `family_sentence` only
render a FamilyComparison.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.reporting.leaderboard import ranked_train_size
from benchmark.reporting.markdown import escape_markdown as esc
from benchmark.reporting.markdown import link_path, table

CSV_FILE = "per_class.csv"  # in the run directory, next to scores.csv and summary.csv
SHOWN_EACH_WAY = 10  # longer class lists show only this many largest differences each way
NAMED = 3  # classes the sentence names on each side
# with more than two families, the report's question decides the pair: best CNN vs best classical
QUESTION = ("cnn", "classical")
CSV_COLUMNS = ["dataset", "estimator", "family", "train_size", "best_of_family", "class", "support",
               "precision", "recall", "f1", "folds"]


@dataclass(eq=False)  # compared by identity: it holds a DataFrame
class EstimatorClasses:
    """One estimator's per-class scores on one dataset, from its pooled predictions."""

    estimator: str
    family: str
    f1_macro: float  # mean macro-F1 over its ok folds (the leaderboard's), which ranks it
    folds: int  # ok folds whose predictions were pooled
    predictions: int
    images: int  # distinct test images among them: fewer when repeats share one test set
    scores: pd.DataFrame  # index: class (the dataset's order); support, precision, recall, f1


@dataclass
class FamilyComparison:
    """The best estimator of each family on one dataset, and the pair the report compares."""

    dataset: str
    best: list  # EstimatorClasses, one per family, best family first
    pair: tuple = None  # (first, second) of `best` compared class by class; None: one family
    without_predictions: list = field(default_factory=list)  # ok, but no predictions stored
    unregistered: list = field(default_factory=list)  # names whose family is unknown (not registered)

    def differences(self):
        """F1 of the pair's first minus its second, for each class either was tested on."""
        first, second = self.pair
        tested = (first.scores["support"] > 0) | (second.scores["support"] > 0)
        return (first.scores["f1"] - second.scores["f1"])[tested]


def estimator_classes(cells, classes, family, f1_macro=np.nan):
    """Per-class precision, recall, F1 and support of the ok `cells` of one estimator on one
    dataset, or None when none of them stored its predictions (cells of an older version).

    The predictions of every ok fold are pooled and scored once (scikit-learn's
    precision_recall_fscore_support over `classes`, in that order, zero_division=0), so a
    class with few images per fold still gets one score from all of them. Cross-validation
    folds partition the images: each is predicted once. Holdout with repeats scores the same
    test images in every repeat, and all repeats are pooled too: `support` then counts
    predictions (images x repeats), not images, and `images` < `predictions` says so."""
    from sklearn.metrics import precision_recall_fscore_support

    cells = [c for c in cells if c.status == "ok" and c.test_index is not None and c.y_true is not None]
    if not cells:
        return None
    y_true = [y for c in cells for y in c.y_true]
    y_pred = [y for c in cells for y in c.y_pred]
    # integer codes in the class order: the same scores as on the strings, several times faster
    codes = [pd.Categorical(y, categories=classes).codes for y in (y_true, y_pred)]
    precision, recall, f1, support = precision_recall_fscore_support(
        *codes, labels=np.arange(len(classes)), zero_division=0)
    scores = pd.DataFrame({"support": support, "precision": precision, "recall": recall, "f1": f1},
                          index=pd.Index(classes, name="class"))
    images = len({i for c in cells for i in c.test_index})
    return EstimatorClasses(cells[0].estimator, family, f1_macro, len(cells), len(y_true), images, scores)


def class_order(stored, dataset):
    """The dataset's class names in its own order (run.json), then any other label its
    predictions hold, sorted."""
    classes = ((stored.meta.get("datasets") or {}).get(dataset) or {}).get("classes") or {}
    names = [str(c) for c in classes]
    seen = {y for c in stored.cells if c.dataset == dataset and c.status == "ok"
            for labels in (c.y_true or [], c.y_pred or []) for y in labels}
    return names + sorted(seen - set(names))


def dataset_classes(dataset, summary, stored):
    """([EstimatorClasses] of every estimator of `dataset` with stored predictions, in the
    leaderboard's order (highest mean macro-F1 first), [estimators with ok cells but no
    stored predictions])."""
    rows = summary[(summary["dataset"] == dataset) & summary["f1_macro_mean"].notna()] if len(summary) else []
    if not len(rows):
        return [], []
    rows = rows.sort_values("f1_macro_mean", ascending=False, kind="stable")
    classes = class_order(stored, dataset)
    scored, without = [], []
    for _, row in rows.iterrows():
        cells = [c for c in stored.cells if c.dataset == dataset and c.estimator == row["estimator"]]
        result = estimator_classes(cells, classes, row["family"], row["f1_macro_mean"])
        if result is None:
            without.append(row["estimator"])
        else:
            scored.append(result)
    return scored, without


def compare_families(dataset, summary, stored, classes=None):
    """The FamilyComparison of `dataset`, or None when no estimator has ok cells there.

    Best of a family = its highest mean macro-F1 over the dataset's ok folds, the leaderboard's
    choice, among the estimators whose predictions are stored. The pair compared is the best
    CNN and the best classical estimator when both ran, otherwise the two best families.
    `classes`: dataset_classes's result, when computed already."""
    from estimators.registry import UNKNOWN_FAMILY

    scored, without = classes if classes is not None else dataset_classes(dataset, summary, stored)
    if not scored and not without:
        return None
    best = {}
    for result in scored:
        best.setdefault(result.family, result)
    comparison = FamilyComparison(dataset, list(best.values()), without_predictions=without,
                                  unregistered=[r.estimator for r in scored if r.family == UNKNOWN_FAMILY])
    if all(family in best for family in QUESTION):
        comparison.pair = tuple(best[family] for family in QUESTION)
    elif len(best) >= 2:
        comparison.pair = tuple(comparison.best[:2])
    return comparison


def per_class_results(stored, summary):
    """(per_class_frame, {dataset: its FamilyComparison, or None}) of every dataset of
    `summary`, each estimator scored once for both."""
    frames, comparisons = [], {}
    for dataset in summary["dataset"].drop_duplicates() if len(summary) else []:
        classes = dataset_classes(dataset, summary, stored)
        comparisons[dataset] = compare_families(dataset, summary, stored, classes)
        frames.append(_dataset_frame(dataset, summary, classes[0]))
    frames = [f for f in frames if f is not None]
    if not frames:
        return pd.DataFrame(columns=CSV_COLUMNS), comparisons
    return pd.concat(frames, ignore_index=True)[CSV_COLUMNS].astype({"train_size": "Int64"}), comparisons


def per_class_frame(stored, summary):
    """Every estimator's per-class scores on every dataset (per_class.csv): one row per
    (dataset, estimator, class); `best_of_family` marks the estimators the report shows."""
    return per_class_results(stored, summary)[0]


def _dataset_frame(dataset, summary, scored):
    """per_class_frame's rows of one dataset ([EstimatorClasses] `scored`), or None."""
    size = ranked_train_size(summary, dataset)  # the leaderboard's cells: at most this many per class
    best = {}
    for result in scored:
        best.setdefault(result.family, result)
    frames = []
    for result in scored:
        frame = result.scores.reset_index()
        frames.append(frame.assign(dataset=dataset, estimator=result.estimator, family=result.family,
                                   train_size=size, best_of_family=best[result.family] is result,
                                   folds=result.folds))
    return pd.concat(frames, ignore_index=True) if frames else None


# --- Markdown -------------------------------------------------------------------------------

def _score(value):
    return f"{value:.3f}"


def _by_size(values):
    """Index of `values` largest first, ties by class name."""
    return sorted(values.index, key=lambda c: (-values[c], c))


def _names(names):
    """"a", "a and b", "a, b and c"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def family_sentence(comparison):
    """One sentence on the classes where the pair's F1 differs most, each side's largest first:
    "cnn-fast beats svm-hog-color most on cat (F1 0.610 vs 0.380), dog and bird; svm-hog-color
    is ahead on ship (0.800 vs 0.770)." None without a pair."""
    if comparison.pair is None:
        return None
    first, second = comparison.pair
    difference = comparison.differences()
    ahead = {first.estimator: _by_size(difference[difference > 0]),
             second.estimator: _by_size(-difference[difference < 0])}
    scores = {first.estimator: first.scores["f1"], second.estimator: second.scores["f1"]}
    if not any(len(wins) for wins in ahead.values()):
        return f"{esc(first.estimator)} and {esc(second.estimator)} have the same F1 on every class."
    winner, loser = (first.estimator, second.estimator) if len(ahead[first.estimator]) else \
        (second.estimator, first.estimator)

    def classes(estimator, other, label=""):
        named = ahead[estimator][:NAMED]
        top = named[0]
        figures = f"({label}{_score(scores[estimator][top])} vs {_score(scores[other][top])})"
        return _names([f"{esc(top)} {figures}"] + [esc(c) for c in named[1:]])

    text = f"{esc(winner)} beats {esc(loser)} most on {classes(winner, loser, 'F1 ')}; "
    if len(ahead[loser]):
        return text + f"{esc(loser)} is ahead on {classes(loser, winner)}."
    return text + f"{esc(loser)} is ahead on no class."


def _shown(comparison):
    """(classes to list, in order, how many are left out, how the order was chosen)."""
    if comparison.pair is not None:
        difference = comparison.differences()
        order = _by_size(difference)
        if len(order) <= 2 * SHOWN_EACH_WAY:
            return order, 0, "by F1 difference"
        first = [c for c in order if difference[c] > 0][:SHOWN_EACH_WAY]
        second = [c for c in order if difference[c] < 0][-SHOWN_EACH_WAY:]
        return first + second, len(order) - len(first) - len(second), \
            f"with the {SHOWN_EACH_WAY} largest F1 differences each way"
    only = comparison.best[0].scores
    tested = sorted(only.index[only["support"] > 0])
    if len(tested) <= 2 * SHOWN_EACH_WAY:
        return tested, 0, "by name"
    by_f1 = _by_size(only["f1"][tested])
    shown = by_f1[:SHOWN_EACH_WAY] + by_f1[-SHOWN_EACH_WAY:]
    return shown, len(tested) - len(shown), \
        f"with the {SHOWN_EACH_WAY} highest and the {SHOWN_EACH_WAY} lowest F1, highest first"


def per_class_section(dataset, analysis):
    """The dataset's "Per-class scores" subsection (no lines when no estimator has ok cells),
    rendered from `analysis.family_comparisons` (per_class_results)."""
    from estimators.registry import UNKNOWN_FAMILY

    comparison = analysis.family_comparisons.get(dataset)
    if comparison is None:
        return []
    notes = []
    if comparison.without_predictions:
        notes.append(f"No per-class scores for {', '.join(map(esc, comparison.without_predictions))}: "
                     "the cells hold no out-of-fold predictions (written by an older version of "
                     "this tool; run them again to get them).")
    if comparison.unregistered:
        notes.append(f"Not registered any more (a removed plug-in?), so of family {UNKNOWN_FAMILY}: "
                     f"{', '.join(map(esc, comparison.unregistered))}.")
    lines = ["### Per-class scores", ""]
    best, pair = comparison.best, comparison.pair
    if not best:
        return lines + [" ".join(notes), ""]
    shown = list(pair) + [b for b in best if b not in pair] if pair else best
    classes, left_out, how = _shown(comparison)
    repeated = any(b.images < b.predictions for b in shown)
    uneven = len({tuple(b.scores["support"]) for b in shown}) > 1
    if len({b.folds for b in shown}) == 1:
        folds = f"{'its' if len(shown) == 1 else 'their'} {shown[0].folds} ok fold(s)"
    else:
        folds = "their ok folds (" + ", ".join(f"{esc(b.estimator)} {b.folds}" for b in shown) + ")"
    lines += [
        "Best estimator of each family by mean macro-F1: "
        + ", ".join(f"{esc(b.estimator)} ({esc(b.family)})" for b in best)
        + f". Per-class F1 and recall from the out-of-fold predictions of {folds}, pooled; support: "
        + ("predictions of the class (the repeats score the same test images, so each image "
           "counts once per repeat)" if repeated else "test images of the class")
        + (", each estimator's in column order where they differ (a failed fold)" if uneven else "")
        + f". Classes {how}"
        + (f" ({esc(pair[0].estimator)} minus {esc(pair[1].estimator)})" if pair else "")
        + f"; every estimator's per-class scores are in [{CSV_FILE}]({link_path(CSV_FILE)}).", ""]
    sentence = family_sentence(comparison)
    if sentence:
        lines += [sentence, ""]
    elif len(best) == 1:
        lines += [f"Only the {esc(best[0].family)} family has predictions here: no families to "
                  "compare.", ""]
    difference = comparison.differences() if pair else None
    rows = []
    for name in classes:
        supports = dict.fromkeys(int(b.scores["support"][name]) for b in shown)
        row = [esc(name), "/".join(map(str, supports))]
        for b in shown:
            row += [_score(b.scores["f1"][name]), _score(b.scores["recall"][name])]
        rows.append(row + ([f"{difference[name]:+.3f}"] if pair else []))
    headers = ["class", "support"] + [f"{esc(b.estimator)} {m}" for b in shown for m in ("F1", "recall")]
    lines += [table(rows, headers + (["F1 difference"] if pair else [])), ""]
    if left_out:
        notes.append(f"{left_out} class(es) with smaller differences are left out; {CSV_FILE} has "
                     "them all." if pair else f"{left_out} class(es) in between are left out; "
                     f"{CSV_FILE} has them all.")
    untested = [c for c in best[0].scores.index if all(b.scores["support"][c] == 0 for b in shown)]
    if untested:
        notes.append(f"No test image of {_names(list(map(esc, untested)))} among the pooled "
                     "predictions.")
    return lines + ([" ".join(notes), ""] if notes else [])
