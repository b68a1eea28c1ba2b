"""Fine-tuning a pretrained network: a fresh classifier on an ImageNet backbone, trained in two
phases, as the CIFAR-10 study's next step ("the base and the classifier joined") and the
CIFAR-100 study's staged fine-tuning did.

1. The head: the backbone frozen (its batch-norm statistics too), a new dropout + dense layer
   trained for `head_epochs` epochs at `learning_rate` (Adam).
2. The whole network, or its top `unfreeze` layers with weights, trained for the budget's
   epochs at `fine_tune_learning_rate` (Adam, cosine decay to 0), the batch-norm layers kept
   in inference mode (their ImageNet statistics), as Keras' transfer-learning guide advises
   for small datasets.

Everything else is the other CNNs' (estimators.cnn.CNNClassifier): the inner validation split
carved from the training images (no test image is ever seen), the per-epoch history of both
phases in `history_` and the convergence check over it, seeding, threads and pickling.
Augmentation: each training image mirrored with probability 1/2 and shifted by up to 1/16 of
its side (`flip`, off where a mirror changes labels: the runner sets it).

Input: images are resized to `input_size` (None: the backbone's own, 224 for EfficientNet-
Lite0). On a CPU that is the cost: EfficientNet-Lite0 at 224 px takes about 1.2 GFLOP per
image forward, three times that to train, so this estimator is left out of runs that name no
estimators (`default=False`); `input_size=96` or 128 trades accuracy for a 3-5x shorter fit.
"""

from dataclasses import replace
from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions

from features.backbones import BACKBONES, get_backbone

from .budget import StepBudget
from .cnn import CNNClassifier
from .registry import register


class FineTunedCNN(CNNClassifier):
    """A pretrained `backbone` (features.backbones) with a new classifier, trained head first,
    then the backbone (see the module docstring). `weights_dir`: a folder holding the
    backbone's weight file (see features.backbones for where else it is looked for)."""

    _parameter_constraints = {
        **CNNClassifier._parameter_constraints,
        "backbone": [StrOptions(BACKBONES.keys())],  # a live view: backbones added later count
        "head_epochs": [Interval(Integral, 0, None, closed="left")],
        "fine_tune_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "unfreeze": [StrOptions({"all"}), Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "flip": ["boolean"],
    }

    def __init__(self, backbone="efficientnet-lite0", input_size=None, head_epochs=2, epochs=None,
                 batch_size=None, learning_rate=1e-3, fine_tune_learning_rate=1e-4, unfreeze="all",
                 dropout=0.2, label_smoothing=0.1, flip=True, validation_fraction=0.1, weights_dir=None,
                 random_state=0, n_threads=None, verbose=0):
        self.backbone = backbone
        self.input_size = input_size
        self.head_epochs = head_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.fine_tune_learning_rate = fine_tune_learning_rate
        self.unfreeze = unfreeze
        self.dropout = dropout
        self.label_smoothing = label_smoothing
        self.flip = flip
        self.validation_fraction = validation_fraction
        self.weights_dir = weights_dir
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    def __benchmark_tags__(self):
        tags = super().__benchmark_tags__()
        tags.family = "pretrained"
        backbone = get_backbone(self.backbone)
        tags.pretrained_on = backbone.pretrained_on
        tags.pretrained_input = int(self.input_size or backbone.input_size)
        tags.parameters.mirror_augmentation = "flip"
        tags.search_space = {}  # each candidate would be a fine-tuning per inner fold
        # the fine-tuning phase: 8 epochs (at least 200 steps) in batches of 32, as few-epoch
        # fine-tuning recipes do; the head's epochs come before
        tags.step_budget = StepBudget(batch_size=32, epochs=8, min_steps=200, max_epochs=30)
        tags.min_input_size = 32
        return tags

    def missing_requirements(self):
        """None when the backbone's weights are here; else why not (one line)."""
        return get_backbone(self.backbone).problem(self.weights_dir)

    def input_size_for(self, image_shape):
        if self.input_size is None:  # the size the backbone was trained at
            return get_backbone(self.backbone).input_size
        return super().input_size_for(image_shape)

    def _build(self, keras, input_shape, n_classes, train_images):
        from ._keras_layers import BatchFlipTranslate

        spec = get_backbone(self.backbone)
        base = spec.build(keras, str(spec.locate(self.weights_dir)), int(input_shape[0]))
        base.trainable = False
        inputs = keras.Input(tuple(input_shape))
        x = keras.ops.cast(inputs, "float32")
        if input_shape[-1] == 1:  # ImageNet networks take colour: grayscale repeated
            x = keras.ops.repeat(x, 3, axis=-1)
        elif input_shape[-1] > 3:
            x = x[..., :3]
        if self.flip:
            x = BatchFlipTranslate(True, max(1, input_shape[0] // 16), seed=self.seed_, name="flip_translate")(x)
        for layer in spec.preprocessing(keras):
            x = layer(x)
        x = base(x, training=False)  # batch norm in inference mode, in both phases
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dropout(float(self.dropout), seed=self.seed_)(x)
        logits = keras.layers.Dense(n_classes, name="head")(x)
        outputs = keras.layers.Activation("softmax", dtype="float32")(logits)
        model = keras.Model(inputs, outputs)
        self._compile(keras, model, keras.optimizers.Adam(float(self.learning_rate)))
        self.base_name_ = base.name
        return model

    def _compile(self, keras, model, optimizer):
        model.compile(optimizer=optimizer,
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=float(self.label_smoothing)),
                      metrics=["accuracy"])

    def _train(self, keras, model, images, targets, validation):
        history = {}
        if self.head_epochs:
            history = self._fit(model, images, targets, validation, int(self.head_epochs))
        base = model.get_layer(self.base_name_)
        base.trainable = True
        if self.unfreeze != "all":  # only the top `unfreeze` layers with weights
            weighted = [layer for layer in base.layers if layer.weights]
            for layer in weighted[:-int(self.unfreeze)]:
                layer.trainable = False
        for layer in base.layers:  # batch norm keeps its ImageNet statistics and scales
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
        schedule = keras.optimizers.schedules.CosineDecay(float(self.fine_tune_learning_rate), self.budget_.steps)
        self._compile(keras, model, keras.optimizers.Adam(schedule))
        tuned = self._fit(model, images, targets, validation, self.budget_.epochs)
        self.head_epochs_ = len(next(iter(history.values()), []))
        # the plan the convergence check and the report read: both phases, head first
        self.budget_ = replace(self.budget_, epochs=self.head_epochs_ + self.budget_.epochs,
                               steps=self.budget_.steps_per_epoch * (self.head_epochs_ + self.budget_.epochs))
        return {key: history.get(key, []) + values for key, values in tuned.items()}

    def _fit(self, model, images, targets, validation, epochs):
        fitted = model.fit(images, targets, batch_size=self.budget_.batch_size, epochs=epochs,
                           validation_data=validation, shuffle=True, verbose=self.verbose)
        return {key: [float(v) for v in values] for key, values in fitted.history.items()}

    def _custom_objects(self):
        from ._keras_layers import custom_objects

        return custom_objects()


@register("finetune-imagenet", default=False,
          description="EfficientNet-Lite0 pretrained on ImageNet, fine-tuned: head first, then the "
                      "whole network (224 px: opt-in on CPUs)")
def finetune_imagenet():
    return FineTunedCNN()
