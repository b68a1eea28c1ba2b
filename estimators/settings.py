"""Estimator settings without code: variant names and NAME.PARAM=VALUE assignments.

    cnn-fast[epochs=20]                 a variant: the registered cnn-fast with epochs=20, ranked
                                        under that name beside the others
    cnn-fast[epochs=20,batch_size=64]   several parameters
    --set cnn-fast.epochs=20            the run's cnn-fast gets epochs=20 (same name)

Values are Python literals (20, 0.1, True, None, 'text', (3, 3)); anything else is a string.
`configure` refuses unknown parameters (naming the close ones) and bad values: the type of the
parameter's default must match (an int where an int is expected, ...), and estimators that
declare scikit-learn's `_parameter_constraints` are checked against them - before any cell
runs, so a typo costs a one-line error, not a failed run.
"""

import ast
import difflib
import numbers
import re

_VARIANT = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<params>.*)\]$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(__[A-Za-z_][A-Za-z0-9_]*)*$")


def is_variant(name):
    return "[" in name or "]" in name


def parse_value(text):
    """A Python literal, or the text itself (so `features=hog` needs no quotes)."""
    text = text.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def split_top_level(text):
    """Split `a=1,b=(1, 2),c='x,y'` at the commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def parse_assignments(text, where):
    """{param: value} from `a=1,b=2`; ValueError naming `where` when malformed."""
    params = {}
    for part in split_top_level(text):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise ValueError(f"{where}: {part.strip()!r} is not PARAM=VALUE")
        params[key] = parse_value(value)
    return params


def parse_variant(name):
    """(registered name, {param: value}) of `name`; a plain name has no parameters."""
    if not is_variant(name):
        return name, {}
    match = _VARIANT.match(name.strip())
    if not match:
        raise ValueError(f"estimator {name!r}: write a variant as NAME[PARAM=VALUE,...]")
    params = parse_assignments(match["params"], f"estimator {name!r}")
    if not params:
        raise ValueError(f"estimator {name!r}: the brackets hold no PARAM=VALUE")
    return match["base"].strip(), params


_SET = re.compile(r"^(?P<name>.+)\.(?P<param>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$", re.DOTALL)


def parse_set(text):
    """(estimator name, param, value) of `--set NAME.PARAM=VALUE` (NAME may be a variant)."""
    match = _SET.match(text.strip())
    if not match:
        raise ValueError(f"--set {text!r}: write it as ESTIMATOR.PARAM=VALUE (e.g. cnn-fast.epochs=20)")
    return match["name"].strip(), match["param"], parse_value(match["value"])


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
    if not params:
        return estimator
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
    estimator.set_params(**params)
    if getattr(estimator, "_parameter_constraints", None):
        from sklearn.utils._param_validation import InvalidParameterError

        try:
            estimator._validate_params()  # scikit-learn's own check of declared constraints
        except InvalidParameterError as exc:
            raise ValueError(f"{name}: {str(exc).splitlines()[0]}") from None
    return estimator
