"""What the benchmark may set on an estimator: declared by the estimator, never guessed.

An estimator states which of its parameters play a part the runner knows about in its tags
(estimators.tags), by whatever name:

    class MyCNN(KerasCNN):
        def __benchmark_tags__(self):
            tags = super().__benchmark_tags__()
            tags.parameters.mirror_augmentation = "flip"
            return tags

Capabilities (`CAPABILITIES`), and what the runner does with each:

* ``"seed"``: the parameter is set to the run's seed (each cell gets its split's seed: the
  run's seed, plus the repeat number for repeated holdout), so cells are reproducible.
* ``"threads"``: if left at None, the parameter is set to the threads each cell may use.
* ``"mirror_augmentation"``: a boolean switch of mirror (left-right flip) augmentation and
  mirror test-time augmentation; set to False on datasets whose labels a mirror changes
  (`digits`, MNIST).

A parameter that is not declared is never touched, whatever its name: a plug-in whose `flip`
means something else keeps it. Whether an estimator is heavy (scheduled first) is not a
capability: it follows its family (tags.family, "cnn" for every CNNClassifier).
"""

from dataclasses import fields

from .tags import ParameterTags, benchmark_tags

CAPABILITIES = tuple(f.name for f in fields(ParameterTags))


def capabilities(estimator):
    """{capability: parameter name} declared by `estimator` ({} when none).

    Raises ValueError for a declared parameter the estimator does not have
    (`get_params(deep=False)`), so a typo in a declaration fails loudly rather than silently
    leaving the parameter alone (registration checks the same, once).
    """
    declared = benchmark_tags(estimator).parameters.as_dict()
    params = estimator.get_params(deep=False)
    missing = {cap: name for cap, name in declared.items() if name not in params}
    if missing:
        raise ValueError(
            f"{type(estimator).__name__} declares the parameters {missing} but has no such "
            f"parameters; its parameters: {sorted(params)}"
        )
    return declared


def capability_parameter(estimator, capability):
    """The name of the parameter of `estimator` declared for `capability`, or None."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown benchmark capability {capability!r}; known: {list(CAPABILITIES)}")
    return capabilities(estimator).get(capability)
