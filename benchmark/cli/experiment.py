"""Experiment files: a run's configuration in TOML, run with `python -m benchmark run FILE.toml`.

    datasets = ["digits", "faces", "folder:~/photos"]
    folds = 5
    seed = 0
    protocol = "auto"            # or "cv", "holdout"

    # either a list of names (patterns and variants such as "cnn-fast[epochs=20]" allowed) ...
    estimators = ["knn-hog", "logreg-*"]

    # ... or a table: each estimator with the parameters it gets (like --set; same name)
    [estimators.cnn-fast]
    epochs = 20

Every key is a `run` option (benchmark.config.OPTIONS: `max_per_class` for --max-per-class,
`plugins` for --plugin, ...), checked as the command line and the API check it; an option also
given on the command line wins, and a note says so. Unknown keys and bad values are one-line
errors naming the file and the key.
"""

import json
import shlex
import sys
from pathlib import Path

from benchmark.errors import UsageError


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the same parser, published for older Pythons
        import tomli as tomllib
    return tomllib


def read_experiment(path):
    """{key: value} of the experiment file at `path`, each value checked as the run option of
    that key (benchmark.config.OPTIONS: the same checks and messages as --flag and the API,
    the option named "FILE: key"); paths and folder datasets relative to the file, and an
    estimators table ({estimator: {param: value}}) kept as a table. UsageError, one line,
    when it cannot be used."""
    from benchmark.config import BY_KEY, check_named

    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"experiment file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read experiment file {str(path)!r} ({exc})") from None
    try:
        data = _toml().loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    for key, value in data.items():
        option = BY_KEY.get(key)
        if option is None:
            import difflib

            close = difflib.get_close_matches(key, list(BY_KEY), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(BY_KEY)}"
            raise UsageError(f"{path}: unknown key {key!r}; {hint}")
        if key == "estimators" and isinstance(value, dict):
            for name, params in value.items():
                if not isinstance(params, dict):
                    raise UsageError(f"{path}: [estimators.{name}] must be a table of parameters; got {params!r}")
            continue
        data[key] = check_named(option, value, f"{path}: {key}")
        if option.kind == "path":  # relative to the file, as a user reading it would expect
            data[key] = str((path.parent / data[key]).resolve())
    if "datasets" in data:
        data["datasets"] = [_relative_folder(name, path.parent) for name in data["datasets"]]
    if "plugins" in data:
        data["plugins"] = [str((path.parent / p).resolve()) if p.endswith(".py") or "/" in p else p
                           for p in data["plugins"]]
    return data


def _relative_folder(name, base):
    """folder:PATH relative to the experiment file's folder."""
    from benchmark.data import FOLDER_PREFIX

    if name.startswith(FOLDER_PREFIX):
        folder = Path(name[len(FOLDER_PREFIX):]).expanduser()
        if not folder.is_absolute():
            return FOLDER_PREFIX + str((base / folder).resolve())
    return name


# the command line's ways to choose the datasets: any of them replaces the file's list
DATASET_OPTIONS = ("datasets", "dataset", "all")


def merge_experiment(given, typed, path):
    """({option name: value}, {estimator: {param: value}} of the file's estimators table, [notes])
    of the run: the experiment file's options with those given on the command line (`given`,
    checked; `typed`, as typed) in their place, each such replacement said in a note, e.g.
    "--folds 3 overrides folds = 5 of exp.toml".

    An estimators table's settings are kept when --estimators chooses the estimators: the file
    says how each estimator is set up, the command line which of them run this time (a
    --estimators knn-hog that dropped knn-hog's table would silently run other parameters)."""
    from benchmark.config import BY_KEY, BY_NAME

    data = read_experiment(path)
    name = Path(path).name
    from_file = {BY_KEY[key].name: value for key, value in data.items()}
    table = from_file.get("estimators") if isinstance(from_file.get("estimators"), dict) else None
    if table is not None:
        from_file["estimators"] = list(table)
    values, notes = dict(from_file), []

    def replaced(option_name, by):
        option = BY_NAME[option_name]
        notes.append(f"{_typed(BY_NAME[by], typed.get(by))} overrides {option.key} = "
                     f"{_toml_value(data[option.key])} of {name}")
        values.pop(option_name, None)

    for key in given:
        option = BY_NAME[key]
        if key in DATASET_OPTIONS and "datasets" in from_file:
            if "datasets" in values:
                replaced("datasets", key)
        elif key in from_file and from_file[key] != given[key]:
            replaced(key, key)
        elif option.exclusive in from_file and option.exclusive not in given:
            replaced(option.exclusive, key)
        values[key] = given[key]
    if table is not None and "estimators" in given:
        kept = [n for n in table if n in values["estimators"]]
        if kept:
            notes.append(f"the [estimators.NAME] settings of {name} are kept for {', '.join(kept)}")
    return values, table, notes


def _typed(option, value):
    """An option as it was typed: --folds 3, --full, --dataset a --dataset b."""
    if value is None or value is True:
        return option.cli
    values = value if isinstance(value, list) else [value]
    return " ".join(f"{option.cli} {shlex.quote(str(v))}" for v in values)


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # an estimators table
        return "[" + ", ".join(json.dumps(k) for k in value) + "]"
    return json.dumps(value)
