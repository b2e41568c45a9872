"""Keras vs PyTorch on randomized weights: all five variants, every checkpoint layout.

Target relative logit error <= 1e-5 (max |keras - torch| / max |torch|); measured ~1e-6.
"""

import numpy as np
import pytest
import safetensors.torch
import torch

from levit_tf import LevitForImageClassificationWithTeacher
from levit_tf.converters import load_pretrained
from levit_tf.models.levit.configuration_levit import PRESETS
from levit_tf.testing.torch_reference import (
    hf_bias_index_buffers,
    hf_model,
    nhwc,
    relative_error,
    save_fb_checkpoint,
    timm_hidden_states,
    timm_model,
)

#: levit-128S runs in the fast part; the four larger presets are marked slow.
ALL_PRESETS = [pytest.param(name, marks=() if name == "levit-128S" else pytest.mark.slow)
               for name in PRESETS]
LOGIT_TOLERANCE = 1e-5
HIDDEN_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.random.RandomState(0).standard_normal((2, 3, 224, 224)).astype(np.float32)


def assert_close(actual, reference, tolerance, what):
    error = relative_error(np.asarray(actual), np.asarray(reference))
    assert error <= tolerance, f"{what}: relative error {error:.2e} > {tolerance:.0e}"


@pytest.mark.parametrize("preset", ALL_PRESETS)
def test_hf_directory(preset, pixels, tmp_path):
    reference = hf_model(preset, seed=1)
    with torch.no_grad():
        expected = reference(torch.from_numpy(pixels), output_hidden_states=True)
    reference.save_pretrained(tmp_path)

    model = LevitForImageClassificationWithTeacher.from_pretrained(tmp_path)
    assert model.config.preset_name() == preset
    out = model(pixel_values=nhwc(pixels), output_hidden_states=True)

    assert_close(out["logits"], expected.logits, LOGIT_TOLERANCE, "logits")
    assert_close(out["cls_logits"], expected.cls_logits, LOGIT_TOLERANCE, "cls_logits")
    assert_close(out["distillation_logits"], expected.distillation_logits, LOGIT_TOLERANCE,
                 "distillation_logits")
    assert len(out["hidden_states"]) == len(expected.hidden_states) == 4
    pairs = zip(out["hidden_states"], expected.hidden_states, strict=True)
    for i, (ours, theirs) in enumerate(pairs):
        assert_close(ours, theirs, HIDDEN_TOLERANCE, f"hidden_states[{i}]")


@pytest.mark.parametrize("preset", ALL_PRESETS)
@pytest.mark.parametrize("conv", [False, True], ids=["levit", "levit_conv"])
def test_timm_checkpoint(preset, conv, pixels, tmp_path):
    reference = timm_model(preset, conv=conv, seed=2)
    expected_hidden, expected_logits = timm_hidden_states(reference, torch.from_numpy(pixels))
    path = tmp_path / "timm.safetensors"
    safetensors.torch.save_file(reference.state_dict(), path)

    model = load_pretrained(path)
    assert isinstance(model, LevitForImageClassificationWithTeacher)
    assert model.config.preset_name() == preset
    assert model.config.id2label[0] == "tench, Tinca tinca"  # ImageNet labels ship with us
    out = model(nhwc(pixels), output_hidden_states=True)
    assert_close(out["logits"], expected_logits, LOGIT_TOLERANCE, "logits")
    for i, (ours, theirs) in enumerate(zip(out["hidden_states"], expected_hidden, strict=True)):
        assert_close(ours, theirs, HIDDEN_TOLERANCE, f"hidden_states[{i}]")


@pytest.mark.parametrize("preset", [p for p in ALL_PRESETS if p.values[0] in ("levit-128S",
                                                                             "levit-256")])
def test_timm_pth_checkpoint(preset, pixels, tmp_path):
    reference = timm_model(preset, seed=3)
    with torch.no_grad():
        expected = reference(torch.from_numpy(pixels)).numpy()
    torch.save(reference.state_dict(), tmp_path / "levit.pth")
    model = load_pretrained(tmp_path / "levit.pth")
    assert_close(model(nhwc(pixels))["logits"], expected, LOGIT_TOLERANCE, "logits")


@pytest.mark.parametrize("preset", ALL_PRESETS)
def test_facebookresearch_checkpoint(preset, pixels, tmp_path):
    reference = hf_model(preset, seed=4)
    with torch.no_grad():
        expected = reference(torch.from_numpy(pixels), output_hidden_states=True)
    path = save_fb_checkpoint(reference, tmp_path / f"LeViT-{preset}.pth")

    model = load_pretrained(path)
    assert isinstance(model, LevitForImageClassificationWithTeacher)
    assert model.config.preset_name() == preset
    out = model(nhwc(pixels), output_hidden_states=True)
    assert_close(out["logits"], expected.logits, LOGIT_TOLERANCE, "logits")
    pairs = zip(out["hidden_states"], expected.hidden_states, strict=True)
    for i, (ours, theirs) in enumerate(pairs):
        assert_close(ours, theirs, HIDDEN_TOLERANCE, f"hidden_states[{i}]")


def test_pre_v5_hf_checkpoint_with_bias_index(pixels, tmp_path):
    """Hub checkpoints saved before transformers 5 carry attention_bias_idxs buffers."""
    reference = hf_model("levit-128S", teacher=False, num_labels=10, seed=5)
    with torch.no_grad():
        expected = reference(torch.from_numpy(pixels)).logits.numpy()
    reference.config.save_pretrained(tmp_path)
    state = {**reference.state_dict(), **hf_bias_index_buffers(reference)}
    assert any(k.endswith("attention_bias_idxs") for k in state)
    torch.save(state, tmp_path / "pytorch_model.bin")

    model = load_pretrained(tmp_path)
    assert type(model).__name__ == "LevitForImageClassification"
    assert model.config.num_labels == 10
    assert_close(model(nhwc(pixels))["logits"], expected, LOGIT_TOLERANCE, "logits")
