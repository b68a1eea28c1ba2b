"""The code a cell's result depends on, besides its data and parameters: its "code identity".

An identity is a plain dict, stored in each cell's JSON and hashed into its key
(benchmark.execution.cell_record.cell_key), so a stored cell is reused only by code that would
compute it the same way:

    {"modules": {"estimators/knn.py": "<sha256 of the file, 16 hex>", ...},
     "libraries": {"python": "3.11", "numpy": "1.26.4", "scikit-learn": "1.5.2", ...}}

**modules**: the source files of

* the module of the estimator's class and of every class in its MRO, the module of its
  registry factory (a function registered with `register`), and, for a `FeatureClassifier`,
  of its feature extractor(s) and their bases;
* `benchmark/execution/metrics.py`, which computes the scores, and `estimators/tuning.py` for
  a tuned cell;
* every module those import, directly or not, that belongs to this project (`estimators`,
  `features`) or to the package of one of the classes above (a plug-in: a file in
  `estimators/`, a file or module given to `estimators.load_plugins` - a file is imported as
  `benchmark_plugin_<stem>` and listed by its file name -, a module of an installed package,
  a test or a script); imports inside functions count. `from package import name` counts the
  module that defines `name`.

Whole files are hashed, not one class's source, so an edit to a module-level helper or constant
(a `_make_head`'s `max_depth`) changes the identity. A class defined where there is no file (a
notebook cell, an interactive session) is identified by its own source (or its methods'),
listed as `<module>:<class>`; the notebook's other cells (a helper it calls) are not.
Modules of the libraries below and of Python's standard library are not hashed: their versions
stand for them.

**libraries**: Python's major.minor version, and the versions (installed distributions, read
with importlib.metadata, nothing imported) of NumPy, SciPy, scikit-learn and scikit-image for
every estimator, plus Keras and its backend's packages (TensorFlow; JAX and jaxlib; PyTorch)
for the CNNs (`CNNClassifier` subclasses).

**Not part of it**, so changing it does not recompute a cell: NumPy's BLAS/LAPACK build, the
CPU's instruction set and the GPU (or CPU) a CNN runs on, the CUDA/cuDNN libraries,
environment variables, Python's patch version, versions of other libraries (joblib,
threadpoolctl, Pillow, pandas: the data are keyed by the pixels actually used), packages a
plug-in imports other than its own and those its classes inherit from, files an estimator
reads at run time, and the rest of the benchmark's own code (`benchmark/` but metrics.py: how
cells are scheduled, split and loaded - the splits and data are keyed by their content).

Resolving `from X import y` imports module X when it belongs to the project or the plug-in's
package (never a library's), as running the estimator would.

The hashing itself (and the check that the code that runs is the code hashed: a module edited
after this process imported it is refused, workers holding an earlier import are replaced) is
features.code_identity's, at the bottom of the layering, which the feature cache uses too.
"""

import inspect

from features.code_identity import (
    CLASSICAL_LIBRARIES, class_modules, extractor_parts, fileless_sources, library_versions, module_digests,
)

ALWAYS = ("benchmark.execution.metrics",)  # the scores' definitions
TUNED = ("estimators.tuning",)  # the search a tuned cell runs first
# distributions the CNNs also depend on, per Keras backend
KERAS_LIBRARIES = {"tensorflow": ("keras", "tensorflow"), "jax": ("keras", "jax", "jaxlib"),
                   "torch": ("keras", "torch")}


def estimator_identity(estimator, factory=None, keras_backend=None, tuned=False):
    """The code identity (see the module docstring) of a cell of `estimator` (an unfitted
    instance), registered through `factory` (a class or function; None: its class), run on
    `keras_backend` when it is a CNN, tuned first when `tuned`."""
    from estimators import FeatureClassifier
    from estimators.cnn import CNNClassifier

    classes = list(inspect.getmro(type(estimator)))
    starts = class_modules(type(estimator))
    if factory is not None and getattr(factory, "__module__", None):
        starts.append(factory.__module__)
    if isinstance(estimator, FeatureClassifier):
        try:
            extractor = estimator.cell_extractor()
        except Exception:  # e.g. an unknown feature name: its cells fail, saying so
            extractor = None
        for part in extractor_parts(extractor) if extractor is not None else ():
            classes += inspect.getmro(type(part))
            starts += class_modules(type(part))
    libraries = CLASSICAL_LIBRARIES
    if isinstance(estimator, CNNClassifier):
        libraries += KERAS_LIBRARIES.get(keras_backend or "tensorflow", ("keras",))
    modules = {**module_digests(starts, ALWAYS + (TUNED if tuned else ())), **fileless_sources(classes)}
    return {"modules": dict(sorted(modules.items())), "libraries": library_versions(libraries)}
