"""Image classifiers with one scikit-learn contract, and the registry that names them.

Every module in this package is imported when the registry is first read, so adding an
estimator is one new file with a `@register(...)` class or factory; `load_plugins` imports
files and modules from anywhere else. What the benchmark needs to know about an estimator
(family, seed/threads/mirror parameters, search space, a CNN's step budget and input size) is
one declaration, its tags: `__benchmark_tags__` (estimators.tags).
"""

from .base import FeatureClassifier
from .keras_cnn import KerasCNN
from .registry import (
    ENTRY_POINT_GROUP,
    PluginWarning,
    create_estimator,
    estimator_spec,
    list_estimators,
    load_plugins,
    register,
)
from .tags import BenchmarkTags, ParameterTags, benchmark_tags

__all__ = [
    "ENTRY_POINT_GROUP",
    "BenchmarkTags",
    "FeatureClassifier",
    "KerasCNN",
    "ParameterTags",
    "PluginWarning",
    "benchmark_tags",
    "create_estimator",
    "estimator_spec",
    "list_estimators",
    "load_plugins",
    "register",
]
