"""Image classifiers with one scikit-learn contract, and the registry that names them.

Every module in this package is imported when the registry is first read, so adding an
estimator is one new file with a `@register(...)` class or factory.
"""

from .base import FeatureClassifier
from .keras_cnn import KerasCNN
from .registry import (
    ENTRY_POINT_GROUP,
    create_estimator,
    estimator_spec,
    list_estimators,
    register,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "FeatureClassifier",
    "KerasCNN",
    "create_estimator",
    "estimator_spec",
    "list_estimators",
    "register",
]
