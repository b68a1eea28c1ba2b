"""The code a computed result depends on, besides its inputs and parameters: its "code identity".

An identity is a plain dict, {"modules": {file: hash}, "libraries": {name: version}}: the
source files of the modules of some classes and every module of this project (estimators/,
features/) or of the classes' own packages that they import, directly or not, imports inside
functions included, hashed whole (an edit to a module-level helper or constant counts); a class
defined where there is no file (a notebook) by its own source or bytecode; and the versions of
the libraries named (importlib.metadata: nothing is imported). Libraries' and the standard
library's modules are not hashed: their versions stand for them.

The feature cache keys each matrix by its extractor's identity (`extractor_identity`); the
benchmark keys each cell by its estimator's (benchmark.execution.code_identity, whose
docstring lists exactly what is and is not part of a cell's key). Both live on this module's
machinery, here at the bottom of the layering so that features/ needs nothing above it.

**The code that runs is the code hashed.** Files are hashed as they are on disk, so a process
that imported a module before its file was edited would run the old code under the new code's
key. Each module object is remembered as this process first hashed it: a module whose file
changed while the same module object stays imported is reported by `edited_since_imported`
(the benchmark refuses to run it: restart Python, or reload the module), and a module imported
anew since (`importlib.reload`, a test's fresh import) or edited makes `workers_outdated` true,
so worker processes started for earlier runs, which may hold the old code, are replaced before
the next cells run.
"""

import ast
import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
from importlib import metadata
from pathlib import Path

PROJECT_PACKAGES = ("estimators", "features")
CLASSICAL_LIBRARIES = ("numpy", "scipy", "scikit-learn", "scikit-image")
# top-level modules identified by their library's version (or not at all: see the docstring),
# never by their files
LIBRARY_MODULES = frozenset({
    "numpy", "scipy", "sklearn", "skimage", "keras", "tensorflow", "tf_keras", "jax", "jaxlib",
    "torch", "joblib", "threadpoolctl", "PIL", "pandas", "matplotlib", "dask", "distributed",
    "builtins",
}) | frozenset(getattr(sys, "stdlib_module_names", ()))
DIGEST_CHARS = 16
# {module name: (module object, digest, file as displayed)} as this process first hashed each
# imported module (see the module docstring); the names whose code changed since workers were
# started; the modules edited on disk while imported here
_AS_HASHED = {}
_CHANGED = set()
_EDITED = {}
PLAIN = (int, float, complex, str, bytes, bool, type(None), tuple, list, dict, set, frozenset)


def extractor_identity(extractor):
    """The code identity of a feature extractor (and of the parts of a FeatureUnion): what its
    features depend on besides the images and its parameters (features.cache keys)."""
    starts, classes = [], []
    for part in extractor_parts(extractor):
        classes += inspect.getmro(type(part))
        starts += class_modules(type(part))
    modules = {**module_digests(starts), **fileless_sources(classes)}
    return {"modules": dict(sorted(modules.items())), "libraries": library_versions(CLASSICAL_LIBRARIES)}


def identity_digest(identity):
    """A short hash of an identity, for keys."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def library_versions(names):
    """{"python": "3.11", name: installed version or None, ...}."""
    versions = {"python": "{}.{}".format(*sys.version_info[:2])}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def changes(old, new):
    """How identity `old` (a stored cell's) differs from `new`: (changed module files, sorted;
    ["name old -> new", ...] for the libraries)."""
    old_modules, new_modules = old.get("modules") or {}, new.get("modules") or {}
    files = sorted(path for path in old_modules.keys() | new_modules.keys()
                   if old_modules.get(path) != new_modules.get(path))
    old_libraries, new_libraries = old.get("libraries") or {}, new.get("libraries") or {}
    libraries = [f"{name} {old_libraries.get(name) or 'none'} -> {new_libraries.get(name) or 'none'}"
                 for name in sorted(old_libraries.keys() | new_libraries.keys())
                 if old_libraries.get(name) != new_libraries.get(name)]
    return files, libraries


def identity_problem(value):
    """What is wrong with `value` as a stored identity, or None."""
    if not isinstance(value, dict) or set(value) != {"modules", "libraries"}:
        return "is not a mapping of modules and libraries"
    modules, libraries = value["modules"], value["libraries"]
    if not isinstance(modules, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in modules.items()):
        return "modules is not a mapping of file to hash"
    if not isinstance(libraries, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in libraries.items()):
        return "libraries is not a mapping of library to version"
    return None


# ---- the modules ---------------------------------------------------------------------------

def extractor_parts(extractor):
    """The extractor and, for a FeatureUnion or Pipeline, every transformer in it (and the
    extractor a `features.mirror.Mirrored` wraps)."""
    found = [extractor]
    inner = getattr(extractor, "extractor", None)
    if inner is not None and hasattr(inner, "transform"):
        found += extractor_parts(inner)
    for attribute in ("transformer_list", "steps"):
        for _, part in getattr(extractor, attribute, None) or ():
            if part not in ("drop", "passthrough", None):
                found += extractor_parts(part)
    return found


def class_modules(cls):
    return [c.__module__ for c in inspect.getmro(cls) if isinstance(getattr(c, "__module__", None), str)]


def fileless_sources(classes):
    """{"<module>:<class>": hash of its source} for the classes (not libraries') whose module
    has no file - defined in a notebook or an interactive session."""
    digests = {}
    for cls in classes:
        module = getattr(cls, "__module__", None)
        if not isinstance(module, str) or _top(module) in LIBRARY_MODULES or _module_file(module):
            continue
        source = _class_source(cls)
        if source is not None:
            digests[f"{module}:{cls.__qualname__}"] = hashlib.sha256(source).hexdigest()[:DIGEST_CHARS]
    return digests


def _class_source(cls):
    """The bytes that stand for a fileless class's code: its source, else (Python < 3.13 finds
    no source for a class of a notebook's __main__) its methods' sources or bytecode, with
    its constants (plain values: no repr that holds a memory address); None when it has
    nothing of either."""
    try:
        return inspect.getsource(cls).encode()
    except (OSError, TypeError):
        pass
    parts = []
    for name, value in sorted(vars(cls).items()):
        function = getattr(value, "__func__", None) or getattr(value, "fget", None) or value
        code = getattr(function, "__code__", None)
        if code is not None:
            try:
                parts.append(f"{name}:{inspect.getsource(function)}")
            except (OSError, TypeError):
                parts.append(f"{name}:{_bytecode(code)}")
        elif not name.startswith("__") and isinstance(value, PLAIN):  # a class constant
            text = repr(value)
            if " at 0x" not in text:  # a container of objects: their addresses change per process
                parts.append(f"{name}={text}")
    return "\n".join(parts).encode() if parts else None


def _bytecode(code):
    """A code object's instructions, names and constants as text, nested code objects (an inner
    function, a comprehension) included the same way: no memory address in it."""
    consts = [_bytecode(c) if inspect.iscode(c) else repr(c) for c in code.co_consts]
    return f"{code.co_code.hex()}|{code.co_names}|{code.co_varnames}|[{', '.join(consts)}]"


def _top(module_name):
    return module_name.split(".")[0]


def module_digests(starts, also=()):
    """{file (as a path from its package root): hash} of the modules `starts` that are not
    libraries', of the modules `also`, and of every module they import within the project's
    packages and the packages of `starts` (not those of `also`: the benchmark's metrics module
    does not make all of `benchmark/` part of a plug-in's identity)."""
    roots = set(PROJECT_PACKAGES) | {_top(m) for m in starts if _top(m) not in LIBRARY_MODULES}
    digests, seen = {}, set()
    pending = [m for m in starts if _top(m) in roots] + list(also)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is None:  # built in, frozen or a namespace package: nothing of ours to hash
            continue
        try:
            content = path.read_bytes()
        except OSError:
            continue
        digest = hashlib.sha256(content).hexdigest()
        digests[_display(name, path)] = digest[:DIGEST_CHARS]
        _note_hashed(name, digest, _display(name, path))
        if path.suffix == ".py":
            pending += [m for m in _resolved_imports(name, path.name == "__init__.py", digest, content, roots)
                        if _top(m) in roots and m not in seen]
    return dict(sorted(digests.items()))


def _note_hashed(name, digest, shown):
    """Remember module `name` as hashed now; note a re-import or an edit since (see the module
    docstring)."""
    module = sys.modules.get(name)
    if module is None or name == "__main__":
        return
    before = _AS_HASHED.get(name)
    if before is None or before[0] is not module:  # first seen, or imported anew since
        if before is not None:
            _CHANGED.add(name)
        _AS_HASHED[name] = (module, digest, shown)
        _EDITED.pop(name, None)
    elif before[1] != digest:  # the file changed under the imported module
        _CHANGED.add(name)
        _EDITED[name] = shown


def edited_since_imported(identities):
    """The files, among the modules of `identities`, edited after this process imported them
    (sorted): their code here is not the code the identities hash."""
    files = {path for identity in identities for path in identity.get("modules", {})}
    return sorted(shown for shown in _EDITED.values() if shown in files)


def workers_outdated():
    """Whether a module was imported anew or edited since `workers_refreshed` (or since this
    process started): worker processes started before may hold its old code."""
    return bool(_CHANGED)


def workers_refreshed():
    """The worker processes were replaced: they import the code as it is now."""
    _CHANGED.clear()


def _module_file(name):
    """The file module `name` is (or would be) loaded from, or None."""
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None) if module is not None else None
    if origin is None and name != "__main__":
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError, AttributeError):
            spec = None
        origin = spec.origin if spec is not None and spec.has_location else None
    return Path(origin) if origin else None


def _display(name, path):
    """`estimators.knn` -> estimators/knn.py; a package's __init__.py keeps its folder; a
    script run as __main__ is its file's name."""
    parts = [] if name == "__main__" else name.split(".")
    if path.name.startswith("__init__."):
        return "/".join(parts + [path.name])
    return "/".join(parts[:-1] + [path.name])


def _resolved_imports(name, is_package, digest, content, roots):
    """The modules of `roots` (top-level packages) that module `name` imports: `from X import y`
    gives X.y when it is a module, else the module that defines y (X when y is not a class or
    function). Imports of other packages are left out before anything is resolved, so no
    library (TensorFlow) is imported here."""
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for level, base, names in _imports(digest, content):
        if level:
            anchor = package.split(".")
            if level > 1:
                anchor = anchor[:-(level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        if not base or _top(base) not in roots:
            continue
        if not names:
            found.append(base)
            continue
        for attribute in names:
            found.append(_defining_module(base, attribute))
    return found


@functools.lru_cache(maxsize=1024)
def _imports(digest, content):
    """[(relative level, module, [names] or None)] of every import statement in the source
    (`digest` keys the cache: the same bytes parse to the same imports)."""
    try:
        tree = ast.parse(content)
    except (SyntaxError, ValueError):
        return ()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(0, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names if alias.name != "*")
            found.append((node.level, node.module or "", names or None))
    return tuple(found)


def _defining_module(base, attribute):
    """The module `from base import attribute` depends on."""
    submodule = f"{base}.{attribute}"
    if submodule in sys.modules:
        return submodule
    try:
        spec = importlib.util.find_spec(base)  # imports base's parent packages only
    except (ImportError, ValueError, AttributeError):
        return base
    if spec is None or spec.submodule_search_locations is None:
        # a plain module: `attribute` is defined there or imported into it, and its own
        # imports are followed in turn, so it is the dependency; it is not imported here (a
        # Keras layers module would load TensorFlow into the parent process)
        return base
    try:
        module = importlib.import_module(base)
    except Exception:  # not importable here: its file (if any) is still hashed
        return base
    value = getattr(module, attribute, None)
    if inspect.ismodule(value):
        return value.__name__
    if value is None:
        try:
            if importlib.util.find_spec(submodule) is not None:
                return submodule
        except (ImportError, ValueError, AttributeError):
            pass
        return base
    if inspect.isclass(value) or inspect.isfunction(value):
        defined = getattr(value, "__module__", None)
        if isinstance(defined, str) and defined:
            return defined
    return base
