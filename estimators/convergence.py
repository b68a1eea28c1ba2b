"""Did a CNN's training converge? A check of its per-epoch history, kept with every fit.

A score is only evidence about a model if the model was trained to its strength. The check
reads the training curves Keras recorded (`history_`: loss and accuracy on the training
batches of each epoch, augmented as in training) and says why a fit looks unfinished:

* **too short**: fewer than `MIN_EPOCHS` epochs, too few to show a trend;
* **still improving**: over the last quarter of the epochs run (at least 2 epochs), the
  training accuracy rose by at least `ACCURACY_RISE` to less than `FITTED` (above that the
  net fits its training images, and on a small set one image more is such a rise) or the
  training loss fell by at least `LOSS_SHARE` of its whole fall - the curves had not
  flattened when training stopped;
* **stopped on noise**: early stopping ended training before the planned epochs while the
  training accuracy was below `FULLY_FITTED`, judged on an inner validation split of fewer
  than `SMALL_VALIDATION` images - a few dozen images make the validation loss too noisy for
  its best epoch to mean the net had finished (cnn-vgg on `textures`: 61 images, stopped
  after 21-27 of 30 epochs at 0.895 accuracy; 4x the budget 0.958);
* **lost ground**: the last epoch's training loss is above the lowest epoch loss by at least
  `LOST_SHARE` of the fall from the first epoch to that lowest one - training diverged part
  way (a learning rate too high for the batch: cnn-fast at batch 16 on 300 `digits` images
  fell from 2.08 to 1.31, rose back to 1.82 and scored 0.37 macro-F1 where batch 64 scores
  0.99); with schedules that decay, a healthy fit ends at or near its lowest loss;
* **did not learn**: the last epoch's training accuracy is within `CHANCE_MARGIN` of the
  share of the largest class (what always answering that class scores): the net fits its
  own training images no better than a constant would (e.g. every image the same).

The report adds one check that needs the other estimators: training accuracy far below the
best test accuracy on the same dataset (benchmark.diagnostics). These are heuristics; the
budget itself is chosen, and checked, by `benchmarks/budget_sufficiency.py` (the default
budget against 4x that budget on the same folds).
"""

import math

import numpy as np

MIN_EPOCHS = 3
ACCURACY_RISE = 0.02  # absolute training accuracy gained over the last quarter
FITTED = 0.98  # a last-epoch training accuracy from which a late rise is not counted
LOSS_SHARE = 0.10  # share of the loss's whole fall that came in the last quarter
CHANCE_MARGIN = 0.10  # of the distance from the majority share to 1
FULLY_FITTED = 0.99  # an early stop below this training accuracy on a small split is suspect
SMALL_VALIDATION = 200  # inner validation images below which early stopping is noisy
LOST_SHARE = 0.25  # share of the fall to the lowest loss given back by the last epoch


def check_convergence(history, plan, y_train, n_classes, n_validation=0):
    """A JSON-ready dict: the budget used, the curve figures, `undertrained` and `reasons`.
    `n_validation`: images in the inner validation split that early stopping watched."""
    loss = [float(v) for v in history.get("loss", [])]
    accuracy = [float(v) for v in history.get("accuracy", [])]
    epochs = len(loss)
    counts = np.bincount(np.asarray(y_train, dtype=int), minlength=n_classes)
    chance = float(counts.max() / max(counts.sum(), 1))
    result = {
        **plan.as_dict(),
        "epochs_run": epochs,
        "stopped_early": epochs < plan.epochs,
        "validation_images": int(n_validation),
        "chance_accuracy": round(chance, 4),
        "train_accuracy": round(accuracy[-1], 4) if accuracy else None,
        "window_epochs": None,
        "accuracy_rise": None,
        "loss_share": None,
        "undertrained": False,
        "reasons": [],
    }
    reasons = result["reasons"]
    if epochs < MIN_EPOCHS:
        reasons.append(f"too short: {epochs} epoch(s) of {plan.steps_per_epoch} step(s), too few "
                       f"to show that training converged (at least {MIN_EPOCHS} needed)")
    else:
        window = max(2, math.ceil(epochs / 4))
        start = epochs - 1 - window  # the epoch before the window: the window's rise is from there
        result["window_epochs"] = window
        if accuracy:
            result["accuracy_rise"] = round(accuracy[-1] - accuracy[start], 4)
        fall = max(loss) - loss[-1]
        if np.isfinite(fall) and fall > 0:
            result["loss_share"] = round((loss[start] - loss[-1]) / fall, 4)
        rising = (result["accuracy_rise"] is not None and result["accuracy_rise"] >= ACCURACY_RISE
                  and accuracy[-1] < FITTED)
        falling = result["loss_share"] is not None and result["loss_share"] >= LOSS_SHARE
        if rising or falling:
            evidence = []
            if result["accuracy_rise"] is not None:
                evidence.append(f"training accuracy {accuracy[start]:.3f} → {accuracy[-1]:.3f}")
            if result["loss_share"] is not None:
                evidence.append(f"loss {loss[start]:.3f} → {loss[-1]:.3f} "
                                f"({result['loss_share']:.0%} of its whole fall)")
            reasons.append(f"still improving over the last {window} of {epochs} epochs: "
                           + ", ".join(evidence))
    if (accuracy and epochs < plan.epochs and 0 < n_validation < SMALL_VALIDATION
            and accuracy[-1] < FULLY_FITTED):
        reasons.append(f"stopped on noise: early stopping ended training after {epochs} of "
                       f"{plan.epochs} epochs, judged on {n_validation} validation images, with "
                       f"the training accuracy at {accuracy[-1]:.3f}")
    finite = [v for v in loss if np.isfinite(v)]
    if len(finite) == len(loss) >= MIN_EPOCHS:
        lowest = min(loss)
        if loss[-1] - lowest >= LOST_SHARE * (loss[0] - lowest) > 0:
            reasons.append(f"lost ground: the training loss fell from {loss[0]:.3f} to "
                           f"{lowest:.3f}, then rose back to {loss[-1]:.3f} by the last epoch "
                           "(training diverged part way)")
    if accuracy and accuracy[-1] <= chance + CHANCE_MARGIN * (1 - chance):
        reasons.append(f"did not learn: training accuracy {accuracy[-1]:.3f}, where always "
                       f"answering the largest class scores {chance:.3f}")
    if not all(np.isfinite(loss)):
        reasons.append("the training loss became NaN or infinite")
    result["undertrained"] = bool(reasons)
    return result
