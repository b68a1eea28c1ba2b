"""`cnn-simple`: the butterfly and garbage studies' small convolutional network."""

from .cnn import CNNClassifier
from .registry import register


@register(
    "cnn-simple",
    description="small CNN of the butterfly/garbage studies: 4 conv+pool blocks (16-32-64-32), dense 64-32, Adam",
    family="cnn",
)
class SimpleCNN(CNNClassifier):
    """Four blocks of 3x3 convolution + ReLU + 2x2 max-pooling (16, 32, 64, 32 filters), then
    flatten, dense 64 and dense 32 (ReLU, each followed by dropout 0.2) and a softmax; Adam.

    `input_size=None` resizes images to their own size, at least 16 (four poolings) and at
    most 32 pixels a side. The inner validation split (`validation_fraction` of the training
    images) only reports validation loss and accuracy per epoch in `history_`.
    """

    min_input_size = 16

    def __init__(
        self,
        input_size=None,
        epochs=30,
        batch_size=32,
        learning_rate=1e-3,
        dropout=0.2,
        validation_fraction=0.1,
        random_state=0,
        n_threads=None,
        verbose=0,
    ):
        self.input_size = input_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.dropout = dropout
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    def _build(self, keras, input_shape, n_classes, train_images):
        layers = keras.layers
        model = keras.Sequential([keras.Input(input_shape), layers.Rescaling(1 / 255)])
        for filters in (16, 32, 64, 32):
            model.add(layers.Conv2D(filters, 3, padding="same", activation="relu"))
            model.add(layers.MaxPooling2D(2))
        model.add(layers.Flatten())
        for units in (64, 32):
            model.add(layers.Dense(units, activation="relu"))
            model.add(layers.Dropout(self.dropout))
        model.add(layers.Dense(n_classes, activation="softmax", dtype="float32"))
        model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model
