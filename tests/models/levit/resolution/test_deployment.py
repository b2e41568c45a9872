"""Other sizes through the deployment paths: TFLite float32 parity at 160 and 288, the eval
transform and the SavedModel's in-graph preprocessing for a non-square model."""

import numpy as np
import pytest
import tensorflow as tf

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.data.pipeline import eval_config
from levit_tf.models.levit.resolution import change_resolution
from levit_tf.preprocessing.config import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from levit_tf.preprocessing.transforms import preprocess_image
from levit_tf.testing.models import SMALL, randomize
from levit_tf.tflite import TFLiteModel, export, read_metadata


@pytest.fixture(scope="module")
def model_224() -> LevitForImageClassificationWithTeacher:
    config = LevitConfig(**{**SMALL, "image_size": 224})
    return randomize(LevitForImageClassificationWithTeacher(config), seed=21)


@pytest.mark.parametrize("size", [160, 288])
def test_tflite_float32_at_new_size(model_224, size, tmp_path):
    model = change_resolution(model_224, size)
    result = export(model, tmp_path / f"m{size}.tflite")
    tflite = TFLiteModel(result.path)
    assert tuple(tflite.input_shape[1:3]) == (size, size)
    assert read_metadata(result.path)["image_size"] == [size, size]
    pixels = np.random.default_rng(size).normal(size=(2, size, size, 3)).astype(np.float32)
    expected = np.asarray(model(pixels)["logits"])
    error = np.max(np.abs(tflite(pixels) - expected)) / np.max(np.abs(expected))
    assert error <= 1e-4, f"float32 relative logit error {error:.2e} at {size}"


def test_eval_transform_sizes():
    square = eval_config(224)
    assert square.size == {"shortest_edge": 224} and square.crop_size == {"height": 224,
                                                                          "width": 224}
    assert eval_config(160).crop_size == {"height": 160, "width": 160}
    wide = eval_config((192, 256))
    assert wide.size == {"shortest_edge": 256}
    assert wide.crop_size == {"height": 192, "width": 256}
    # the resized image covers the crop at any aspect ratio: no zero padding in the output
    white = (1.0 - np.array(IMAGENET_DEFAULT_MEAN)) / np.array(IMAGENET_DEFAULT_STD)
    for shape in ((100, 300), (300, 100), (50, 50), (192, 256)):
        out = preprocess_image(tf.fill((*shape, 3), tf.constant(255, tf.uint8)), wide).numpy()
        assert out.shape == (192, 256, 3)
        np.testing.assert_allclose(out, np.broadcast_to(white, out.shape), atol=1e-5)


def test_saved_model_serves_a_non_square_model(model_224, tmp_path):
    from levit_tf.export.saved_model import export_saved_model

    model = change_resolution(model_224, (64, 96))
    path = export_saved_model(model, tmp_path / "served", top_k=3)
    loaded = tf.saved_model.load(str(path))
    image = np.random.default_rng(4).integers(0, 256, (50, 120, 3), dtype=np.uint8)
    encoded = tf.io.encode_png(image)
    served = loaded.signatures["serve_images"](images=tf.stack([encoded]))
    pixels = preprocess_image(tf.constant(image), eval_config((64, 96)))[None]
    assert pixels.shape == (1, 64, 96, 3)
    expected = tf.nn.softmax(model(pixels)["logits"]).numpy()
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
