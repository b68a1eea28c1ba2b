"""The run options, each declared once: its type, default, range, help text, command-line flag,
experiment-file (TOML) key, API keyword and run.json field.

Everything else is derived from `OPTIONS`: the `run` command's argparse parser
(benchmark.cli.run), the experiment-file loader (benchmark.cli.experiment), the keyword
defaults and checks of `run_benchmark` (benchmark.api), the `RunConfig` that run.json records
and `--resume` reads back, and which options a resume refuses. One validator, `check_options`,
serves the three entry points; only the way an option is named differs (`--folds`, `folds` of
exp.toml, `folds`), so a bad value gets the same message wherever it was given:

    --folds must be an integer >= 2; got 2.5

Adding an option is one `Option` here plus the code that uses it (`config.NAME` in the runner).

Only the standard library is imported here: the command line builds its parser from this
module for every command, `list` included.
"""

import math
import os
from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path

MAX_SEED = 2**32 - 1  # NumPy's seed range
MAX_IMAGE_SIZE = 1024  # images are held in memory at that size
PROTOCOLS = ("auto", "cv", "holdout")  # benchmark.data.protocols.PROTOCOLS (tests check them equal)
MAX_SIZE = "max"  # --train-sizes: the whole training part (benchmark.data.protocols.MAX_SIZE)
DEFAULT_TUNE_BUDGET = "8"
DEFAULT_TUNE_FOLDS = 3
AUTO = object()  # Option's flag, toml, api and field: derived from its name

# what a resumed run does with an option given again (Option.on_resume)
REFUSED = "refused"  # part of the run's configuration: it comes from run.json
OVERRIDES = "overrides"  # the run's own from run.json unless given again
FREE = "free"  # not part of the configuration (how to run it, where to print)


@dataclass(frozen=True)
class Option:
    name: str  # the API keyword, the RunConfig field and the key of checked values
    kind: str  # a key of KINDS: how a value is checked and what the messages say it must be
    default: object = None  # None: unset (each use says what unset means)
    help: str = ""
    flag: object = AUTO  # "--folds"; None: not on the command line
    toml: object = AUTO  # the experiment-file key; None: not in experiment files
    api: object = AUTO  # the run_benchmark keyword; None: not in the API
    record: bool = False  # a RunConfig field (run.json), under `name`
    on_resume: str = REFUSED
    minimum: object = None
    maximum: object = None
    choices: tuple = ()
    metavar: str = None
    group: str = None  # the argparse group the flag is listed under in --help
    cli_default: object = None  # the command line's default where it is not `default`
    in_key: bool = False  # part of each cell's key when set (options that move images between splits)
    exclusive: str = None  # the option this one cannot be given with (the later given wins over a file)

    @property
    def cli(self):
        return "--" + self.name.replace("_", "-") if self.flag is AUTO else self.flag

    @property
    def key(self):
        return self.name if self.toml is AUTO else self.toml

    @property
    def keyword(self):
        return self.name if self.api is AUTO else self.api


TUNING = "tuning (the same budget for every estimator)"
LEAKAGE = "leakage (images that share a source stay on one side of every split)"

OPTIONS = (
    Option("datasets", "names", toml="datasets", api="datasets", metavar="DATASETS",
           help="comma-separated dataset names (see `datasets`), or folder:PATH for an image folder"),
    Option("dataset", "name", toml=None, api=None, metavar="NAME",
           help="one more dataset, taken whole (repeatable): for a folder:PATH whose path holds a comma"),
    Option("all", "flag", toml=None, api=None,
           help="every available dataset (the embedded ones and the named ones found locally; see "
           "`datasets`) and, unless --estimators is given, every estimator"),
    Option("estimators", "estimators", metavar="ESTIMATORS",
           help="comma-separated estimator names or patterns (e.g. 'knn-*'); default: all"),
    Option("folds", "int", 5, minimum=2, record=True, help="stratified folds of --protocol cv (default 5)"),
    Option("protocol", "choice", "auto", choices=PROTOCOLS, record=True,
           help="cv: cross-validate on the pooled images; holdout: train on the official train "
           "split, score on its test split; auto (default): holdout for datasets with an official "
           "split and >= 10,000 images, else cv"),
    Option("repeats", "int", 3, minimum=1, record=True,
           help="holdout repeats with seeds SEED, SEED+1, ... (default 3)"),
    Option("max_per_class", "int", minimum=1, metavar="N", record=True, exclusive="full",
           help="use a stratified sample of at most N images per class (per split side for "
           "holdout); default: each dataset's own cap (see `datasets`)"),
    Option("full", "flag", False, record=True, exclusive="max_per_class",
           help="use every image: no sample cap"),
    Option("seed", "int", 0, minimum=0, maximum=MAX_SEED, record=True,
           help="seed of the splits and estimators (default 0)"),
    Option("n_jobs", "jobs", 1, flag="--jobs", toml="jobs", cli_default=-1, on_resume=FREE, metavar="N",
           help="cells run at once: worker processes, or Dask workers of a local cluster (default "
           "-1: cores / --threads-per-cell; the API's n_jobs: 1, no worker processes); scores do not "
           "depend on it"),
    Option("threads_per_cell", "int", 1, minimum=1, metavar="T", record=True, on_resume=OVERRIDES,
           help="BLAS/OpenMP/TensorFlow threads of each cell (default 1, or the resumed run's); jobs "
           "x T must not exceed the cores. CNN scores depend on T (float sums), so it is part of "
           "each cell's key"),
    Option("backend", "choice", "local", choices=("local", "dask"), toml=None, api=None, on_resume=FREE,
           help="local: worker processes on this machine (joblib); dask: a Dask cluster, the one at "
           "--scheduler or a local one"),
    Option("scheduler", "text", toml=None, api=None, metavar="ADDRESS", on_resume=FREE,
           help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (with --backend dask)"),
    Option("cell_timeout", "seconds", metavar="SECONDS", record=True, on_resume=OVERRIDES,
           help="stop a cell that runs longer and mark it failed (default: no limit)"),
    Option("out", "path",
           help="directory for this run's results (default results/<run-id>); running again into "
           "the same directory reuses every finished cell that still matches"),
    Option("resume", "text", toml=None, api=None, metavar="RUN", on_resume=FREE,
           help="finish an interrupted run (directory or run id under results/): its configuration "
           "from run.json, only missing or failed cells computed"),
    Option("image_size", "int", minimum=1, maximum=MAX_IMAGE_SIZE, record=True, metavar="SIZE",
           help="resize folder images to SIZE x SIZE (default: their most common size, at most 64)"),
    Option("data_dir", "path", record=True,
           help="where the named datasets (cifar10, mnist, ...) are looked for first: original "
           "archives or image folders (default: $IMAGE_BENCHMARK_DATA, else [data] dir in "
           "~/.config/image-benchmark/config.ini)"),
    Option("weights_dir", "path", metavar="DIR", record=True,
           help="a folder holding pretrained networks' weight files (docs/pretrained.md), looked "
           "in before Keras' cache (default: $BENCHMARK_WEIGHTS_DIR)"),
    Option("cache_dir", "path", toml=None, metavar="DIR", record=True, on_resume=OVERRIDES,
           help="where the caches are kept between runs: computed features in DIR, decoded image "
           "folders in DIR/folders (default ~/.cache/image-benchmark/features and .../folders)"),
    Option("no_cache", "flag", toml=None, api=None, on_resume=OVERRIDES,
           help="do not read or write the on-disk caches (features, decoded image folders)"),
    Option("quiet", "flag", toml=None, api=None, on_resume=FREE, help="print only the leaderboards"),
    Option("assignments", "assignments", flag="--set", toml=None, api=None, metavar="ESTIMATOR.PARAM=VALUE",
           help="an estimator parameter for this run, e.g. cnn-fast.epochs=20 (repeatable; values "
           "are Python literals). A variant name such as 'cnn-fast[epochs=20]' in --estimators "
           "instead ranks the changed estimator under that name"),
    Option("settings", "settings", flag=None, toml=None,
           help="{estimator: {param: value}}, as --set gives them (an experiment file: its "
           "[estimators.NAME] tables)"),
    Option("tune", "flag", False, group=TUNING,
           help="tune every estimator that declares a search space (see `list`) by a random search "
           "with an inner cross-validation inside each training fold; the test fold is never seen. "
           "Default: each estimator's defaults"),
    Option("tune_budget", "budget", metavar="N|Ns", group=TUNING,
           help="candidates per estimator and training fold, the defaults included (default "
           f"{DEFAULT_TUNE_BUDGET}), or seconds with an s (e.g. 60s: the search then depends on the "
           "machine's speed); implies --tune"),
    Option("tune_folds", "int", minimum=2, metavar="K", group=TUNING,
           help=f"inner stratified folds of the search (default {DEFAULT_TUNE_FOLDS}); implies --tune"),
    Option("groups", "text", metavar="REGEX|near-duplicates", group=LEAKAGE, record=True, in_key=True,
           help="group the images: a regular expression whose first capture group, searched in each "
           "image's path relative to the dataset root, names its group (e.g. '^[^/]+/([a-z]+\\d+)-' "
           "puts airplane3-bicycle2.png and airplane3-clock1.png together), or near-duplicates (the "
           "near-duplicate clusters); cv then keeps each group in one fold, holdout drops the "
           "training images whose group has test images"),
    Option("groups_file", "path", metavar="FILE", group=LEAKAGE, record=True, in_key=True,
           help="the groups from a CSV file of path,group rows (paths relative to the dataset root)"),
    Option("groups_unmatched", "text", metavar="own-group", group=LEAKAGE, record=True, in_key=True,
           help="own-group: each file the regex does not match, or the groups file does not list, "
           "is a group of its own (default: such files are an error)"),
    Option("dedupe", "flag", False, group=LEAKAGE, record=True, in_key=True,
           help="drop near-duplicate images before splitting, keeping one of each cluster"),
    Option("train_sizes", "sizes", metavar="N,N,...|max", record=True,
           help="learning curves: train every estimator on at most N images per class of each "
           "split's training part (a nested, stratified, seeded sample; 'max': all of it), e.g. "
           "10,30,100,max; every size is scored on the same test rows"),
    Option("keras_backend", "text", metavar="NAME", record=True,
           help="the Keras backend the CNNs run on: tensorflow (default), jax (pip install '.[jax]') "
           "or torch (pip install '.[torch]'); default: $KERAS_BACKEND, else tensorflow. Part of "
           "each CNN cell's key"),
    Option("plugins", "plugins", flag="--plugin", metavar="FILE.py|package.module", record=True,
           help="load estimators from a Python file or an importable module before the estimator "
           "names are read (repeatable); recorded in run.json, so --resume loads them again"),
    Option("experiment", "path", flag=None, toml=None, api=None, record=True,
           help="an experiment file: datasets, estimators with their parameters, folds, seed, "
           "protocol, ... (see the README); options given here win over it"),
)
BY_NAME = {option.name: option for option in OPTIONS}
BY_FLAG = {option.cli: option for option in OPTIONS if option.cli}
BY_KEY = {option.key: option for option in OPTIONS if option.key}
BY_KEYWORD = {option.keyword: option for option in OPTIONS if option.keyword}


# ---- checking a value: one message per kind, whichever entry point it came from ----------------

class OptionError(ValueError):
    """A bad value of `option`: `problem` says what it must be and what it got, without the
    option's name, which each entry point puts in front (`named`)."""

    def __init__(self, option, problem):
        super().__init__(f"{option.name} {problem}")
        self.option, self.problem = option, problem

    def named(self, name):
        return f"{name} {self.problem}"


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(option, value):
    if option.maximum is not None:
        wanted = f"an integer from {option.minimum} to {option.maximum}"
    else:
        wanted = f"an integer >= {option.minimum}"
    if not isinstance(value, int) or isinstance(value, bool) or not (
            option.minimum <= value <= (option.maximum if option.maximum is not None else value)):
        raise OptionError(option, f"must be {wanted}; got {value!r}")
    return value


def _jobs(option, value):
    if not isinstance(value, int) or isinstance(value, bool) or not (value == -1 or value >= 1):
        raise OptionError(option, f"must be a positive number of worker processes, or -1 for all "
                                  f"cores; got {value!r}")
    return value


def _seconds(option, value):
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise OptionError(option, f"must be positive: a finite number of seconds; got {value!r}")
    return float(value)


def _flag(option, value):
    if not isinstance(value, bool):
        raise OptionError(option, f"must be true or false; got {value!r}")
    return value


def _choice(option, value):
    if value not in option.choices or not isinstance(value, str):
        listed = ", ".join(repr(c) for c in option.choices)
        raise OptionError(option, f"must be one of {listed}; got {value!r}")
    return value


def _text(option, value):
    if not isinstance(value, str) or not value.strip():
        raise OptionError(option, f"must be non-empty text; got {value!r}")
    return value


def _path(option, value):
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise OptionError(option, f"must be a path; got {value!r}")
    return str(Path(value).expanduser())


def _names(option, value):
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n.strip() for n in names):
        raise OptionError(option, f"must be a name or a list of names; got {value!r}")
    return [n.strip() for n in names]


def _estimators(option, value):
    if value == [] or value == "" or value == ():  # not "the default set": that is None (left out)
        raise OptionError(option, f"must name at least one estimator (leave it out for the default "
                                  f"set); got {value!r}")
    return _names(option, value)


def _sizes(option, value):
    """[int | "max"], sorted, without repeats, "max" last; from "10,30,max" or [10, 30, "max"]."""
    wanted = ("must be images per class, whole numbers >= 1 or 'max', e.g. [10, 30, 100, 'max'] "
              f"or '10,30,100,max'; got {value!r}")
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, (list, tuple)) or not parts:
        raise OptionError(option, wanted)
    sizes = set()
    for part in parts:
        if isinstance(part, str) and part.strip().lower() == MAX_SIZE:
            sizes.add(MAX_SIZE)
            continue
        try:
            size = int(part.strip()) if isinstance(part, str) else part
        except ValueError:
            raise OptionError(option, wanted) from None
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise OptionError(option, wanted)
        sizes.add(size)
    return sorted(s for s in sizes if s != MAX_SIZE) + ([MAX_SIZE] if MAX_SIZE in sizes else [])


def _budget(option, value):
    """"8" (configurations) or "60s" (seconds), as text; also a whole number of configurations."""
    wanted = f"must be a number of configurations (e.g. 8) or of seconds (e.g. '60s'); got {value!r}"
    if _is_number(value):
        if int(value) != value or value < 1:
            raise OptionError(option, wanted)
        return str(int(value))
    if not isinstance(value, str):
        raise OptionError(option, wanted)
    text = value.strip()
    try:
        amount = float(text[:-1]) if text.endswith("s") else int(text)
    except ValueError:
        raise OptionError(option, wanted) from None
    if not (math.isfinite(amount) and amount > 0):
        raise OptionError(option, wanted)
    return text


def _plugins(option, value):
    plugins = [value] if isinstance(value, str) else value
    if not isinstance(plugins, (list, tuple)) or not all(isinstance(p, str) and p.strip() for p in plugins):
        raise OptionError(option, f"must be a list of plug-in files (FILE.py) or module names; got {value!r}")
    return [p.strip() for p in plugins]


def _assignments(option, value):
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise OptionError(option, f"must be a list of ESTIMATOR.PARAM=VALUE; got {value!r}")
    return list(value)


def _settings(option, value):
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, dict)
                                              for k, v in value.items()):
        raise OptionError(option, f"must be a table {{estimator: {{parameter: value}}}}; got {value!r}")
    return {name: dict(params) for name, params in value.items()}


KINDS = {"int": _integer, "jobs": _jobs, "seconds": _seconds, "flag": _flag, "choice": _choice,
         "text": _text, "name": _names, "path": _path, "names": _names, "estimators": _estimators,
         "sizes": _sizes, "budget": _budget, "plugins": _plugins, "assignments": _assignments,
         "settings": _settings}


def check_value(option, value):
    """`value` of `option`, checked and normalised; OptionError, saying what it must be."""
    return KINDS[option.kind](option, value)


def from_text(option, text):
    """A command-line string as the value it spells, for `check_value`: a number for the
    numeric kinds (so "2.5" is refused as 2.5, as in the API and TOML), a list for the names."""
    if option.kind in ("int", "jobs", "seconds"):
        for convert in (int, float):
            try:
                return convert(text)
            except ValueError:
                pass
        return text
    if option.kind == "names":
        return [part.strip() for part in text.split(",") if part.strip()] or text
    if option.kind == "estimators":
        from benchmark.execution.variants import split_top_level  # variants hold commas: cnn-fast[a=1,b=2]

        return [part.strip() for part in split_top_level(text) if part.strip()] or text
    return text


def check_named(option, value, name):
    """check_value, its error a benchmark.errors.UsageError whose message names the option `name`."""
    from benchmark.errors import UsageError

    try:
        return check_value(option, value)
    except OptionError as exc:
        raise UsageError(exc.named(name)) from None


def check_options(given, name):
    """{option name: checked value} of `given` ({option name: value}; a None value is unset),
    and the checks between options; raises benchmark.errors.UsageError, one line, naming each
    option as `name(option)` does (--folds, folds of exp.toml, folds)."""
    from benchmark.errors import UsageError

    checked = {key: check_named(BY_NAME[key], value, name(BY_NAME[key]))
               for key, value in given.items() if value is not None}
    for key, value in checked.items():
        other = BY_NAME[key].exclusive
        if other and key < other and value not in (None, False) and checked.get(other) not in (None, False):
            raise UsageError(f"{name(BY_NAME[key])} and {name(BY_NAME[other])} cannot be given together; "
                             "use one of them")
    return checked


def with_defaults(values, cli=False):
    """`values` with every option left unset at its default (the command line's, with `cli`)."""
    filled = {}
    for option in OPTIONS:
        default = option.cli_default if cli and option.cli_default is not None else option.default
        filled[option.name] = values.get(option.name, default)
    return filled


def tuning_budget(values):
    """The run's estimators.tuning.TuningBudget from checked `values`, or None when none of
    tune, tune_budget and tune_folds asks for tuning."""
    from estimators.tuning import TuningBudget

    if not (values.get("tune") or values.get("tune_budget") is not None or values.get("tune_folds") is not None):
        return None
    folds = values.get("tune_folds") or DEFAULT_TUNE_FOLDS
    return TuningBudget.parse(values.get("tune_budget") or DEFAULT_TUNE_BUDGET, folds)


def key_options(config):
    """The run's options that change which images go where ({"groups": ..., "dedupe": True}),
    for each cell's key: a grouped run's cells are never taken for an ungrouped run's. Only
    those set, so the keys of a run without them are those of earlier versions."""
    return {o.name: getattr(config, o.name) for o in OPTIONS
            if o.in_key and getattr(config, o.name) not in (None, False)}


# ---- the configuration a run is made of: what run.json records and --resume reads back ---------

_DERIVED = (  # fields the run works out from the options (not given as such)
    ("unavailable", dict, field(default_factory=dict)),  # named datasets --all did not run, and why
    # estimators of the default set that cannot run here (a pretrained network's weights
    # missing), and why: {name: reason}
    ("unavailable_estimators", dict, field(default_factory=dict)),
    # keep decoded image folders on disk between runs: True (the default cache folder), a
    # folder's path (--cache-dir DIR: DIR/folders), or False
    ("folder_cache", object, True),
    # folder datasets' absolute locations, {name: path}, so a resume from another working
    # directory still finds them (the name stays as the user gave it)
    ("locations", dict, field(default_factory=dict)),
    # estimator parameters given without code (--set, an experiment file): {name: {param: value}}
    ("params", dict, field(default_factory=dict)),
    # estimators.tuning.TuningBudget.as_dict() ({amount, unit, folds}) of `run --tune`, given to
    # every estimator that declares a search space; None: each estimator's defaults
    ("tune", dict, None),
    ("n_jobs", int, 1),  # worker processes (or Dask workers) for the cells
)
# the CNNs' Keras backend: part of their keys when not the default; None in a run without CNNs
# whose KERAS_BACKEND names no Keras backend. Runs recorded before it existed ran on TensorFlow.
_RECORD_DEFAULTS = {"keras_backend": "tensorflow", "plugins": None}

RunConfig = make_dataclass(
    "RunConfig",
    [("datasets", list), ("estimators", list)]
    + [(o.name, object, _RECORD_DEFAULTS.get(o.name, o.default)) for o in OPTIONS if o.record]
    + list(_DERIVED),
)
RunConfig.__module__ = __name__  # pickled to the workers by reference, as a class written here
RunConfig.__doc__ = ("A run's configuration: the recorded options of benchmark.config.OPTIONS "
                     "(checked) and what the run derived from them; run.json holds it as a dict.")
RECORDED = tuple(f.name for f in fields(RunConfig))


def config_from_record(record):
    """The RunConfig of a run.json "config" record, of this version or an earlier one (a field
    it lacks takes its default); ValueError when it is not one."""
    if not isinstance(record, dict) or not {"datasets", "estimators"} <= set(record):
        raise ValueError("no datasets and estimators recorded")
    return RunConfig(**{k: v for k, v in record.items() if k in RECORDED})
