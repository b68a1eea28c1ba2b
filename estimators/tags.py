"""One declaration of what the benchmark needs to know about an estimator: its tags.

In the manner of scikit-learn's `__sklearn_tags__`, an estimator class answers
`__benchmark_tags__()` with a `BenchmarkTags` dataclass; each class calls `super()` and changes
the fields it knows about, so a declaration is merged over the class hierarchy without copying
dictionaries by hand:

    class MyCNN(KerasCNN):
        def __benchmark_tags__(self):
            tags = super().__benchmark_tags__()      # family "cnn", seed, threads, ...
            tags.parameters.mirror_augmentation = "flip"
            tags.search_space = {"learning_rate": loguniform(1e-4, 1e-2)}
            return tags

The fields:

* `family`: "classical", "cnn" or "pretrained" (a `CNNClassifier`/`KerasCNN` subclass is
  "cnn"; a `FeatureClassifier` on a pretrained network's embedding, features.embedding,
  "pretrained"; any other estimator "classical"): drives the scheduling (CNN cells run first),
  the report's family comparisons, calibration and plots. The crossover compares "cnn" with
  "classical", the from-scratch families; "pretrained" started from external data.
* `pretrained_on`: the external data a "pretrained" estimator's network was trained on
  ("ImageNet-1k"), marked beside its name in every leaderboard; None for the others.
* `pretrained_input`: the side, in pixels, to which a "pretrained" estimator's network sees
  each image resized (the report says where that upsamples a dataset's images, and where it
  repeats a grayscale channel as colour); None for the others.
* `parameters`: which of the estimator's parameters play a part the runner knows, by whatever
  name (see estimators.capabilities): `seed`, `threads`, `mirror_augmentation`.
* `search_space`: the parameters `run --tune` searches and where (estimators.tuning).
* `step_budget`: a CNN's `estimators.budget.StepBudget` (how epochs and batch size follow the
  training-set size); None for estimators trained otherwise.
* `min_input_size`, `default_min_input`: a CNN's smallest input side, and the smallest side its
  per-dataset default input size (`input_size=None`) resizes small images up to.

An estimator without `__benchmark_tags__` (any scikit-learn classifier registered as is) gets
`BenchmarkTags()`: classical, nothing declared, so nothing is ever set on it. The declaration is
checked when the estimator is registered (estimators.registry.register), so a typo is one
line when the module loads rather than a failure in every cell.
"""

from dataclasses import dataclass, field, fields

FAMILIES = ("classical", "cnn", "pretrained")
# the class attributes this declaration replaced: a plug-in still using one would silently
# lose what it declares, so registering it is an error naming the replacement
REPLACED_ATTRIBUTES = ("_benchmark_capabilities", "_benchmark_search_space", "step_budget",
                       "min_input_size", "default_min_input")


@dataclass
class ParameterTags:
    """The names of the parameters the runner may set (None: the estimator has none)."""

    seed: str = None  # set to each cell's seed
    threads: str = None  # when left at None, set to the threads each cell may use
    mirror_augmentation: str = None  # a bool switch, set to False where a mirror changes labels

    def as_dict(self):
        """{capability: parameter name} of those declared."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass
class BenchmarkTags:
    """What the benchmark needs to know about an estimator (see the module docstring)."""

    family: str = "classical"
    pretrained_on: str = None
    pretrained_input: int = None
    parameters: ParameterTags = field(default_factory=ParameterTags)
    search_space: dict = field(default_factory=dict)
    step_budget: object = None  # estimators.budget.StepBudget
    min_input_size: int = None
    default_min_input: int = None


class BenchmarkTagsMixin:
    """The root of `__benchmark_tags__` for classes to call `super()` on (estimators.base and
    estimators.cnn derive from it; a plug-in may too)."""

    def __benchmark_tags__(self):
        return BenchmarkTags()


def benchmark_tags(estimator):
    """The BenchmarkTags of `estimator` (an instance); the defaults when it declares none.
    ValueError, one line, when `__benchmark_tags__` does not return a BenchmarkTags."""
    method = getattr(estimator, "__benchmark_tags__", None)
    if method is None:
        return BenchmarkTags()
    tags = method()
    if not isinstance(tags, BenchmarkTags):
        raise ValueError(f"{type(estimator).__name__}.__benchmark_tags__() must return an "
                         f"estimators.tags.BenchmarkTags; got {type(tags).__name__}")
    return tags


def declaration_problems(estimator):
    """[one line per problem] of `estimator`'s declaration: an unknown family, a declared
    parameter it does not have, a malformed search space, a class attribute the tags replaced."""
    name = type(estimator).__name__
    replaced = [a for a in REPLACED_ATTRIBUTES if hasattr(type(estimator), a)]
    if replaced:
        return [f"{name} declares {', '.join(replaced)}, which __benchmark_tags__ replaced: return "
                f"them from __benchmark_tags__() (see estimators.tags)"]
    try:
        tags = benchmark_tags(estimator)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    if tags.family not in FAMILIES:
        problems.append(f"{name} declares family {tags.family!r}; known families: {', '.join(FAMILIES)}")
    params = estimator.get_params(deep=False)
    missing = {cap: p for cap, p in tags.parameters.as_dict().items() if p not in params}
    if missing:
        problems.append(f"{name} declares the parameters {missing} but has no such parameters; "
                        f"its parameters: {', '.join(sorted(params)) or 'none'}")
    problems += search_space_problems(estimator, tags.search_space)
    return problems


def search_space_problems(estimator, space):
    """[one line per problem] of a search space: not a dict, a parameter the estimator does not
    have, values that are neither a non-empty list nor a scipy.stats distribution."""
    name = type(estimator).__name__
    if not isinstance(space, dict):
        return [f"{name}'s search space must be a dict of parameter: values; got {type(space).__name__}"]
    params = estimator.get_params(deep=True)
    unknown = sorted(set(space) - set(params))
    if unknown:
        return [f"{name} declares a search space over {', '.join(map(repr, unknown))}, which it does "
                f"not have; its parameters: {', '.join(sorted(params))}"]
    return [f"{name}'s search space for {param!r} must be a non-empty list of values or a "
            f"scipy.stats distribution; got {values!r}"
            for param, values in space.items()
            if not hasattr(values, "rvs")
            and (isinstance(values, str) or not hasattr(values, "__len__") or len(values) == 0)]
