"""`KerasCNN`: the base class for adding a CNN of your own in one short file.

Everything but the network is here: the common hyper-parameters (in `__init__`, so a subclass
that defines no `__init__` has them all, and scikit-learn's `get_params`, `clone` and
`set_params` see them), input resizing and scaling, the inner validation split, seeding, the
thread budget, the training budget, the loss, the default optimizer, the convergence check and
pickling (all from `estimators.cnn.CNNClassifier`). A subclass writes `build`, and may
override `optimizer`:

    @register("tiny-cnn")  # family "cnn": a KerasCNN is one
    class TinyCNN(KerasCNN):
        def build(self, keras, input_shape, n_classes):
            layers = keras.layers
            return keras.Sequential([keras.Input(input_shape),
                                     layers.Conv2D(16, 3, activation="relu"),
                                     layers.GlobalAveragePooling2D(),
                                     layers.Dense(n_classes)])

A subclass that needs hyper-parameters of its own writes an `__init__` listing the common ones
too (scikit-learn reads the signature), as `cnn-simple` does.
"""

from .cnn import CNNClassifier


class KerasCNN(CNNClassifier):
    """A Keras CNN defined by its `build` method; trained with cross-entropy and Adam.

    Parameters (all the runner and scikit-learn need):

    * `input_size`: square side images are resized to (None: the images' own size, at least
      16 and at most 32 pixels).
    * `epochs`, `batch_size`: None follows the training-set size (`step_budget`, see
      `estimators.budget`); a number fixes it.
    * `learning_rate`: Adam's initial rate, decayed to 0 on a cosine over the training steps.
    * `label_smoothing`: of the cross-entropy loss.
    * `validation_fraction`: share of each class held out of training to report validation
      loss and accuracy per epoch in `history_`.
    * `random_state`: seeds Python, NumPy and TensorFlow (the runner sets it: declared "seed").
    * `n_threads`: TensorFlow's intra-op threads (None: the runner's share of the cores).
    * `verbose`: Keras' progress output during `fit`.

    Hooks: `build(keras, input_shape, n_classes)` returns an uncompiled Keras model mapping a
    batch of images (floats on 0..1, shape `input_shape`) to `n_classes` logits - the base adds
    the scaling in front and a float32 softmax after it. `optimizer(keras)` returns the
    optimizer (the schedule's length is `self.budget_.steps`). `CNNClassifier`'s hooks
    (`_callbacks`, `_predict_proba_batch`) and tags (`__benchmark_tags__`, estimators.tags:
    `step_budget`, `min_input_size`, `default_min_input`, search space) are available too.
    """

    def __init__(
        self,
        input_size=None,
        epochs=None,
        batch_size=None,
        learning_rate=1e-3,
        label_smoothing=0.0,
        validation_fraction=0.1,
        random_state=0,
        n_threads=None,
        verbose=0,
    ):
        self.input_size = input_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.label_smoothing = label_smoothing
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    def build(self, keras, input_shape, n_classes):
        """The network: a Keras model from images on 0..1 to `n_classes` logits."""
        raise NotImplementedError(
            f"{type(self).__name__} must define build(self, keras, input_shape, n_classes) "
            "returning a Keras model that maps images on 0..1 to n_classes logits"
        )

    def optimizer(self, keras):
        """Adam at `learning_rate`, decayed to 0 on a cosine over the fit's optimizer steps."""
        schedule = keras.optimizers.schedules.CosineDecay(float(self.learning_rate), self.budget_.steps)
        return keras.optimizers.Adam(schedule)

    def _build(self, keras, input_shape, n_classes, train_images):
        network = self.build(keras, tuple(input_shape), n_classes)
        inputs = keras.Input(tuple(input_shape))
        logits = network(keras.layers.Rescaling(1 / 255)(inputs))
        # float32 probabilities even when a GPU runs the layers in mixed precision
        outputs = keras.layers.Activation("softmax", dtype="float32")(logits)
        model = keras.Model(inputs, outputs)
        model.compile(
            optimizer=self.optimizer(keras),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=float(self.label_smoothing)),
            metrics=["accuracy"],
        )
        return model
