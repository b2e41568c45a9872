"""change_resolution on Keras models and .keras files; the CLI's --image-size; configs."""

import logging

import keras
import numpy as np
import pytest
import torch

from levit_tf import LevitConfig, LevitForImageClassification, LevitModel
from levit_tf.cli import main as cli_main
from levit_tf.converters import load_pretrained
from levit_tf.models.levit.resolution import attention_layers, change_resolution, parse_image_size
from levit_tf.testing.models import SMALL, randomize
from tests.support.torch_resize import torch_resize


@pytest.fixture(scope="module")
def small_model() -> LevitForImageClassification:
    return randomize(LevitForImageClassification(LevitConfig(**SMALL)), seed=3)  # 96 px


@pytest.mark.parametrize("size", [160, (64, 128)])
def test_change_resolution_resizes_tables_like_torch(small_model, size, caplog):
    with caplog.at_level(logging.WARNING, logger="levit_tf"):
        resized = change_resolution(small_model, size)
    assert sum("attention-bias tables" in r.getMessage() for r in caplog.records) == 1
    hw = (size, size) if isinstance(size, int) else size
    assert resized.config.image_hw == hw and type(resized) is type(small_model)
    for old, new in zip(attention_layers(small_model), attention_layers(resized), strict=True):
        expected = torch_resize(torch.from_numpy(np.asarray(old.attention_biases)), old.grid,
                                new.grid, "bicubic").numpy()
        np.testing.assert_allclose(np.asarray(new.attention_biases), expected, atol=1e-5)
    biases = {id(layer.attention_biases) for layer in attention_layers(small_model)}
    for old, new in zip(small_model.weights, resized.weights, strict=True):
        if id(old) not in biases:
            np.testing.assert_array_equal(np.asarray(old), np.asarray(new))
    pixels = np.random.default_rng(0).normal(size=(2, *hw, 3)).astype(np.float32)
    assert np.isfinite(np.asarray(resized(pixels)["logits"])).all()


def test_same_size_returns_the_model(small_model):
    assert change_resolution(small_model, 96) is small_model
    assert change_resolution(small_model, (96, 96)) is small_model


def test_round_trip_through_a_larger_grid_is_not_exact_but_close(small_model):
    """Upsampling then downsampling the tables is a smoothing, not the identity."""
    back = change_resolution(change_resolution(small_model, 192), 96)
    old = np.asarray(attention_layers(small_model)[0].attention_biases)
    new = np.asarray(attention_layers(back)[0].attention_biases)
    assert not np.array_equal(old, new) and np.corrcoef(old.ravel(), new.ravel())[0, 1] > 0.9


def test_keras_file_loads_at_another_size(small_model, tmp_path):
    path = tmp_path / "small.keras"
    small_model.save(path)
    loaded = load_pretrained(path, image_size=128)
    direct = change_resolution(small_model, 128)
    assert loaded.config.image_hw == (128, 128)
    for a, b in zip(loaded.weights, direct.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the resized model saves and reloads at its new size
    loaded.save(tmp_path / "small128.keras")
    again = keras.saving.load_model(tmp_path / "small128.keras")
    assert again.config.image_hw == (128, 128)


def test_backbone_and_bad_input():
    backbone = LevitModel(LevitConfig(**{**SMALL, "num_labels": 0}))
    out = change_resolution(backbone, (48, 80))(np.zeros((1, 48, 80, 3), np.float32))
    assert out["last_hidden_state"].shape == (1, 2, 64)  # grids 3x5 -> 2x3 -> 1x2
    with pytest.raises(ValueError, match="100 is not a positive multiple of 16"):
        change_resolution(backbone, 100)
    with pytest.raises(TypeError, match="LeViT model"):
        change_resolution(keras.Sequential([keras.layers.Dense(1)]), 96)
    with pytest.raises(ValueError, match="'area'"):
        change_resolution(backbone, 64, mode="area")
    with pytest.raises(ValueError, match="image_size=250"):
        LevitConfig(image_size=250)


def test_parse_image_size():
    assert parse_image_size("256") == 256
    assert parse_image_size("192x256") == (192, 256)
    assert parse_image_size("224X224") == 224
    assert parse_image_size([160, 288]) == (160, 288)
    for bad in ("256x", "x256", "2.5e2", "192x250", "0"):
        with pytest.raises(ValueError, match="image size"):
            parse_image_size(bad)


def test_cli_convert_image_size(timm_checkpoint, tmp_path, capsys):
    out = tmp_path / "l128s_192x256.keras"
    assert cli_main(["convert", str(timm_checkpoint), str(out), "--image-size", "192x256"]) == 0
    assert "input (192, 256)" in capsys.readouterr().out
    assert keras.saving.load_model(out).config.image_hw == (192, 256)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["convert", str(timm_checkpoint), str(out), "--image-size", "250"])
    assert exit_info.value.code == 2
    assert "250 is not a positive multiple of 16" in capsys.readouterr().err
