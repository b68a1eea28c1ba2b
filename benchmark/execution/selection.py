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


def resolve_estimators(value):
    """Names from a comma-separated list (or a list) of names, fnmatch patterns and variants
    (`cnn-fast[epochs=20]`, checked here: its parameters must exist and fit); UsageError if not."""
    from estimators import create_estimator, list_estimators
    from estimators.registry import estimator_spec, unknown_name_message
    from estimators.settings import is_variant, parse_variant, split_top_level

    known = list_estimators()
    if not value:  # every estimator of the default run (opt-in ones only when named)
        return [name for name in known if estimator_spec(name).default]
    items = value if isinstance(value, list) else [p.strip() for p in split_top_level(value) if p.strip()]
    names = []
    for item in items:
        if is_variant(item):
            try:
                base, _ = parse_variant(item)
                if base not in known:
                    raise UsageError(unknown_name_message("estimator", base, known))
                create_estimator(item)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            matches = [item]
        else:
            matches = fnmatch.filter(known, item)
        if not matches:
            raise UsageError(unknown_name_message("estimator", item, known))
        names += [m for m in matches if m not in names]
    return names


def estimator_settings(settings, estimators, given=None):
    """{estimator: {param: value}} from `--set NAME.PARAM=VALUE` items (and an experiment file's
    table, `given`), each checked on the estimator now: UsageError for a name not in the run,
    an unknown parameter, a bad value, or the seed (the run's --seed sets it)."""
    from estimators import create_estimator
    from estimators.capabilities import capabilities
    from estimators.settings import parse_set

    params = {name: dict(p) for name, p in (given or {}).items()}
    for text in settings or []:
        try:
            name, param, value = parse_set(text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
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
