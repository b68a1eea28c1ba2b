"""The order cells are listed in: the run's datasets, then its estimators, as configured."""


def plan_order(datasets, estimators):
    """Sort key (dataset position, estimator position) following the configured order; names
    the configuration does not hold (a run.json edited by hand) come after, by name."""
    dataset_position = {n: i for i, n in enumerate(datasets)}
    estimator_position = {n: i for i, n in enumerate(estimators)}
    big = len(dataset_position) + len(estimator_position) + 1
    return lambda d, e: (dataset_position.get(d, big), d, estimator_position.get(e, big), e)
