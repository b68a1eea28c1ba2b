"""Setting parameters on an estimator without code, and checking them all before any cell runs.

`configure` sets {param: value} on an estimator (from a variant name or `--set`, which the
runner parses: benchmark.execution.variants) and refuses unknown parameters (naming the close
ones) and bad values: the type of the parameter's default must match (an int where an int is
expected, ...). `check_parameters` then checks every parameter, given or default, against the
estimator's scikit-learn `_parameter_constraints` (the ranges: `n_neighbors=0`, `C=-1`) and, for
a FeatureClassifier, that its `features` make an extractor - so a typo costs a one-line error
before the run, not a failed cell per fold.
"""

import difflib
import numbers

from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints


def _type_error(param, value, default):
    """Why `value` cannot replace `default` (None when it can)."""
    if default is None or value is None:
        return None
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        wanted = "True or False"
    elif isinstance(default, numbers.Integral):
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        wanted = "an integer"
    elif isinstance(default, numbers.Real):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        wanted = "a number"
    elif isinstance(default, str):
        ok = isinstance(value, str)
        wanted = "a string"
    else:
        return None
    return None if ok else f"{param} must be {wanted} (default {default!r}); got {value!r}"


def configure(estimator, params, name):
    """Set `params` on `estimator` (registered as `name`) and check them; ValueError, one line,
    for an unknown parameter or a bad value."""
    current = estimator.get_params(deep=False)
    for param, value in params.items():
        if param not in current:
            close = difflib.get_close_matches(param, list(current), n=3, cutoff=0.5)
            hint = (f"did you mean {' or '.join(close)}?" if close
                    else f"its parameters: {', '.join(sorted(current)) or 'none'}")
            raise ValueError(f"{name} has no parameter {param!r}; {hint}")
        declared = getattr(estimator, "_parameter_constraints", None) or {}
        # a parameter with declared constraints (e.g. "auto" or a count) is checked by them
        # below; the others must keep their default's type
        problem = None if param in declared else _type_error(param, value, current[param])
        if problem:
            raise ValueError(f"{name}: {problem}")
    if params:
        estimator.set_params(**params)
    check_parameters(estimator, name)
    return estimator


def check_parameters(estimator, name):
    """ValueError, one line naming `name`, when a parameter of `estimator` is outside its
    `_parameter_constraints` (scikit-learn's declaration, checked by scikit-learn's own
    validator) or, for a FeatureClassifier, its features cannot be made."""
    from .base import FeatureClassifier

    constraints = getattr(estimator, "_parameter_constraints", None)
    if constraints:
        try:
            validate_parameter_constraints(constraints, estimator.get_params(deep=False),
                                           caller_name=type(estimator).__name__)
        except InvalidParameterError as exc:
            raise ValueError(f"{name}: {str(exc).splitlines()[0]}") from None
    if isinstance(estimator, FeatureClassifier):
        try:
            estimator.cell_extractor()
        except Exception as exc:  # e.g. an unknown feature name, or a features value of the wrong kind
            raise ValueError(f"{name}: {(str(exc).strip().splitlines() or [type(exc).__name__])[0]}") from None
