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

Every key is a `run` option (`max_per_class` for --max-per-class, ...); an option also given on
the command line wins. Unknown keys and values of the wrong type are one-line errors.
"""

import sys
from pathlib import Path

from benchmark.errors import UsageError

# key -> (type(s) accepted, what to say)
KEYS = {
    "datasets": ((list, str), "a list of dataset names"),
    "estimators": ((list, str, dict), "a list of estimator names, or a table of estimators"),
    "folds": (int, "an integer"),
    "seed": (int, "an integer"),
    "protocol": (str, '"auto", "cv" or "holdout"'),
    "repeats": (int, "an integer"),
    "max_per_class": (int, "an integer"),
    "full": (bool, "true or false"),
    "image_size": (int, "an integer"),
    "data_dir": (str, "a path"),
    "out": (str, "a path"),
    "jobs": (int, "an integer"),
    "threads_per_cell": (int, "an integer"),
    "cell_timeout": ((int, float), "a number of seconds"),
    "tune": (bool, "true or false"),
    "tune_budget": ((int, str), 'a number of configurations, or of seconds as "60s"'),
    "tune_folds": (int, "an integer"),
    "groups": (str, 'a regular expression with a capture group, or "near-duplicates"'),
    "groups_file": (str, "a path"),
    "groups_unmatched": (str, '"own-group"'),
    "dedupe": (bool, "true or false"),
    "train_sizes": ((list, str), 'a list of images per class, e.g. [10, 30, 100, "max"]'),
    "keras_backend": (str, '"tensorflow", "jax" or "torch"'),
}
PATHS = ("data_dir", "out", "groups_file")


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the same parser, published for older Pythons
        import tomli as tomllib
    return tomllib


def read_experiment(path):
    """{key: value} of the experiment file at `path`; UsageError when it cannot be used."""
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
        if key not in KEYS:
            import difflib

            close = difflib.get_close_matches(key, list(KEYS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(KEYS)}"
            raise UsageError(f"{path}: unknown key {key!r}; {hint}")
        types, wanted = KEYS[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
            raise UsageError(f"{path}: {key} must be {wanted}; got {value!r}")
    for key in PATHS:  # relative to the file, as a user reading it would expect
        if key in data:
            data[key] = str((path.parent / Path(data[key]).expanduser()).resolve())
    if "datasets" in data:
        data["datasets"] = _names(data["datasets"], path, "datasets")
        data["datasets"] = [_relative_folder(name, path.parent) for name in data["datasets"]]
    if "estimators" in data and not isinstance(data["estimators"], dict):
        data["estimators"] = _names(data["estimators"], path, "estimators")
    if isinstance(data.get("estimators"), dict):
        for name, params in data["estimators"].items():
            if not isinstance(params, dict):
                raise UsageError(f"{path}: [estimators.{name}] must be a table of parameters; got {params!r}")
    return data


def _tuple(types):
    return types if isinstance(types, tuple) else (types,)


def _names(value, path, key):
    names = [value] if isinstance(value, str) else value
    if not all(isinstance(n, str) and n.strip() for n in names):
        raise UsageError(f"{path}: {key} must be a list of names; got {value!r}")
    return [n.strip() for n in names]


def _relative_folder(name, base):
    """folder:PATH relative to the experiment file's folder."""
    from benchmark.data import FOLDER_PREFIX

    if name.startswith(FOLDER_PREFIX):
        folder = Path(name[len(FOLDER_PREFIX):]).expanduser()
        if not folder.is_absolute():
            return FOLDER_PREFIX + str((base / folder).resolve())
    return name


def apply_experiment(args):
    """Fill the run options the command line left unset from `args.experiment`; return the
    {estimator: {param: value}} of its estimators table (empty when it has none)."""
    data = read_experiment(args.experiment)
    params = {}
    for key, value in data.items():
        if key == "datasets":
            if not (args.datasets or args.dataset or args.all):
                args.dataset = value
        elif key == "estimators":
            if args.estimators is None:
                if isinstance(value, dict):
                    params = {name: dict(p) for name, p in value.items()}
                    args.estimators = list(value)
                else:
                    args.estimators = value
        elif key == "full":
            if not args.full and args.max_per_class is None:
                args.full = value
        elif key == "train_sizes":
            if args.train_sizes is None:
                args.train_sizes = value if isinstance(value, str) else ",".join(map(str, value))
        elif key in ("tune", "dedupe"):
            setattr(args, key, getattr(args, key) or value)
        elif key == "tune_budget":
            if args.tune_budget is None:
                args.tune_budget = str(value)
        elif key == "jobs":
            if args.jobs == -1:
                args.jobs = value
        elif getattr(args, key) is None:
            setattr(args, key, Path(value) if key in PATHS else value)
    return params
