"""The one registry of estimators, filled by the `register` decorator and by plug-in packages.

    @register("knn-hog", description="k-nearest neighbours on HOG features")
    class KNNOnHOG(ClassifierMixin, BaseEstimator): ...

A name may also be given to a function that returns a configured estimator, so one class can
serve several entries with different defaults. Out-of-tree packages add estimators through the
entry-point group ``image_benchmark.estimators``: each entry point names a module (importing it
runs its `register` calls) or an estimator class or factory (registered under the entry point's
name).
"""

import difflib
import fnmatch
import importlib
import inspect
import pkgutil
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "image_benchmark.estimators"
FAMILIES = ("classical", "cnn")


@dataclass(frozen=True)
class EstimatorSpec:
    name: str
    factory: object  # a class or a function returning an unfitted estimator
    description: str
    family: str
    default: bool = True  # in a run that names no estimators (False: only when named)

    def create(self, params=None, label=None):
        """An unfitted estimator with the {param: value} `params` set and checked
        (estimators.settings.configure; `label`, for the messages, defaults to the entry's name)."""
        from .settings import configure

        return configure(self.factory(), params or {}, label or self.name)


_REGISTRY = {}
_loaded = False


def register(name, *, description=None, family="classical", default=True):
    """Class or factory decorator: make the estimator available as `name`. `default=False`
    leaves it out of runs that name no estimators (`run --all`): for estimators too slow for
    the default run, which run when named (or matched by a pattern)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}; got {family!r}")

    def decorator(factory):
        doc = description or (inspect.getdoc(factory) or name).splitlines()[0]
        existing = _REGISTRY.get(name)
        if existing is not None and existing.factory is not factory:
            raise ValueError(f"estimator name {name!r} is already registered by {existing.factory}")
        _REGISTRY[name] = EstimatorSpec(name, factory, doc, family, bool(default))
        return factory

    return decorator


def _load_all():
    """Import every module of this package, then the plug-ins' entry points (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__package__}.{module.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
        except Exception as exc:  # a broken plug-in must not take the benchmark down
            warnings.warn(f"could not load estimator plug-in {ep.name!r} ({ep.value}): {exc}")
            continue
        if callable(loaded) and ep.name not in _REGISTRY:
            register(ep.name)(loaded)


def list_estimators(pattern="*", family=None):
    """Registered names matching the fnmatch `pattern` (and `family`), sorted."""
    _load_all()
    return sorted(
        name
        for name, spec in _REGISTRY.items()
        if fnmatch.fnmatch(name, pattern) and (family is None or spec.family == family)
    )


def estimator_spec(name):
    """The registry entry of `name` (of its registered estimator, for a variant `NAME[P=V]`)."""
    from .settings import parse_variant

    _load_all()
    base, _ = parse_variant(name)
    try:
        return _REGISTRY[base]
    except KeyError:
        raise KeyError(unknown_name_message("estimator", base, _REGISTRY)) from None


UNKNOWN_FAMILY = "unknown"  # the family of a name no longer registered (a removed plug-in)


def estimator_family(name):
    """The family of estimator `name` (or variant): "classical", "cnn", ...; UNKNOWN_FAMILY for a
    name no longer registered, so reports of a run made with a removed plug-in still work."""
    try:
        return estimator_spec(name).family
    except (KeyError, ValueError):
        return UNKNOWN_FAMILY


def create_estimator(name, **params):
    """A new unfitted estimator registered as `name`, or the variant `NAME[PARAM=VALUE,...]`
    (see estimators.settings); `params` are set too. ValueError for an unknown parameter or a
    bad value."""
    from .settings import parse_variant

    _, variant = parse_variant(name)
    return estimator_spec(name).create({**variant, **params}, label=name)


def unknown_name_message(kind, name, valid):
    close = difflib.get_close_matches(name, list(valid), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}?" if close else f"valid: {', '.join(sorted(valid))}"
    return f"unknown {kind} {name!r}; {hint}"


# replaced by the estimators branch at merge: a minimal loader, enough for `run --plugin`
def load_plugins(plugins):
    """Import each plug-in of `plugins` (a .py file's path, or a module name) once, so its
    `register` calls run; ValueError, one line, for a file or module that does not exist."""
    import importlib.util
    import sys
    from pathlib import Path

    _load_all()  # the built-in entries first: a plug-in may build on them
    for plugin in plugins or ():
        if plugin.endswith(".py") or "/" in plugin:
            path = Path(plugin).expanduser().resolve()
            if not path.is_file():
                raise ValueError(f"plug-in file {plugin!r} does not exist; give a .py file or a module name")
            name = f"_benchmark_plugin_{abs(hash(str(path)))}"
            if name in sys.modules:  # loaded by an earlier run in this process
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            try:
                importlib.import_module(plugin)
            except ModuleNotFoundError as exc:
                if exc.name is None or not plugin.startswith(exc.name):
                    raise
                raise ValueError(f"plug-in module {plugin!r} cannot be imported (no module named "
                                 f"{exc.name!r}); give a .py file or an installed module's name") from None
