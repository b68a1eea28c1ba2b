"""What the benchmark may set on an estimator: declared by the estimator, never guessed.

An estimator class states which of its parameters play a part the runner knows about, in a
class attribute mapping each capability to the parameter's name:

    class MyCNN(ClassifierMixin, BaseEstimator):
        _benchmark_capabilities = {"seed": "random_state", "threads": "n_threads"}

Capabilities (`CAPABILITIES`), and what the runner does with each:

* ``"seed"``: the parameter is set to the run's seed (each cell gets its split's seed: the
  run's seed, plus the repeat number for repeated holdout), so cells are reproducible.
* ``"threads"``: if left at None, the parameter is set to the threads each cell may use.
* ``"mirror_augmentation"``: a boolean switch of mirror (left-right flip) augmentation and
  mirror test-time augmentation; set to False on datasets whose labels a mirror changes
  (`digits`, MNIST).

A parameter that is not declared is never touched, whatever its name: a plug-in whose `flip`
means something else keeps it. Subclasses inherit the declaration and may extend it:
``_benchmark_capabilities = {**Base._benchmark_capabilities, "mirror_augmentation": "flip"}``.

Whether an estimator is heavy (scheduled first) is not a capability: it follows the family
it is registered under (``register(..., family="cnn")``).
"""

CAPABILITIES = ("seed", "threads", "mirror_augmentation")


def capabilities(estimator):
    """{capability: parameter name} declared by `estimator` (a copy; {} when none).

    Raises ValueError for an unknown capability or a declared parameter the estimator does
    not have (`get_params(deep=False)`), so a typo in a declaration fails loudly rather than
    silently leaving the parameter alone.
    """
    declared = dict(getattr(type(estimator), "_benchmark_capabilities", None) or {})
    unknown = sorted(set(declared) - set(CAPABILITIES))
    if unknown:
        raise ValueError(
            f"{type(estimator).__name__} declares unknown benchmark capabilities {unknown}; "
            f"known: {list(CAPABILITIES)}"
        )
    params = estimator.get_params(deep=False)
    missing = {cap: name for cap, name in declared.items() if name not in params}
    if missing:
        raise ValueError(
            f"{type(estimator).__name__} declares benchmark capabilities {missing} but has no "
            f"such parameters; its parameters: {sorted(params)}"
        )
    return declared


def capability_parameter(estimator, capability):
    """The name of the parameter of `estimator` declared for `capability`, or None."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown benchmark capability {capability!r}; known: {list(CAPABILITIES)}")
    return capabilities(estimator).get(capability)
