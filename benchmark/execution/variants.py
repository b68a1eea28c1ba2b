"""Estimator settings without code, as a user writes them: variant names and NAME.PARAM=VALUE.

    cnn-fast[epochs=20]                 a variant: the registered cnn-fast with epochs=20, ranked
                                        under that name beside the others
    cnn-fast[epochs=20,batch_size=64]   several parameters
    --set cnn-fast.epochs=20            the run's cnn-fast gets epochs=20 (same name)

Values are Python literals (20, 0.1, True, None, 'text', (3, 3)); anything else is a string.
A variant's name is canonical: each value as Python writes it (`repr`), so `C=1e-3` and
`C=0.001` are one estimator, `logreg-pixels[C=0.001]`, whose cells are shared by every
spelling. The same parameter twice with different values is refused; twice with the same
value is the same as once. The estimator side (estimators.settings.configure) sets and checks
the values; this module only reads what was written.
"""

import ast
import re

from estimators.registry import estimator_spec

_VARIANT = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<params>.*)\]$", re.DOTALL)
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(__[A-Za-z_][A-Za-z0-9_]*)*$")
_SET = re.compile(r"^(?P<name>.+)\.(?P<param>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$", re.DOTALL)


def is_variant(name):
    return "[" in name or "]" in name


def parse_value(text):
    """A Python literal, or the text itself (so `features=hog` needs no quotes)."""
    text = text.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
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


def same_value(a, b):
    """Whether two parsed values are the same setting (1e-3 and 0.001 are; 1 and True are not)."""
    return _comparable(a) == _comparable(b)


def _comparable(value):
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    return ("other", repr(value))


def parse_assignments(text, where):
    """{param: value} from `a=1,b=2`; ValueError naming `where` when malformed or when a
    parameter is given two different values."""
    params = {}
    for part in split_top_level(text):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise ValueError(f"{where}: {part.strip()!r} is not PARAM=VALUE")
        value = parse_value(value)
        if key in params and not same_value(params[key], value):
            raise ValueError(f"{where}: {key} is given twice, as {params[key]!r} and {value!r}; keep one")
        params[key] = value
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


def variant_name(base, params):
    """The canonical name of `base` with `params`: each value as `repr` writes it, in the order
    given; `base` itself when there are none."""
    if not params:
        return base
    return f"{base}[{','.join(f'{key}={value!r}' for key, value in params.items())}]"


def canonical_name(name):
    """`name` with its variant's values written canonically (`knn-hog[n_neighbors=3]` stays,
    `logreg-pixels[C=1e-3]` is `logreg-pixels[C=0.001]`); ValueError when malformed."""
    return variant_name(*parse_variant(name))


def parse_set(text):
    """(estimator name, param, value) of `--set NAME.PARAM=VALUE` (NAME may be a variant, and
    comes back canonical)."""
    match = _SET.match(text.strip())
    if not match:
        raise ValueError(f"--set {text!r}: write it as ESTIMATOR.PARAM=VALUE (e.g. cnn-fast.epochs=20)")
    return canonical_name(match["name"].strip()), match["param"], parse_value(match["value"])


def create_estimator(name, **params):
    """A new unfitted estimator for `name`, a registered name or a variant `NAME[PARAM=VALUE,...]`,
    with `params` set too (they win over the variant's); ValueError for an unknown parameter or
    a bad value, KeyError for an unknown name."""
    base, variant = parse_variant(name)
    return estimator_spec(base).create({**variant, **params}, label=name)
