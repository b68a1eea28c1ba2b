"""Training budgets that follow the data: a CNN's batch size and epochs from its training-set size.

A recipe's batch size and epochs are chosen on a large dataset (CIFAR-10's 50,000 images). On
a few hundred images the same numbers mean a handful of optimizer steps: `cnn-fast` at batch
512 x 10 epochs takes 20 steps on 640 images, where CIFAR-10 gets 960, and stops undertrained.
The rule, for each recipe's `StepBudget` (defaults `batch_size=None`, `epochs=None`):

1. Batch size: the recipe's batch, halved while an epoch would have fewer than
   `steps_per_epoch` optimizer steps, but never below `min_batch`.
2. Epochs: the recipe's epochs, raised until training takes at least `min_steps` optimizer
   steps, but never above `max_epochs`.

So a large training set trains exactly as the recipe says, and a small one trains for a
similar number of optimizer steps in batches small enough to give each epoch several steps.
Schedules defined over the steps (warm-up, decay) or as shares of the epochs (patience) then
mean the same thing at any size. An explicit `batch_size=` or `epochs=` always wins.

The `TrainingPlan` a CNN actually used is kept on the fitted estimator (`budget_`), and each
runner cell stores it beside the convergence check (`estimators.convergence`).
"""

import math
import numbers
from dataclasses import asdict, dataclass


def check_positive_int(name, value, allow_none=True):
    """`value` as an int >= 1 (or None when allowed); ValueError naming the parameter if not."""
    if value is None and allow_none:
        return None
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or value != int(value) or value < 1):
        auto = " or None (follow the training-set size)" if allow_none else ""
        raise ValueError(f"{name} must be a whole number >= 1{auto}; got {value!r}")
    return int(value)


@dataclass(frozen=True)
class TrainingPlan:
    """What one fit used: batch size, epochs, steps per epoch and in all, and where each came
    from ("recipe", "rule" or "user")."""

    n_train: int
    batch_size: int
    epochs: int
    steps_per_epoch: int
    steps: int
    batch_from: str
    epochs_from: str

    def as_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class StepBudget:
    """A recipe's budget and how it follows the training-set size (see the module docstring)."""

    batch_size: int  # the recipe's batch size, kept while epochs have enough steps
    epochs: int  # the recipe's epochs: the fewest a default fit trains
    min_steps: int  # a default fit trains at least this many optimizer steps ...
    max_epochs: int  # ... unless that would take more epochs than this
    steps_per_epoch: int = 16  # the batch halves until an epoch has at least this many steps
    min_batch: int = 16  # ... but never below this

    def plan(self, n_train, batch_size=None, epochs=None):
        """The TrainingPlan for `n_train` images; `batch_size` / `epochs` (the estimator's
        parameters) override the rule where they are not None."""
        batch_size = check_positive_int("batch_size", batch_size)
        epochs = check_positive_int("epochs", epochs)
        n_train = max(int(n_train), 1)
        if batch_size is not None:
            batch, batch_from = batch_size, "user"
        else:
            batch, batch_from = self.batch_size, "recipe"
            while batch // 2 >= self.min_batch and math.ceil(n_train / batch) < self.steps_per_epoch:
                batch, batch_from = batch // 2, "rule"
        batch = min(batch, n_train)  # a training set smaller than one batch: one full-set step
        steps_per_epoch = math.ceil(n_train / batch)
        if epochs is not None:
            epochs_from = "user"
        else:
            needed = math.ceil(self.min_steps / steps_per_epoch)
            epochs = min(max(self.epochs, needed), self.max_epochs)
            epochs_from = "recipe" if epochs == self.epochs else "rule"
        return TrainingPlan(n_train, batch, epochs, steps_per_epoch, steps_per_epoch * epochs,
                            batch_from, epochs_from)
