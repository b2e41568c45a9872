"""optimize_for_inference: BN folded, heads fused, biases constant -- the same function."""

import keras
import numpy as np
import pytest

from levit_tf import (
    LevitConfig,
    LevitForImageClassification,
    LevitForImageClassificationWithTeacher,
    LevitModel,
)
from levit_tf.models.levit.inference import LevitForInference, optimize_for_inference
from levit_tf.testing.models import SMALL, randomize


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.random.default_rng(5).normal(size=(3, 96, 96, 3)).astype(np.float32)


def relative_error(actual, reference) -> float:
    return float(np.max(np.abs(np.asarray(actual) - reference)) / np.max(np.abs(reference)))


@pytest.mark.parametrize("cls", [LevitForImageClassificationWithTeacher,
                                 LevitForImageClassification])
def test_folded_classifier_matches(cls, pixels):
    model = randomize(cls(LevitConfig(**SMALL)), seed=2)
    folded = optimize_for_inference(model)
    assert isinstance(folded, LevitForInference)
    assert relative_error(folded(pixels)["logits"], np.asarray(model(pixels)["logits"])) <= 1e-5
    assert not any("batch_norm" in w.path or "gamma" in w.path for w in folded.weights)
    if cls is LevitForImageClassificationWithTeacher:  # two heads fused into one Dense
        assert folded.head.kernel.shape == (64, 7)


def test_folded_backbone_matches(pixels):
    model = randomize(LevitModel(LevitConfig(**SMALL)), seed=3)
    folded = optimize_for_inference(model)
    expected = model(pixels)
    out = folded(pixels)
    assert relative_error(out["last_hidden_state"], np.asarray(expected["last_hidden_state"])) \
        <= 1e-5
    assert relative_error(out["pooler_output"], np.asarray(expected["pooler_output"])) <= 1e-5


def test_folded_model_round_trips(pixels, tmp_path):
    folded = optimize_for_inference(randomize(
        LevitForImageClassificationWithTeacher(LevitConfig(**SMALL)), seed=4))
    folded.save(tmp_path / "folded.keras")
    loaded = keras.saving.load_model(tmp_path / "folded.keras")
    np.testing.assert_array_equal(loaded(pixels)["logits"], folded(pixels)["logits"])


@pytest.mark.parametrize("input_mode", ["uint8", "rgb255"])
def test_folded_input_normalization_is_exact(input_mode):
    from levit_tf.preprocessing.config import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    model = randomize(LevitForImageClassificationWithTeacher(LevitConfig(**SMALL)), seed=6)
    raw = np.random.default_rng(7).integers(0, 256, size=(2, 96, 96, 3)).astype(np.uint8)
    normalized = (raw / 255.0 - np.array(IMAGENET_DEFAULT_MEAN)) / np.array(IMAGENET_DEFAULT_STD)
    expected = np.asarray(model(normalized.astype(np.float32))["logits"])
    folded = optimize_for_inference(model, input_mode=input_mode)
    pixels = raw if input_mode == "uint8" else raw.astype(np.float32)
    assert relative_error(folded(pixels)["logits"], expected) <= 1e-5
