"""Which datasets and estimators a run takes, from what a user wrote: names, patterns,
variants and settings, checked before anything runs (UsageError, one line, when one cannot be
used). Shared by the command line and the Python API (benchmark.api)."""

import fnmatch
import os

from benchmark.errors import UsageError


def _available_named(data_dir):
    """([names found on disk], {name: why it is not run}) of the named datasets, for --all."""
    from benchmark.data.catalog import availability, data_dirs
    from benchmark.data import named_datasets

    dirs, origin = data_dirs(data_dir)
    found, missing = [], {}
    for name in named_datasets():
        status = availability(name, dirs, origin)
        if status.status == "available":
            found.append(name)
        elif status.status == "downloadable":
            missing[name] = f"not downloaded yet: `run --datasets {name}` downloads it ({status.where})"
        else:
            missing[name] = status.reason
    return found, missing


def resolve_estimators(value, notes=None):
    """Names from a comma-separated list (or a list) of names, fnmatch patterns and variants
    (`cnn-fast[epochs=20]`), each estimator created and every parameter checked now (ranges,
    features): UsageError, one line, for one that cannot be used - before any cell runs.

    A variant's name comes back canonical (benchmark.execution.variants), and a variant with
    the same parameters as one named before it (`C=1e-3` and `C=0.001`, or a variant that only
    restates the defaults) runs once, under the first name; each such merge is a line appended
    to `notes` (a list) when one is given."""
    from estimators import list_estimators
    from estimators.registry import RENAMED, estimator_spec, renamed_message, unknown_name_message

    from benchmark.execution.variants import canonical_name, is_variant, parse_variant, split_top_level

    known = list_estimators()
    if not value:  # every estimator of the default run (opt-in ones only when named)
        items = [name for name in known if estimator_spec(name).default]
    else:
        items = value if isinstance(value, list) else [p.strip() for p in split_top_level(value) if p.strip()]
    names, spelled = [], {}  # spelled: {canonical name: as first written}
    for item in items:
        if is_variant(item):
            written = item
            try:
                base, _ = parse_variant(item)
                item = canonical_name(item)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            first = spelled.setdefault(item, written)
            if first != written and notes is not None:
                notes.append(f"{first} and {written} are the same estimator, {item}: it runs once")
            if base not in known:
                raise UsageError(renamed_message(base) or unknown_name_message("estimator", base, known))
            matches = [item]
        else:
            matches = fnmatch.filter(known, item)
            if not matches and (item in RENAMED or fnmatch.filter(RENAMED, item)):
                old = item if item in RENAMED else fnmatch.filter(RENAMED, item)[0]
                raise UsageError(renamed_message(old))
        if not matches:
            raise UsageError(unknown_name_message("estimator", item, known))
        names += [m for m in matches if m not in names]
    return _distinct(names, notes)


def _distinct(names, notes):
    """`names` less those whose estimator has the same class and parameters as an earlier
    name's of the same registered entry (the plain name kept where one is plain), each checked
    (UsageError when it cannot be made)."""
    from estimators.registry import base_name

    from benchmark.execution.variants import create_estimator, same_value

    kept, seen = [], []
    for name in names:
        try:
            estimator = create_estimator(name)
        except (ValueError, KeyError) as exc:
            raise UsageError(exc.args[0] if exc.args else str(exc)) from None
        params = estimator.get_params(deep=False)
        at = next((i for i, (base, cls, p) in enumerate(seen)
                   if base == base_name(name) and cls is type(estimator) and p.keys() == params.keys()
                   and all(same_value(p[k], params[k]) for k in p)), None)
        if at is None:
            seen.append((base_name(name), type(estimator), params))
            kept.append(name)
            continue
        if name == base_name(name):  # the plain name wins: its cells keep their keys
            name, kept[at] = kept[at], name
        if notes is not None:
            notes.append(f"{name} has the same parameters as {kept[at]}: they run once, as {kept[at]}")
    return kept


def unavailable_estimators(names, params):
    """{name: why, one line} of the estimators (with their settings `params`) that cannot run on
    this machine: `missing_requirements()` (estimators.base.FeatureClassifier), e.g. a
    pretrained network's weight file that is absent and cannot be fetched."""
    from benchmark.execution.variants import create_estimator

    missing = {}
    for name in names:
        check = getattr(create_estimator(name, **params.get(name, {})), "missing_requirements", None)
        problem = check() if check is not None else None
        if problem:
            missing[name] = problem
    return missing


def estimator_settings(settings, estimators, given=None):
    """{estimator: {param: value}} from `--set NAME.PARAM=VALUE` items (and an experiment file's
    table, `given`, which --set overrides), each checked on the estimator now: UsageError for a
    name not in the run, an unknown parameter, a bad value, the seed (the run's --seed sets it),
    or one parameter set twice to different values by --set."""
    from estimators.capabilities import capabilities

    from benchmark.execution.variants import canonical_name, create_estimator, parse_set, same_value

    params = {}
    for name, values in (given or {}).items():
        try:
            params[canonical_name(name) if name not in estimators else name] = dict(values)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    written = {}  # (name, param): the --set text, to name both of a contradiction
    for text in settings or []:
        try:
            name, param, value = parse_set(text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        earlier = written.get((name, param))
        if earlier is not None and not same_value(params[name][param], value):
            raise UsageError(f"--set {earlier} and --set {text} give {name}.{param} two values; keep one")
        written[(name, param)] = text
        params.setdefault(name, {})[param] = value
    for name, values in params.items():
        if name not in estimators:
            raise UsageError(f"--set {name}.…: {name!r} is not among this run's estimators "
                             f"({', '.join(estimators)})")
        try:
            estimator = create_estimator(name, **values)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        seed = capabilities(estimator).get("seed")
        if seed in values:
            raise UsageError(f"{name}.{seed} is the run's seed: set it with --seed")
    return {name: values for name, values in params.items() if values}


def resolve_datasets(given, all_datasets=False, data_dir=None):
    """([dataset names to run], {named dataset: why --all does not run it}, [notes]) from the
    names `given` (or every available dataset with `all_datasets` and none given); UsageError
    for an unknown name. `folder:X`, `folder:X/` and `folder:./X` are one dataset."""
    from benchmark.data import FOLDER_PREFIX, check_dataset_name, list_datasets

    if all_datasets and not given:
        found, missing = _available_named(data_dir)
        return [name for name, _ in list_datasets()] + found, missing, []
    if not given:
        raise UsageError("choose datasets with --datasets NAME[,NAME...] or run them all with --all")
    names, seen, notes = [], {}, []
    for name in given:
        check_dataset_name(name)
        identity, typed = name, name
        if name.startswith(FOLDER_PREFIX):
            path = name[len(FOLDER_PREFIX):]
            name = FOLDER_PREFIX + os.path.normpath(path)
            identity = FOLDER_PREFIX + os.path.realpath(path)
        if identity in seen:
            notes.append(f"{typed} is the same dataset as {seen[identity]}; it runs once")
            continue
        seen[identity] = name
        names.append(name)
    return names, {}, notes
