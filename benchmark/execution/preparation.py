"""Dataset preparation for a run: load each dataset, drop or group its near-duplicates, plan
its splits, and cut each split's training part to the run's training sizes. What comes out
(datasets, splits, summaries) is what the run loop (benchmark.execution.runner) makes cells of.
"""

import functools
import threading
from pathlib import Path

import numpy as np

from estimators import FeatureClassifier
from features import pretrained_parts
from features.cache import FeatureCache, is_cacheable
from features.mirror import without_mirror

from benchmark.errors import failure_line
from benchmark.execution.store import is_output
from benchmark.data import DatasetError, default_max_per_class, load_dataset
from benchmark.data.groups import NEAR_DUPLICATES
from benchmark.data.near_duplicates import describe as describe_near_duplicates
from benchmark.data.protocols import MAX_SIZE, Split, nested_training_samples, plan_splits
from benchmark.execution.variants import create_estimator


def prepare_datasets(config, backend, run_dir=None):
    """[(dataset, splits, summary, skip reason, feature cache entries)] for each dataset of
    `config`, in order (see `_prepare`); `run_dir`, this run's output, is never read as images.

    Datasets are independent, so when the backend's workers share this machine's files
    (`backend.map_here`) they prepare all but the first in parallel, while this process
    prepares the first (and does not wait for the workers to start): with two workers this
    halves the wait before the first cell, most of a small run's serial part. Otherwise, or
    if a worker dies, they are prepared here, one by one.
    """
    extractors = _cacheable_extractors(config)
    calls = [(_prepare, (config, name, extractors, run_dir)) for name in config.datasets]
    mapper = getattr(backend, "map_here", None)
    if mapper is None or len(calls) < 2:
        return [function(*args) for function, args in calls]
    others = {}

    def in_workers():
        try:
            results = mapper(calls[1:])
            others["results"] = None if results is None else list(results)
        except Exception:  # e.g. a worker killed while loading: they are prepared here
            others["results"] = None

    thread = threading.Thread(target=in_workers, daemon=True)
    thread.start()
    first = _prepare(*calls[0][1])
    thread.join()
    return [first] + (others["results"] or [function(*args) for function, args in calls[1:]])


def _cacheable_extractors(config):
    """The deterministic feature extractors of the run's estimators (see features.cache)."""
    extractors = []
    for estimator_name in config.estimators:
        try:
            template = create_estimator(estimator_name, **config.params.get(estimator_name, {}))
        except Exception:  # reported for each dataset, when its cells are made
            continue
        if isinstance(template, FeatureClassifier):
            extractor = template.cell_extractor()
            if is_cacheable(extractor):
                extractors.append(extractor)
            if config.n_jobs == 1:
                # the cells then run in this process too: a pretrained network's embedding gets
                # the threads a cell gets, since a Keras backend keeps the thread count it
                # first ran with (estimators.keras_backend) and a CNN cell would get no other
                for part in pretrained_parts(extractor):
                    part.set_params(n_jobs=config.threads_per_cell)
    return extractors


def _prepare(config, dataset_name, extractors, run_dir=None):
    """Load, sample and describe one dataset, and compute its features for `extractors`:
    (dataset subset actually used, splits, summary, None, feature cache entries), or
    (None, None, summary or None, skip reason, {}) when it cannot be run.

    A worker process can run this: everything it returns is plain data. An extractor that
    fails here is left out; the runner computes it again, and fails its cells with the error.
    """
    dataset, splits, summary, reason = _load(config, dataset_name, run_dir)
    cache = FeatureCache(config.cache_dir)
    if dataset is not None:
        for extractor in extractors:
            if not dataset.mirror_invariant:  # the runner turns mirroring off there
                extractor = without_mirror(extractor)
            try:
                cache.transform(extractor, dataset.images, summary["fingerprint"])
            except Exception:
                pass
    return dataset, splits, summary, reason, cache.entries()


def _load(config, dataset_name, run_dir=None):
    """(dataset subset actually used, splits, summary, None), or (None, None, summary or None,
    the reason it is skipped).

    Near-duplicates (benchmark.data.near_duplicates) are looked for among the images the run
    uses; among all the loaded ones first when --dedupe drops them or --groups near-duplicates
    groups by them, before splitting. The summary's "near_duplicates" says how many test images
    have one on their training side; its pair table and the rows of the images --dedupe dropped
    travel under "near_duplicate_table"."""
    summary = None
    try:
        dataset = load_dataset(dataset_name, image_size=config.image_size, seed=config.seed,
                               data_dir=config.data_dir, folder_cache=config.folder_cache,
                               location=(config.locations or {}).get(dataset_name),
                               leave_out=functools.partial(is_output, run_dir))
        cap = None if config.full else (config.max_per_class or default_max_per_class(dataset_name))
        found, deduped, dropped = None, None, []
        try:
            if config.dedupe or config.groups == NEAR_DUPLICATES:
                found = _near_duplicates(config, dataset)
            if config.dedupe:
                dataset, found, deduped, dropped = _dedupe(dataset, found)
            groups, group_facts = _groups(config, dataset, found)
            split_plan = plan_splits(dataset, protocol=config.protocol, folds=config.folds,
                                     repeats=config.repeats, max_per_class=cap, seed=config.seed,
                                     groups=groups, group_facts=group_facts,
                                     resampled=any(s != MAX_SIZE for s in config.train_sizes or []))
        except DatasetError:  # skipped: the report still describes what was loaded
            summary = dataset.summary()
            raise
        sampling = split_plan.describe(dataset.labels)
        if deduped is not None:
            sampling["dedupe"] = deduped
        dataset = dataset.subset(split_plan.rows)  # the summary describes the images actually used
        summary = dataset.summary()
        found = (found.restrict(split_plan.rows) if found is not None
                 else _near_duplicates(config, dataset, summary["fingerprint"]))
        facts, table = describe_near_duplicates(found, dataset.labels, dataset.paths, split_plan.splits)
        summary.update(sampling=sampling, near_duplicates=facts, near_duplicate_table=(table, dropped))
        return dataset, split_plan.splits, summary, None
    except DatasetError as exc:
        return None, None, summary, str(exc)
    except Exception as exc:  # a loader bug must not end the run
        return None, None, summary, failure_line(exc)


def _near_duplicates(config, dataset, fingerprint=None):
    """benchmark.data.near_duplicates.find_near_duplicates of `dataset`'s images, kept on disk
    beside the features (keyed by the images' fingerprint, hashed here unless given) unless the
    run has no cache."""
    from benchmark.data.near_duplicates import cached_near_duplicates

    directory = Path(config.cache_dir) / "near-duplicates" if config.cache_dir else None
    return cached_near_duplicates(dataset.images, fingerprint or dataset.fingerprint, directory)


def _dedupe(dataset, found):
    """(`dataset` with one image kept of each near-duplicate cluster, the pairs left among the
    kept images, facts for the report, a row per dropped image for the near-duplicates CSV;
    see benchmark.data.near_duplicates.describe_dedupe). A cluster keeps an official training
    image where it has one, so the official test split only loses images that are copies of
    training ones; otherwise its first image, whatever the others' classes."""
    from benchmark.data.near_duplicates import describe_dedupe

    prefer = None if dataset.split is None else np.asarray(dataset.split) == "train"
    keep = found.keep_one(prefer)
    facts, rows = describe_dedupe(found, keep, dataset.labels, dataset.paths)
    return dataset.subset(keep), found.restrict(keep), facts, rows


def _groups(config, dataset, found=None):
    """(each image's group, their facts) for the whole loaded dataset as the run's grouping asks,
    or (None, None) when it asks none; DatasetError when this dataset cannot be grouped so.
    `found`: the dataset's near-duplicates, when already computed."""
    from benchmark.data.groups import Grouping, assign_groups

    if config.groups is None and config.groups_file is None:
        return None, None
    grouping = Grouping(config.groups, config.groups_file, config.groups_unmatched)
    clusters = _near_duplicate_clusters(dataset, found) if grouping.near_duplicates else None
    return assign_groups(dataset, grouping, clusters)


def _near_duplicate_clusters(dataset, found=None):
    """The near-duplicate cluster of each image of `dataset` (an int id; singletons their own)."""
    if found is None:
        from benchmark.data.near_duplicates import find_near_duplicates

        found = find_near_duplicates(dataset.images)
    return found.clusters()


def sized_splits(splits, labels, config):
    """([(fold, train_size, Split)], capped): each split as it is (train_size None), or, with
    `config.train_sizes`, once per size with its training rows cut to a nested, stratified,
    seeded sample of at most that many images per class ("max": the whole training part, whose
    cells are the plain run's, so they are reused and ranked in the leaderboards). `capped`:
    {size: {class: the fewest training images it had in any split}} for the classes that had
    fewer than the size, and so use all theirs (the report says so)."""
    if not config.train_sizes:
        return [(fold, None, split) for fold, split in enumerate(splits)], {}
    sized, capped = [], {}
    for fold, split in enumerate(splits):
        samples, short = nested_training_samples(labels, split.train, config.train_sizes, (config.seed, fold))
        for size in config.train_sizes:
            sized.append((fold, None if size == MAX_SIZE else size, Split(samples[size], split.test, split.seed)))
        for size, classes in short.items():
            fewest = capped.setdefault(str(size), {})
            for label, available in classes.items():
                fewest[label] = min(available, fewest.get(label, available))
    return sized, capped


def save_near_duplicates(store, dataset_name, summary):
    """Write the near-duplicate table that `_load` put in `summary` (every pair, and the images
    --dedupe dropped) to a CSV in `store` (a RunStore), and name the CSV in the summary in its
    place: run.json keeps the counts and examples."""
    table = summary.pop("near_duplicate_table", None)
    if table is None:
        return
    csv = store.save_near_duplicates(dataset_name, *table)
    summary["near_duplicates"]["csv"] = csv
    if "dedupe" in summary.get("sampling", {}):
        summary["sampling"]["dedupe"]["csv"] = csv
