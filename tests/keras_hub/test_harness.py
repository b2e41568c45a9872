"""keras-hub's own test harness (``keras_hub.src.tests.test_case.TestCase``, as its model tests
use it) on our classes: serialization, shapes, predict / fit on arrays and tf.data, mixed
precision, int8 / float8 quantization, .keras saving, presets, the preprocessing layer on
tf.data and Grain. Plus the converter against HF's PIL processor (the PyTorch reference)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.keras_hub.conftest import SKIP_REASON

pytest.importorskip("keras_hub", reason=SKIP_REASON)
pytest.importorskip("grain", reason=SKIP_REASON)

import keras
import keras_hub
from keras_hub.src.tests import test_case

from levit_tf.keras_hub import (
    LevitBackbone,
    LevitImageClassifier,
    LevitImageClassifierPreprocessor,
    LevitImageConverter,
)

#: Two stages on 64 px: token grids 4x4 and 2x2, output grid (2, 2, 24).
TINY_BACKBONE = dict(hidden_sizes=[16, 24], num_attention_heads=[2, 3], depths=[1, 1],
                     key_dim=[8, 8], mlp_ratio=[2, 2], attention_ratio=[2, 2],
                     image_shape=(64, 64, 3))
NUM_CLASSES = 3


@pytest.fixture(scope="class")
def preset(request, keras_hub_preset):
    request.cls.preset = str(keras_hub_preset["preset"])
    request.cls.references = keras_hub_preset


class TestLevitBackbone(test_case.TestCase):
    def setUp(self):
        self.init_kwargs = dict(TINY_BACKBONE)
        self.input_data = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")

    def test_backbone_basics(self):
        """Serialization, eager / compiled predict, name, mixed_float16 / mixed_bfloat16 /
        bfloat16, int8 / float8 quantization maps; channels_first where the backend runs it
        (keras-hub skips it on TensorFlow without a GPU)."""
        self.run_vision_backbone_test(
            cls=LevitBackbone, init_kwargs=self.init_kwargs, input_data=self.input_data,
            expected_output_shape=(2, 2, 2, 24))

    def test_saved_model(self):
        self.run_model_saving_test(cls=LevitBackbone, init_kwargs=self.init_kwargs,
                                   input_data=self.input_data)

    def test_channels_first_equals_channels_last(self):
        """Our own check of the data_format path (the harness skips it on TF CPU)."""
        last = LevitBackbone(**self.init_kwargs)
        first = LevitBackbone(**{**self.init_kwargs, "image_shape": (3, 64, 64),
                                 "data_format": "channels_first"})
        first.set_weights(last.get_weights())
        expected = np.transpose(np.asarray(last(self.input_data)), (0, 3, 1, 2))
        nchw = np.transpose(self.input_data, (0, 3, 1, 2))
        self.assertAllClose(first(nchw), expected, atol=0, rtol=0)


@pytest.mark.usefixtures("preset")
class TestLevitImageClassifier(test_case.TestCase):
    def setUp(self):
        rng = np.random.default_rng(1)
        self.images = rng.integers(0, 256, (4, 80, 72, 3)).astype("float32")
        self.labels = np.array([0, 1, 2, 1])
        converter = LevitImageConverter(image_size=(64, 64))
        self.init_kwargs = dict(
            backbone=LevitBackbone(**TINY_BACKBONE), num_classes=NUM_CLASSES,
            preprocessor=LevitImageClassifierPreprocessor(converter))
        self.train_data = (self.images, self.labels)

    def test_classifier_basics(self):
        """Serialization, preprocessor output == the task's inputs, predict on arrays / tf.data
        / split preprocessing equal, fit on each, fit without compile raises."""
        self.run_task_test(cls=LevitImageClassifier, init_kwargs=self.init_kwargs,
                           train_data=self.train_data, expected_output_shape=(4, NUM_CLASSES))

    def test_one_and_two_heads_equal_our_hf_api_models(self):
        """distillation_head=False / True: the same logits as LevitForImageClassification /
        ...WithTeacher holding the same weights (from_keras_hub), and serialization."""
        from levit_tf import LevitForImageClassification, LevitForImageClassificationWithTeacher
        from levit_tf.keras_hub import from_keras_hub
        from levit_tf.testing.models import randomize

        pixels = np.random.default_rng(4).normal(size=(2, 64, 64, 3)).astype("float32")
        for heads, cls in ((False, LevitForImageClassification),
                           (True, LevitForImageClassificationWithTeacher)):
            task = LevitImageClassifier(**{**self.init_kwargs, "distillation_head": heads})
            self.run_serialization_test(task)
            randomize(task, seed=5)
            model = from_keras_hub(task)
            self.assertIsInstance(model, cls)
            self.assertAllClose(task(pixels), model(pixels)["logits"], atol=1e-6, rtol=1e-6)

    def test_head_dtype(self):
        model = LevitImageClassifier(**self.init_kwargs, head_dtype="bfloat16")
        for layer in (model.classifier, model.classifier_distill, model.head_average):
            self.assertEqual(layer.compute_dtype, "bfloat16")
        self.assertEqual(model.backbone.compute_dtype, "float32")

    def test_saved_model(self):
        self.run_model_saving_test(cls=LevitImageClassifier, init_kwargs=self.init_kwargs,
                                   input_data=self.images[:, :64, :64] / 255.0)

    def test_presets(self):
        """The converted SMALL preset through keras-hub's preset test: a bad name raises,
        weights load (outputs equal LevitForImageClassificationWithTeacher's), load_weights=False
        builds; for the task, backbone, preprocessor and converter, base classes and ours."""
        pixels = np.load(self.references["pixels"])
        expected = np.load(self.references["ours_logits"])
        for cls in (keras_hub.models.ImageClassifier, LevitImageClassifier):
            model = cls.from_preset(self.preset, preprocessor=None)
            self.assertIsInstance(model, LevitImageClassifier)
            self.run_preset_test(cls=cls, preset=self.preset, input_data=pixels,
                                 init_kwargs={"preprocessor": None}, expected_output=expected)
        for cls in (keras_hub.models.Backbone, LevitBackbone):
            self.run_preset_test(cls=cls, preset=self.preset, input_data=pixels,
                                 expected_output_shape=(2, 2, 2, 64))
        for cls in (keras_hub.models.ImageClassifierPreprocessor,
                    LevitImageClassifierPreprocessor):
            self.assertIsInstance(cls.from_preset(self.preset), LevitImageClassifierPreprocessor)
        for cls in (keras_hub.layers.ImageConverter, LevitImageConverter):
            self.assertIsInstance(cls.from_preset(self.preset), LevitImageConverter)


class TestLevitImageConverter(test_case.TestCase):
    def test_preprocessing_layer(self):
        """Direct call == tf.data (unbatched, batched) == Grain (unbatched, batched)."""
        images = np.random.default_rng(2).integers(0, 256, (3, 70, 90, 3)).astype("uint8")
        self.run_preprocessing_layer_test(cls=LevitImageConverter,
                                          init_kwargs={"image_size": (64, 64)},
                                          input_data=images)

    def test_preprocessor_layer(self):
        images = np.random.default_rng(3).integers(0, 256, (3, 70, 90, 3)).astype("float32")
        self.run_preprocessing_layer_test(
            cls=LevitImageClassifierPreprocessor,
            init_kwargs={"image_converter": LevitImageConverter(image_size=(64, 64))},
            input_data=(images, np.array([0, 1, 2])))

    def test_equals_levit_image_processor_and_hf_pil(self):
        """Bit-identical to levit_tf's LevitImageProcessor (the same graph); HF's PIL-backed
        LevitImageProcessorPil (the PyTorch side's preprocessing) within 1e-5 on photos."""
        from levit_tf import LevitImageProcessor
        from levit_tf.data.pipeline import eval_config
        from tests.conftest import load_hf_pil_processor
        from tests.keras_hub.conftest import photos

        images = photos()
        ours = np.asarray(keras.ops.convert_to_numpy(
            LevitImageConverter(image_size=(224, 224))(images)))
        processor = LevitImageProcessor(eval_config(224))(list(images))["pixel_values"]
        self.assertAllClose(ours, processor, atol=0, rtol=0)
        hf = load_hf_pil_processor()()(list(images), return_tensors="np")["pixel_values"]
        self.assertAllClose(ours, np.transpose(hf, (0, 2, 3, 1)), atol=1e-5, rtol=0)
        uint8 = LevitImageConverter(image_size=(224, 224))(images.astype("float32"))
        self.assertAllClose(keras.ops.convert_to_numpy(uint8), ours, atol=0, rtol=0)
