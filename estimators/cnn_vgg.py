"""`cnn-vgg`: the CIFAR studies' VGG-style network with batch norm, L2, dropout and augmentation."""

import math

from .budget import StepBudget, check_positive_int
from .cnn import CNNClassifier
from .registry import register
from .tags import benchmark_tags


PATIENCE_SHARES = (0.1, 0.2)  # learning-rate and stopping patience, as shares of the planned epochs
WATCH_AFTER = 0.5  # neither callback acts before this share of the budget's minimum steps has run


@register(
    "cnn-vgg",
    description="VGG-style CNN of the CIFAR studies: 3x2 conv+BN (32-64-128), dropout, L2, augmentation, early stopping",
)
class VGGCNN(CNNClassifier):
    """Three blocks of two 3x3 convolutions (32, 64, 128 filters; ReLU, each followed by batch
    norm), then 2x2 max-pooling and dropout (0.25, 0.3, 0.35); flatten, dense 256 with dropout
    0.5, softmax. L2 `conv_l2` on the convolutions and `dense_l2` on the dense layers.

    Trained with Adam (`learning_rate`), ReduceLROnPlateau (factor 0.1) and EarlyStopping (best
    weights restored), both watching the loss on the inner validation split carved out of the
    training images - never the test fold. Training batches are augmented (random horizontal
    flip, rotation, zoom, contrast and brightness, `augment` = 5% each; rotation and zoom as one
    batched warp, estimators._keras_layers.BatchRotateZoom); the augmentation layers
    are inactive on validation and test images. `flip=False` drops the mirror flip (the runner
    does so on datasets whose labels do not survive a mirror, such as digits).

    Budget (`epochs=None`, `batch_size=None`; see `estimators.budget`): the studies' batch 64
    and 30 epochs on large sets (CIFAR-10: 704 steps an epoch, so exactly their recipe); on
    small sets the batch halves until an epoch has 16 steps (not below 16), for at least 500
    steps where 30 epochs allow - the epochs never grow beyond the studies' 30, as each extra
    epoch costs run time that this recipe turns into accuracy slowly (below). Patience
    (`lr_patience`, `stop_patience`, None) is a share of the planned epochs - 10% and 20%, at
    least the studies' 3 and 6 - and neither callback acts before 250 steps (half the minimum)
    have run: from the second epoch on CIFAR-10, so the studies' recipe there is unchanged.

    Why (item 2 of issue 13, `shapes`, fold 0 of the runner's 5 folds, 2 threads): with the
    studies' fixed budget (batch 64, patience 3 / 6 epochs from the first) cnn-vgg scored
    0.325, near chance. Not a bug: its training accuracy sat at 0.3-0.4 for the first
    ~700 optimizer steps whatever the schedule, and with 9 steps an epoch early stopping fired
    inside that plateau (after 14 epochs, 126 steps), the plateau schedule having already cut
    the learning rate. The cause is the recipe's dropout (0.25 / 0.3 / 0.35 after the blocks,
    0.5 before the output): at the same 1,440 steps (batch 16 x 40 epochs, no early stopping)
    it scored 0.800 with dropout and 0.912 without (training accuracy 0.80 vs 1.00); without
    augmentation, L2 and label smoothing but with dropout 0.562; a 10% learning-rate warm-up
    did not help (0.819 vs 0.875 at 1,008 steps). Given enough steps the recipe itself is
    sound: batch 16 x 110 epochs (3,960 steps, 112 s) scored 0.988. So on a few hundred
    images this recipe needs ~100 passes over the data, about 6x cnn-fast's fit time for the
    same accuracy. 56 epochs at batch 32 (1,008 steps) gave 0.870 over 5 folds in `run --all`
    (67 s a fold) and 0.922 on textures; the default (30 epochs at batch 32, 540 steps) gave
    0.495 on shapes and 0.895 on textures, about the old cost. It stops short to keep `run
    --all` within 10 minutes, and the convergence check marks such fits as still improving in
    the report. Pass `epochs=110, batch_size=16` for the full-strength fit.

    Batch norm's moving statistics use `bn_momentum=0.9` rather than Keras' 0.99, lowered
    further when an epoch has few steps (to 0.1 ** (1 / steps per epoch), so one epoch leaves
    at most 10% of the initial statistics): on the small embedded datasets (3-20 steps per
    epoch) 0.99 leaves the inference statistics far from the data for many epochs, validation
    loss looks terrible, early stopping fires on a half-trained net, and the net predicts one
    class. On CIFAR-10 (700 steps per epoch) this changes nothing.

    Label smoothing (`label_smoothing=0.1`) is this project's addition to the studies' recipe
    (set it to 0 for their plain cross-entropy). On `digits` in the runner (5 folds, 2 workers
    of 1 thread, mean accuracy at seeds 0 / 1 / 2): 0.9900 / 0.9800 / 0.9872 without it (mean
    0.9857), 0.9944 / 0.9878 / 0.9900 with it (mean 0.9907). A 32-px input instead of 16
    (0.9894 at seed 0, 4x the cost) and batch 32 instead of 64 (0.9889) did not help: with
    144 inner-validation images, early stopping fires on noise after 12-25 epochs.
    """

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.parameters.mirror_augmentation = "flip"
        tags.min_input_size = 8
        tags.step_budget = StepBudget(batch_size=64, epochs=30, min_steps=500, max_epochs=30)
        return tags

    def __init__(
        self,
        input_size=None,
        epochs=None,
        batch_size=None,
        learning_rate=1e-3,
        conv_l2=1e-5,
        dense_l2=1e-4,
        augment=0.05,
        flip=True,
        label_smoothing=0.1,
        bn_momentum=0.9,
        lr_patience=None,
        stop_patience=None,
        validation_fraction=0.1,
        random_state=0,
        n_threads=None,
        verbose=0,
    ):
        self.input_size = input_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.conv_l2 = conv_l2
        self.dense_l2 = dense_l2
        self.augment = augment
        self.flip = flip
        self.label_smoothing = label_smoothing
        self.bn_momentum = bn_momentum
        self.lr_patience = lr_patience
        self.stop_patience = stop_patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    def _build(self, keras, input_shape, n_classes, train_images):
        from ._keras_layers import BatchRotateZoom

        layers, l2 = keras.layers, keras.regularizers.L2
        # Batch norm's inference statistics must be mostly data, not their initial values, after
        # one epoch: on small datasets (a few steps per epoch) the momentum is lowered to match.
        steps_per_epoch = self.budget_.steps_per_epoch
        bn_momentum = min(float(self.bn_momentum), 0.1 ** (1 / steps_per_epoch))
        model = keras.Sequential([keras.Input(input_shape), layers.Rescaling(1 / 255)])
        if self.augment:
            a = float(self.augment)
            if self.flip:
                model.add(layers.RandomFlip("horizontal"))
            model.add(BatchRotateZoom(a, a, seed=self.seed_, name="rotate_zoom"))
            model.add(layers.RandomContrast(a))
            model.add(layers.RandomBrightness(a, value_range=(0.0, 1.0)))
        for filters, dropout in ((32, 0.25), (64, 0.3), (128, 0.35)):
            for _ in range(2):
                model.add(layers.Conv2D(filters, 3, padding="same", activation="relu",
                                        kernel_regularizer=l2(self.conv_l2)))
                model.add(layers.BatchNormalization(momentum=bn_momentum))
            model.add(layers.MaxPooling2D(2))
            model.add(layers.Dropout(dropout))
        model.add(layers.Flatten())
        model.add(layers.Dense(256, activation="relu", kernel_regularizer=l2(self.dense_l2)))
        model.add(layers.Dropout(0.5))
        model.add(layers.Dense(n_classes, activation="softmax", kernel_regularizer=l2(self.dense_l2),
                               dtype="float32"))
        model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=float(self.label_smoothing)),
            metrics=["accuracy"],
        )
        return model

    def watch_plan(self):
        """(learning-rate patience, stopping patience, first epoch watched), in epochs.

        Patience defaults to a share of the planned epochs (`PATIENCE_SHARES`), at least the
        studies' 3 and 6 epochs (what they are on CIFAR-10's 30); neither callback acts before
        `WATCH_AFTER` of the budget's minimum steps have run (see the class docstring)."""
        plan = self.budget_
        lr_share, stop_share = PATIENCE_SHARES
        lr = check_positive_int("lr_patience", self.lr_patience) or max(3, round(lr_share * plan.epochs))
        stop = check_positive_int("stop_patience", self.stop_patience) or max(6, round(stop_share * plan.epochs))
        start = math.ceil(WATCH_AFTER * benchmark_tags(self).step_budget.min_steps / plan.steps_per_epoch)
        return lr, stop, start

    def _callbacks(self, keras, has_validation):
        if not has_validation:  # nothing may watch the test fold: train the full schedule
            return []
        lr_patience, stop_patience, start = self.watch_plan()

        class LateReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
            """Keras' ReduceLROnPlateau, blind to the first `start` epochs (as EarlyStopping's
            `start_from_epoch`)."""

            def on_epoch_end(self, epoch, logs=None):
                if epoch >= start:
                    super().on_epoch_end(epoch, logs)

        return [
            LateReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=lr_patience),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=stop_patience,
                                          restore_best_weights=True, start_from_epoch=start),
        ]
