"""The one registry of estimators, filled by the `register` decorator and by plug-ins.

    @register("knn-hog", description="k-nearest neighbours on HOG features")
    class KNNOnHOG(FeatureClassifier): ...

A name may also be given to a function that returns a configured estimator, so one class can
serve several entries with different defaults. Estimators come from:

* the modules of this package, every one imported when the registry is first read;
* `load_plugins(["path/to/file.py", "package.module"])`: files and modules from anywhere (the
  runner's `--plugin`);
* installed packages, through the entry-point group ``image_benchmark.estimators``: each entry
  point names a module (importing it runs its `register` calls) or an estimator class or
  factory (registered under the entry point's name).

A module of any of these that fails to import is one warning naming its file and its error
(`PluginWarning`); the estimators it registered before failing are taken out again, and every
other estimator keeps working.

Registering checks the estimator's declaration (estimators.tags) once, one line per problem:
the family (`family=` may confirm what the class says, never contradict it), the declared
parameters exist, a `FeatureClassifier` has the `features` parameter its extractor is made
from, the defaults satisfy the parameter constraints, and the name is not taken.
"""

import difflib
import fnmatch
import hashlib
import importlib
import importlib.util
import inspect
import os
import pkgutil
import re
import sys
import traceback
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from .tags import FAMILIES, benchmark_tags, declaration_problems

ENTRY_POINT_GROUP = "image_benchmark.estimators"
UNKNOWN_FAMILY = "unknown"  # the family of a name no longer registered (a removed plug-in)
# Names changed by issue 31 (one meaning per suffix, model before features): an old name is
# refused with the new one, and an old run's report still finds the family.
RENAMED = {
    "bagged-trees-art-moments": "bagged-trees-color-moments",
    "bagged-trees-hog-color": "bagged-trees-hog-color-lbp",
    "random-forest-hog-color": "random-forest-hog-color-lbp",
    "gboost-hog-color": "gboost-hog-color-lbp",
    "bovw-svm": "svm-bovw",
    "bovw-color-svm": "svm-bovw-color-hist",
    "patches-kmeans": "logreg-kmeans-patches",
}
PLUGIN_MODULE_PREFIX = "benchmark_plugin_"  # file plug-ins are imported as benchmark_plugin_<stem>


class PluginWarning(UserWarning):
    """An estimator module or plug-in could not be loaded; the others work."""


@dataclass(frozen=True)
class EstimatorSpec:
    name: str
    factory: object  # a class or a function returning an unfitted estimator
    description: str
    family: str
    default: bool = True  # in a run that names no estimators (False: only when named)

    def create(self, params=None, label=None):
        """An unfitted estimator with the {param: value} `params` set and every parameter
        checked (estimators.settings.configure; `label`, for the messages, defaults to the
        entry's name)."""
        from .settings import configure

        return configure(self.factory(), params or {}, label or self.name)


_REGISTRY = {}
_loaded = False


def register(name, *, description=None, family=None, default=True):
    """Class or factory decorator: make the estimator available as `name`.

    The family comes from the estimator's tags (a CNNClassifier/KerasCNN subclass is "cnn");
    `family=` may state it too, and ValueError when it says otherwise. `default=False` leaves
    the estimator out of runs that name no estimators (`run --all`): for estimators too slow for
    the default run, which run when named (or matched by a pattern). ValueError, one line, for a
    name already taken or a declaration that does not hold (see the module docstring)."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"estimator {name!r}: family must be one of {', '.join(FAMILIES)}; got {family!r}")

    def decorator(factory):
        existing = _REGISTRY.get(name)
        if existing is not None and _origin(existing.factory) != _origin(factory):
            raise ValueError(f"estimator name {name!r} is already registered by "
                             f"{_origin(existing.factory)}; register {_origin(factory)} under another name")
        try:
            estimator = factory()
        except Exception as exc:
            raise ValueError(f"estimator {name!r}: {_origin(factory)}() failed: "
                             f"{type(exc).__name__}: {_first_line(exc)}") from None
        problems = declaration_problems(estimator) + _runner_problems(estimator, name)
        if problems:
            raise ValueError(f"estimator {name!r}: {problems[0]}")
        declared = benchmark_tags(estimator).family
        if family is not None and family != declared:
            raise ValueError(f"estimator {name!r}: registered with family={family!r} but "
                             f"{type(estimator).__name__} is of family {declared!r}; drop family=")
        doc = description or (inspect.getdoc(factory) or name).splitlines()[0]
        _REGISTRY[name] = EstimatorSpec(name, factory, doc, declared, bool(default))
        return factory

    return decorator


def _runner_problems(estimator, name):
    """[one line] of what the runner would trip on: a FeatureClassifier whose extractor is made
    from a `features` parameter it lacks; defaults outside the parameter constraints."""
    from .base import FeatureClassifier
    from .settings import check_parameters

    cls = type(estimator)
    if (isinstance(estimator, FeatureClassifier) and cls.feature_extractor is FeatureClassifier.feature_extractor
            and "features" not in estimator.get_params(deep=False)):
        return [f"{cls.__name__} is a FeatureClassifier without a `features` parameter: add "
                f"`features=\"hog\"` (any name of features.FEATURES, joined with '+') to its "
                f"__init__, or override feature_extractor()"]
    try:
        check_parameters(estimator, cls.__name__)
    except ValueError as exc:
        return [f"its defaults do not hold: {exc}"]
    return []


def _origin(factory):
    return f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', repr(factory))}"


def _first_line(exc):
    return (str(exc).strip().splitlines() or [""])[0]


# ---- loading --------------------------------------------------------------------------------

def _load_all():
    """Import every module of this package, then the plug-ins' entry points (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            name = f"{__package__}.{module.name}"
            _guarded(lambda name=name: importlib.import_module(name), _file_of(name))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        def load(ep=ep):
            loaded = ep.load()
            if callable(loaded) and ep.name not in _REGISTRY:
                register(ep.name)(loaded)
        where = _file_of(ep.module) if ep.module else ep.value
        _guarded(load, where, f"{where} (entry point {ep.name!r} = {ep.value})")


def _guarded(load, where, label=None):
    """Run `load` (an import of the file `where`); if it raises, take out what it registered and
    warn once, naming `label` (default `where`) and the error. True when it loaded."""
    before = set(_REGISTRY)
    try:
        load()
        return True
    except Exception as exc:
        for name in set(_REGISTRY) - before:  # no half-registered module
            del _REGISTRY[name]
        filename, lineno = _error_location(exc, where)
        message = (f"{label or where} could not be loaded, so its estimators are left out: "
                   f"{type(exc).__name__}: {_first_line(exc)}")
        warnings.warn_explicit(message, PluginWarning, filename, lineno)
        return False


def _error_location(exc, where):
    """(file, line) where `exc` was raised within the file `where` names, for the warning's
    location (its source line is shown under it); else (`where`, 0)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return exc.filename, exc.lineno or 0
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename and os.path.basename(frame.filename) == os.path.basename(where):
            return frame.filename, frame.lineno or 0
    return where, 0


def _file_of(module_name):
    try:
        spec = importlib.util.find_spec(module_name)
    except Exception:  # a parent package that fails to import: its import names the error
        spec = None
    return spec.origin if spec is not None and spec.origin else module_name


def load_plugins(specs):
    """Import estimator plug-ins: each of `specs` is a Python file's path ("path/to/file.py")
    or an importable module ("package.module"). Returns the names they registered, sorted.

    A file is imported as module `benchmark_plugin_<stem>` (the same name each time, so a cell's
    code identity hashes its source like any module's), and its classes and functions are
    pickled by value, so worker processes, which never import it, run its estimators too.
    ValueError, one line, for a file or module that does not exist; one that exists but fails
    to import is one PluginWarning (see `_guarded`), and the other estimators keep working."""
    _load_all()
    if isinstance(specs, (str, os.PathLike)):
        specs = [specs]
    before = set(_REGISTRY)
    for spec in specs or []:
        text = os.fspath(spec).strip() if isinstance(spec, (str, os.PathLike)) else spec
        if not isinstance(text, str) or not text:
            raise ValueError(f"plug-in {spec!r}: give a Python file's path or a module name (package.module)")
        if text.endswith(".py") or "/" in text or os.sep in text:
            _load_file(Path(text).expanduser())
        else:
            _load_module(text)
    return sorted(set(_REGISTRY) - before)


def _load_file(path):
    if not path.is_file():
        what = "is a folder, not a Python file" if path.is_dir() else "does not exist"
        raise ValueError(f"plug-in file {str(path)!r} {what}; give the path of a .py file that "
                         "registers estimators")
    path = path.resolve()
    name = _plugin_module_name(path)
    if name in sys.modules:  # loaded before, in this process
        return
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)

    def load():
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        _pickle_by_value(module)

    _guarded(load, str(path))


def _plugin_module_name(path):
    """benchmark_plugin_<stem>; with a short hash of the path when another file of the same
    name was loaded first."""
    stem = re.sub(r"\W", "_", path.stem)
    name = PLUGIN_MODULE_PREFIX + stem
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() != path:
        name += "_" + hashlib.sha256(str(path).encode()).hexdigest()[:8]
    return name


def _load_module(name):
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", name):
        raise ValueError(f"plug-in {name!r} is neither a .py file nor a module name (package.module)")
    try:
        found, why = importlib.util.find_spec(name), "no such module"
    except ModuleNotFoundError as exc:  # its package is missing
        found, why = None, _first_line(exc)
    except Exception:  # its package exists but fails to import: warned below, as any broken plug-in
        found, why = True, None
    if found is None:
        raise ValueError(f"plug-in module {name!r} cannot be imported here ({why}); install its "
                         "package, add its folder to PYTHONPATH, or give the file's path")

    def load():
        module = importlib.import_module(name)
        _pickle_by_value(module)

    where = _file_of(name)
    _guarded(load, where, f"{where} (plug-in module {name!r})" if where != name else f"plug-in module {name!r}")


def _pickle_by_value(module):
    """Let worker processes run a plug-in's estimators without importing it: its classes and
    functions travel pickled by value (cloudpickle, and joblib's vendored copy that loky uses)."""
    picklers = []
    for dotted in ("joblib.externals.cloudpickle", "cloudpickle"):
        try:
            picklers.append(importlib.import_module(dotted))
        except ImportError:
            continue
    for pickler in picklers:
        pickler.register_pickle_by_value(module)


# ---- reading --------------------------------------------------------------------------------

def base_name(name):
    """The registered name a variant `NAME[PARAM=VALUE,...]` is made from (`name` itself when it
    is not a variant); the parameters are the runner's to parse."""
    return name.partition("[")[0].strip()


def renamed_message(name):
    """The one-line error for a name that was renamed, or None."""
    new = RENAMED.get(base_name(name))
    return None if new is None else f"estimator {base_name(name)!r} was renamed to {new!r}"


def list_estimators(pattern="*", family=None):
    """Registered names matching the fnmatch `pattern` (and `family`), sorted."""
    _load_all()
    return sorted(
        name
        for name, spec in _REGISTRY.items()
        if fnmatch.fnmatch(name, pattern) and (family is None or spec.family == family)
    )


def estimator_spec(name):
    """The registry entry of `name` (of its registered estimator, for a variant `NAME[P=V]`);
    KeyError, one line, for an unknown or renamed name."""
    _load_all()
    base = base_name(name)
    try:
        return _REGISTRY[base]
    except KeyError:
        raise KeyError(renamed_message(base) or unknown_name_message("estimator", base, _REGISTRY)) from None


# the families whose estimators run Keras: a CNN, or a pretrained network (fine-tuned, or
# computing the embedding its head is fitted on)
KERAS_FAMILIES = ("cnn", "pretrained")


def estimator_family(name):
    """The family of estimator `name` (or variant): "classical", "cnn", ...; a renamed name's is
    its new name's, and UNKNOWN_FAMILY for a name no longer registered, so reports of a run
    made with a removed plug-in or an old name still work."""
    base = base_name(name)
    try:
        return estimator_spec(RENAMED.get(base, base)).family
    except (KeyError, ValueError):
        return UNKNOWN_FAMILY


def create_estimator(name, **params):
    """A new unfitted estimator registered as `name`, with `params` set and every parameter
    checked (ValueError, one line, for an unknown parameter or a bad value). A variant name
    (`cnn-fast[epochs=20]`) is the runner's: benchmark.execution.variants.create_estimator."""
    if "[" in name or "]" in name:
        raise ValueError(f"{name!r} is a variant name, which the runner parses: pass the parameters "
                         f"instead, create_estimator({base_name(name)!r}, PARAM=VALUE, ...)")
    return estimator_spec(name).create(params, label=name)


def unknown_name_message(kind, name, valid):
    close = difflib.get_close_matches(name, list(valid), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}?" if close else f"valid: {', '.join(sorted(valid))}"
    return f"unknown {kind} {name!r}; {hint}"
