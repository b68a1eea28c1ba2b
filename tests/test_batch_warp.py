"""cnn-vgg's rotation-and-zoom augmentation (estimators._keras_layers.BatchRotateZoom): one
batched affine warp, equal to scipy's reference resampling, seeded, inactive at inference.
The same warp on the other Keras backends: tests/test_keras_backends.py."""

import numpy as np
import pytest
from scipy import ndimage

from estimators.cnn import keras_for



@pytest.fixture
def layers():
    keras_for(1)
    from estimators import _keras_layers
    return _keras_layers


def warp_case(seed=0, n=5, height=13, width=17):
    """Images and (n, 6) transforms: large angles and zooms, so that the warp reads far
    outside the image (the reflection) as well as inside."""
    rng = np.random.default_rng(seed)
    images = rng.random((n, height, width, 3)).astype(np.float32)
    angle, scale = rng.uniform(-1.5, 1.5, n), rng.uniform(0.5, 1.8, n)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    transforms = np.stack([cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy], 1)
    return images, transforms.astype(np.float32)


def scipy_warp(images, transforms):
    """The reference: scipy.ndimage.affine_transform, bilinear, mode "reflect" (d c b a | a b c d)."""
    out = np.empty_like(images)
    for i, (a0, a1, a2, b0, b1, b2) in enumerate(transforms):
        for c in range(images.shape[-1]):  # (row, column) coordinates: rows read b, columns a
            out[i, :, :, c] = ndimage.affine_transform(images[i, :, :, c], [[b1, b0], [a1, a0]],
                                                       offset=[b2, a2], order=1, mode="reflect")
    return out


def test_the_warps_equal_scipys_resampling_and_the_drawn_transforms_rotate_about_the_centre(layers):
    import keras

    images, transforms = warp_case()
    expected = scipy_warp(images, transforms)
    for warp in (layers.affine_warp, layers.warp):  # the gathers, and this backend's choice
        np.testing.assert_allclose(keras.ops.convert_to_numpy(warp(images, transforms)), expected, atol=1e-5)
    # the transforms the layer draws: a rotation and a zoom about the centre
    angle, scale = np.float32([0.3, -1.0]), np.float32([1.2, 0.7])
    drawn = keras.ops.convert_to_numpy(layers.rotate_zoom_transforms(angle, scale, 13, 17))
    centre = drawn[:, [0, 1, 3, 4]].reshape(2, 2, 2) @ np.float32([8, 6]) + drawn[:, [2, 5]]
    np.testing.assert_allclose(centre, [[8, 6], [8, 6]], atol=1e-5)  # the centre stays put
    np.testing.assert_allclose(np.hypot(drawn[:, 0], drawn[:, 3]), scale, rtol=1e-6)


def test_rotate_zoom_is_seeded_bounded_and_off_at_inference(layers):
    import keras

    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, (16, 32, 32, 3)).astype(np.float32)
    outputs = [keras.ops.convert_to_numpy(layers.BatchRotateZoom(0.05, 0.05, seed=s)(batch, training=True))
               for s in (3, 3, 4)]
    assert outputs[0].shape == batch.shape
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert not np.allclose(outputs[0], outputs[2])
    assert outputs[0].min() >= batch.min() - 1e-3 and outputs[0].max() <= batch.max() + 1e-3  # bilinear: no overshoot
    # a small warp: each image changes, but stays close to itself (+-18 degrees, +-5% zoom)
    change = np.abs(outputs[0] - batch).mean(axis=(1, 2, 3))
    assert np.all(change > 0) and np.all(change < np.abs(batch - batch[::-1]).mean())
    layer = layers.BatchRotateZoom(0.05, 0.05, seed=3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(batch, training=False)), batch)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layers.BatchRotateZoom(0, 0, seed=3)(batch, training=True)), batch)
    restored = layers.BatchRotateZoom.from_config(layer.get_config())
    assert (restored.rotation, restored.zoom, restored.seed) == (0.05, 0.05, 3)
