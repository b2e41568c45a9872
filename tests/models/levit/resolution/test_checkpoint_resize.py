"""Loading a 224 checkpoint at another size: resized tables and logits vs PyTorch references
(timm / HF LeViT built at the new size holding the tables torch's F.interpolate resized)."""

import logging

import numpy as np
import pytest
import safetensors.torch

from levit_tf import LevitForImageClassificationWithTeacher
from levit_tf.converters import ConversionError, load_pretrained
from levit_tf.models.levit.resolution import attention_layers
from levit_tf.testing.torch_reference import nhwc, relative_error, save_fb_checkpoint
from tests.support.torch_resize import hf_at, logits_of, timm_at

LOGIT_TOLERANCE = 1e-5


def pixels_for(hw: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(2, 3, *hw)).astype(np.float32)


def torch_tables(model) -> list[np.ndarray]:
    """attention_biases of a timm or HF model in state-dict order (= HF's layer order)."""
    return [v.detach().numpy() for k, v in model.state_dict().items()
            if k.endswith("attention_biases")]


def resize_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "attention-bias tables" in r.getMessage()]


@pytest.mark.parametrize("image_size,mode", [
    (256, "bicubic"), (288, "bicubic"), (160, "bicubic"), ((192, 256), "bicubic"),
    (256, "bilinear")], ids=["256", "288", "160", "192x256", "256-bilinear"])
def test_timm_checkpoint_at_new_size(image_size, mode, timm_reference, timm_checkpoint, caplog):
    reference = timm_at(timm_reference, image_size, mode)
    hw = (image_size, image_size) if isinstance(image_size, int) else image_size
    pixels = pixels_for(hw)

    with caplog.at_level(logging.WARNING, logger="levit_tf"):
        model = load_pretrained(timm_checkpoint, image_size=image_size, bias_interpolation=mode)
    assert model.config.image_hw == hw
    ours = [np.asarray(layer.attention_biases) for layer in attention_layers(model)]
    theirs = torch_tables(reference)
    assert len(ours) == len(theirs) == 11
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.shape == b.shape, (i, a.shape, b.shape)
        assert relative_error(a, b) <= 1e-5, f"table {i}: {relative_error(a, b):.2e}"
    error = relative_error(np.asarray(model(nhwc(pixels))["logits"]), logits_of(reference, pixels))
    assert error <= LOGIT_TOLERANCE, f"logits: relative error {error:.2e}"

    warnings = resize_warnings(caplog)
    assert len(warnings) == 1, warnings  # one message for all layers
    assert f"from 224x224 to {hw[0]}x{hw[1]}" in warnings[0] and mode in warnings[0]


def test_hf_directory_and_fb_checkpoint_at_256(hf_reference, tmp_path):
    reference = hf_at(hf_reference, 256)
    pixels = pixels_for((256, 256), seed=1)
    expected = logits_of(reference, pixels)
    hf_reference.save_pretrained(tmp_path / "hf")
    fb = save_fb_checkpoint(hf_reference, tmp_path / "fb.pth")  # stores attention_bias_idxs
    for source in (tmp_path / "hf", fb):
        model = LevitForImageClassificationWithTeacher.from_pretrained(source, image_size=256)
        error = relative_error(np.asarray(model(nhwc(pixels))["logits"]), expected)
        assert error <= LOGIT_TOLERANCE, f"{source.name}: relative error {error:.2e}"


def test_only_bias_tables_change(timm_checkpoint, caplog):
    with caplog.at_level(logging.WARNING, logger="levit_tf"):
        native = load_pretrained(timm_checkpoint)
    assert not resize_warnings(caplog)  # the checkpoint's own size: nothing to resize
    resized = load_pretrained(timm_checkpoint, image_size=288)
    layers = attention_layers(resized)
    table_params = sum(layer.num_heads * layer.grid[0] * layer.grid[1] for layer in layers)
    native_tables = sum(int(np.prod(layer.attention_biases.shape))
                        for layer in attention_layers(native))
    # 18x18, 9x9, 5x5 grids: only the tables grow
    assert table_params == sum(int(np.prod(layer.attention_biases.shape)) for layer in layers)
    assert resized.count_params() - table_params == native.count_params() - native_tables
    biases = {id(layer.attention_biases) for layer in attention_layers(native)}
    compared = 0
    for old, new in zip(native.weights, resized.weights, strict=True):
        assert old.path.split("/", 1)[1] == new.path.split("/", 1)[1]  # after the model name
        if id(old) in biases:
            assert new.shape[1] in (18 * 18, 9 * 9, 5 * 5), new.shape
        else:
            np.testing.assert_array_equal(np.asarray(old), np.asarray(new), err_msg=old.path)
            compared += 1
    assert compared == len(native.weights) - 11


def test_non_square_checkpoint_without_config(timm_reference, tmp_path):
    """A timm checkpoint trained at 192x256: its tables fit 192x256 and 256x192 alike."""
    native = timm_at(timm_reference, (192, 256))
    path = tmp_path / "levit_192x256.safetensors"
    safetensors.torch.save_file(native.state_dict(), path)
    with pytest.raises(ConversionError, match=r"192x256, 256x192.*source_image_size"):
        load_pretrained(path)

    pixels = pixels_for((192, 256), seed=2)
    model = load_pretrained(path, source_image_size=(192, 256))
    assert model.config.image_hw == (192, 256)
    error = relative_error(np.asarray(model(nhwc(pixels))["logits"]), logits_of(native, pixels))
    assert error <= LOGIT_TOLERANCE

    # and from 192x256 on to 224x224 (tables resized from 12x16 / 6x8 / 3x4 grids)
    square = timm_at(native, 224)
    model = load_pretrained(path, source_image_size=(192, 256), image_size=224)
    pixels = pixels_for((224, 224), seed=3)
    error = relative_error(np.asarray(model(nhwc(pixels))["logits"]), logits_of(square, pixels))
    assert error <= LOGIT_TOLERANCE


def test_bad_sizes_are_named(timm_checkpoint, hf_reference, tmp_path):
    with pytest.raises(ConversionError, match="250 is not a positive multiple of 16"):
        load_pretrained(timm_checkpoint, image_size=250)
    with pytest.raises(ConversionError, match=r"\(192, 250\)"):
        load_pretrained(timm_checkpoint, image_size=(192, 250))
    with pytest.raises(ValueError, match="'nearest'"):
        load_pretrained(timm_checkpoint, image_size=256, bias_interpolation="nearest")
    with pytest.raises(ConversionError, match="source image size 256x256 does not fit"):
        load_pretrained(timm_checkpoint, source_image_size=256)
    # an HF config whose image_size disagrees with its tables
    hf_reference.config.image_size = 256
    try:
        hf_reference.save_pretrained(tmp_path)
    finally:
        hf_reference.config.image_size = 224
    culprit = r"config says image_size 256 \(the weights have 224\)\. Fix or remove config\.json"
    with pytest.raises(ConversionError, match=culprit):
        load_pretrained(tmp_path, image_size=224)
