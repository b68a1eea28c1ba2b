"""cnn-fast's and cnn-airbench's recipe parts: whitening, dirac initialisation, the boosted
batch-norm shift, lookahead, the alternating flip and the test-time augmentation views, each
against a reference computed here."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone

from estimators.cnn import keras_for, predict_fixed_batches
from estimators.cnn_fast import AirbenchCNN, FastCNN, whitening_kernel
from estimators.registry import create_estimator
from estimators.tags import benchmark_tags

pytestmark = pytest.mark.slow  # every test here trains a CNN or starts processes


@pytest.fixture
def layers():
    """estimators._keras_layers, imported as the recipe does: after Keras is loaded (1 thread)."""
    keras_for(1)
    from estimators import _keras_layers

    return _keras_layers


def patches_of(images):
    x = images.astype(np.float64) / 255.0
    p = np.lib.stride_tricks.sliding_window_view(x, (2, 2), axis=(1, 2))
    return np.moveaxis(p, -3, -1).reshape(-1, 4 * images.shape[-1])


def correlated_images(n=300, seed=0):
    """Smooth colour images whose channels differ in scale: neighbouring pixels and the channels
    are correlated, so whitening has work to do."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 9, 9, 1)).cumsum(axis=1).cumsum(axis=2)
    base = (base - base.min()) / (base.max() - base.min())
    images = np.concatenate([base, 0.3 * base + 0.1 * rng.random((n, 9, 9, 1)), 0.5 * rng.random((n, 9, 9, 1))], -1)
    return np.clip(images * 255, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("standardize", [False, True])
def test_whitening_kernel_decorrelates_patches_to_unit_variance(standardize):
    images = correlated_images()
    kernel, bias = whitening_kernel(images, eps=1e-12, standardize=standardize)
    out = patches_of(images) @ kernel.reshape(12, 24).astype(np.float64) + bias
    half = out[:, :12]  # the other half is its negative
    np.testing.assert_allclose(out[:, 12:], -half, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(half.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.cov(half, rowvar=False), np.eye(12), atol=2e-3)


def test_standardised_whitening_keeps_more_of_the_small_components():
    """eps is relative to each channel's variance with `standardize`: on 0..1 pixels the same
    eps damps the weakest components far more (airbench whitens normalised images)."""
    images = correlated_images()
    spread = {}
    for standardize in (False, True):
        kernel, bias = whitening_kernel(images, standardize=standardize)
        out = patches_of(images) @ kernel.reshape(12, 24).astype(np.float64) + bias
        spread[standardize] = np.sort(out[:, :12].std(axis=0))
    assert spread[True][0] > 1.5 * spread[False][0]
    assert np.all(spread[True] <= 1.0 + 1e-6) and np.all(spread[False] <= 1.0 + 1e-6)


def test_partial_dirac_passes_the_first_channels_through(layers):
    keras = keras_for(1)
    init = layers.PartialDirac(seed=3)
    kernel = keras.ops.convert_to_numpy(init((3, 3, 4, 6)))
    identity = np.zeros((3, 3, 4, 4))
    identity[1, 1, np.arange(4), np.arange(4)] = 1
    np.testing.assert_array_equal(kernel[:, :, :, :4], identity)
    rest = kernel[:, :, :, 4:]
    assert np.all(np.abs(rest) <= 1 / np.sqrt(36)) and rest.std() > 0.05
    wide_in = keras.ops.convert_to_numpy(init((3, 3, 8, 2)))  # fewer outputs than inputs
    assert wide_in[1, 1, 0, 0] == 1 and wide_in[1, 1, 1, 1] == 1 and np.abs(wide_in).sum() == 2


def test_scaled_bias_learns_scale_squared_faster(layers):
    """One SGD step on loss = sum(output): a ScaledBias(8) moves the output by 64x what a plain
    bias moves it (airbench's 64x learning rate for batch norm's shift)."""
    keras = keras_for(1)
    layer = layers.ScaledBias(8.0)
    x = np.ones((5, 3), np.float32)
    layer.build(x.shape)
    optimizer = keras.optimizers.SGD(0.01)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x))
    optimizer.apply_gradients(zip(tape.gradient(loss, layer.trainable_variables), layer.trainable_variables))
    moved = keras.ops.convert_to_numpy(layer(x))[0] - 1.0
    np.testing.assert_allclose(moved, -64 * 0.01 * 5, rtol=1e-5)  # plain bias: -0.01 * 5


def two_classes(n=160, size=12, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["cat", "dog"])[np.arange(n) % 2]
    X = rng.integers(0, 100, (n, size, size, 3)) + 140 * (y == "dog")[:, None, None, None]
    return X.astype(np.uint8), y


def test_lookahead_leaves_the_slow_weights_in_the_model_and_changes_the_fit(monkeypatch, layers):
    keras = keras_for(1)
    Lookahead = layers.Lookahead
    seen = []
    original = Lookahead.on_train_end if hasattr(Lookahead, "on_train_end") else None

    def on_train_end(self, logs=None):
        seen.append(([s.copy() for s in self.slow], [keras.ops.convert_to_numpy(v.value) for v in self._variables()],
                     self.step))
        if original:
            original(self, logs)

    monkeypatch.setattr(Lookahead, "on_train_end", on_train_end)
    X, y = two_classes()
    params = dict(widths=(8, 8, 8), epochs=3, batch_size=32, input_size=12, validation_fraction=0, n_threads=1)
    with_lookahead = FastCNN(lookahead=True, **params).fit(X, y)
    slow, live, steps = seen[0]
    assert steps == with_lookahead.budget_.steps == 15
    for s, w in zip(slow, live):
        np.testing.assert_array_equal(s, w)
    assert np.mean(with_lookahead.predict(X) == y) == 1.0
    without = FastCNN(lookahead=False, **params).fit(X, y)
    assert not np.allclose(with_lookahead.predict_proba(X), without.predict_proba(X))


def test_alternating_flip_mirrors_every_image_in_every_other_epoch(monkeypatch, layers):
    """flip="alternate" (airbench): the training images come with a random half mirrored, and the
    augmentation layer mirrors all of them in odd epochs and none in even ones."""
    keras = keras_for(1)
    X, y = two_classes(n=64)
    X = X.copy()
    X[:, :, :6] //= 2  # left half darker: a mirror is visible
    layer = layers.BatchFlipTranslate(flip=True, translate=0, seed=1, alternate=True)
    images = X.astype(np.float32)
    out = {}
    for parity in (0, 1):
        layer(images[:1])  # builds
        layer.mirror_all.assign(parity)
        out[parity] = keras.ops.convert_to_numpy(layer(images, training=True))
    np.testing.assert_array_equal(out[0], images)
    np.testing.assert_array_equal(out[1], images[:, :, ::-1])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images, training=False)), images)

    estimator = FastCNN(flip="alternate", widths=(8, 8, 8), epochs=4, batch_size=32, input_size=12,
                        validation_fraction=0, n_threads=1, lookahead=False, bias_lr_scale=1.0)
    estimator.seed_ = 0
    given = estimator._training_images(X)
    mirrored = np.all(given == X[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(mirrored | np.all(given == X, axis=(1, 2, 3))) and 20 < mirrored.sum() < 44

    parities = []
    original = layers.AlternateFlip.on_epoch_begin

    def spy(self, epoch, logs=None):
        original(self, epoch, logs)
        parities.append(int(keras.ops.convert_to_numpy(self.model.get_layer("flip_translate").mirror_all)))

    monkeypatch.setattr(layers.AlternateFlip, "on_epoch_begin", spy)
    assert np.mean(estimator.fit(X, y).predict(X) == y) == 1.0
    assert parities == [0, 1, 0, 1]


@pytest.mark.parametrize("units", [(True, "AMX"), (False, None)], ids=["bf16-units", "no-bf16-units"])
def test_bfloat16_trains_in_float32_with_one_warning_on_a_cpu_without_bfloat16_units(monkeypatch, units):
    monkeypatch.setattr("estimators.cnn_fast.bfloat16_supported", lambda: units)
    X, y = two_classes()
    params = dict(widths=(8, 8, 8), epochs=3, batch_size=32, input_size=12, validation_fraction=0, n_threads=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator = FastCNN(**params).fit(X, y)
    said = [str(w.message) for w in caught if "bfloat16" in str(w.message)]
    convs = {layer.compute_dtype for layer in estimator.model_.layers if type(layer).__name__ == "Conv2D"}
    if units[0]:
        assert estimator.precision_ == "bfloat16" and convs == {"bfloat16"} and said == []
    else:
        assert estimator.precision_ == "float32" and convs == {"float32"}
        assert len(said) == 1 and "training in float32" in said[0], said
    assert np.mean(estimator.predict(X) == y) == 1.0


def test_tta_levels_average_the_documented_views():
    X, y = two_classes()
    estimator = FastCNN(widths=(8, 8, 8), epochs=2, batch_size=32, input_size=12, n_threads=1).fit(X, y)
    model = estimator.model_

    def logits(images):
        return predict_fixed_batches(model, np.ascontiguousarray(images)).astype(np.float64)

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    plain, mirror = logits(X), logits(X[:, :, ::-1])
    padded = np.pad(X, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    up_left, down_right = padded[:, :12, :12], padded[:, 2:, 2:]
    shifted = (logits(up_left) + logits(up_left[:, :, ::-1]) + logits(down_right) + logits(down_right[:, :, ::-1])) / 4
    expected = {0: plain, 1: (plain + mirror) / 2, 2: ((plain + mirror) / 2 + shifted) / 2}
    for level, reference in expected.items():
        estimator.set_params(tta=level)
        np.testing.assert_allclose(estimator.predict_proba(X), softmax(reference), rtol=1e-6, atol=1e-9)
    estimator.set_params(tta=2, flip=False)  # no mirrors when mirrors change labels
    no_mirror = ((plain + (logits(up_left) + logits(down_right)) / 2) / 2)
    np.testing.assert_allclose(estimator.predict_proba(X), softmax(no_mirror), rtol=1e-6, atol=1e-9)


def test_cnn_airbench_is_cnn_fast_at_airbench_width_and_length():
    airbench, fast = create_estimator("cnn-airbench"), create_estimator("cnn-fast")
    assert isinstance(airbench, AirbenchCNN) and isinstance(airbench, FastCNN)
    assert airbench.widths == (64, 256, 256) and fast.widths == (64, 128, 128)
    differing = {k for k, v in airbench.get_params().items() if fast.get_params()[k] != v}
    assert differing == {"widths"}
    plan = benchmark_tags(airbench).step_budget.plan(49000, None, None)
    assert (plan.batch_size, plan.epochs) == (512, 14)
    # a variant, not a copy: the parameters are FastCNN's own, and only the budget (the
    # recipe's 14 epochs, which the rule still stretches on small sets) is declared again
    assert "__init__" not in vars(AirbenchCNN)
    assert "__benchmark_tags__" in vars(AirbenchCNN)
    small = benchmark_tags(airbench).step_budget.plan(300)
    assert (small.batch_size, small.epochs) == (64, 80)
    copy = clone(airbench)
    assert type(copy) is AirbenchCNN and copy.widths == (64, 256, 256)
    assert create_estimator("cnn-fast").set_params(tta=2).tta == 2
    with pytest.raises(ValueError, match="tta"):
        create_estimator("cnn-fast", tta=3)


def test_cnn_airbench_is_opt_in():
    """Three times cnn-fast's cost: a run that names no estimators leaves it out; naming it or a
    pattern that matches it runs it."""
    from benchmark.execution.selection import resolve_estimators
    from estimators.registry import estimator_spec, list_estimators

    default_run = resolve_estimators(None)
    assert "cnn-fast" in default_run and "cnn-airbench" not in default_run
    # the other opt-in entry: fine-tuning a pretrained network at 224 px (estimators.finetune)
    assert set(list_estimators()) - set(default_run) == {"cnn-airbench", "finetune-imagenet"}
    assert not estimator_spec("cnn-airbench").default and estimator_spec("cnn-fast").default
    assert resolve_estimators("cnn-airbench") == ["cnn-airbench"]
    assert "cnn-airbench" in resolve_estimators("cnn-*")
