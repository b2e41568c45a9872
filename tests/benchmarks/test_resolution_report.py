"""The helpers of benchmarks/resolution_report.py (the real-data run itself is a benchmark):
offset-kept tables, zeroed tables, the seeded scale-augmented digits pipeline, the table text."""

from __future__ import annotations

from importlib import import_module

import numpy as np
import pytest

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.models.levit.resolution import attention_layers


@pytest.fixture(scope="module")
def report():
    return import_module("benchmarks.resolution_report")


@pytest.fixture(scope="module")
def tiny_model():
    config = LevitConfig(num_labels=10, image_size=64, hidden_sizes=[16, 32, 48],
                         num_attention_heads=[1, 2, 3], depths=[1, 1, 1], key_dim=[8, 8, 8])
    model = LevitForImageClassificationWithTeacher(config)
    model(np.zeros((1, 64, 64, 3), np.float32))
    rng = np.random.default_rng(0)
    for layer in attention_layers(model):
        layer.attention_biases.assign(
            rng.normal(size=layer.attention_biases.shape).astype(np.float32))
    return model


def test_crop_keeps_every_common_offset(report):
    table = np.arange(2 * 16, dtype=np.float32).reshape(2, 16)  # 2 heads, 4x4 offsets
    cropped = report.crop_or_pad_table(table, (4, 4), (3, 2)).reshape(2, 3, 2)
    np.testing.assert_array_equal(cropped, table.reshape(2, 4, 4)[:, :3, :2])


def test_pad_repeats_the_largest_offset(report):
    table = np.arange(2 * 4, dtype=np.float32).reshape(2, 4)  # 2x2 offsets
    padded = report.crop_or_pad_table(table, (2, 2), (3, 4)).reshape(2, 3, 4)
    np.testing.assert_array_equal(padded[:, :2, :2], table.reshape(2, 2, 2))
    np.testing.assert_array_equal(padded[0], [[0, 1, 1, 1], [2, 3, 3, 3], [2, 3, 3, 3]])


def test_same_grid_is_identity(report):
    table = np.random.default_rng(1).normal(size=(3, 12)).astype(np.float32)
    np.testing.assert_array_equal(report.crop_or_pad_table(table, (3, 4), (3, 4)), table)


def test_offsets_kept_and_zeroed_models(report, tiny_model):
    bigger = report.offsets_kept(tiny_model, 96)  # grids 4x4, 2x2, 1x1 -> 6x6, 3x3, 2x2
    assert bigger.config.image_hw == (96, 96)
    for old, new in zip(attention_layers(tiny_model), attention_layers(bigger), strict=True):
        heads = old.attention_biases.shape[0]
        kept = np.asarray(new.attention_biases).reshape(heads, *new.grid)
        np.testing.assert_array_equal(kept[:, :old.grid[0], :old.grid[1]],
                                      np.asarray(old.attention_biases).reshape(heads, *old.grid))
    zeroed = report.zero_tables(tiny_model)
    assert all(not np.any(np.asarray(layer.attention_biases))
               for layer in attention_layers(zeroed))
    assert any(np.any(np.asarray(layer.attention_biases))
               for layer in attention_layers(tiny_model))  # the original is untouched


def test_train_pipeline_is_seeded_and_scale_augmented(report):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 8, 8), dtype=np.uint8)
    labels = np.arange(6, dtype=np.int32)
    sources = report.train_sources(images, size=40)
    assert sources.shape == (6, 40, 40) and sources.dtype == np.uint8
    assert not sources[:, :2].any() and not sources[:, :, -2:].any()  # background padding

    def first_epoch(seed):
        data = report.train_dataset(sources, labels, 32, 6, seed)
        return [(x.numpy(), y.numpy()) for x, y in data]

    (x1, y1), (x2, y2) = first_epoch(3)[0], first_epoch(3)[0]
    assert x1.shape == (6, 32, 32, 3) and x1.dtype == np.float32
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert sorted(y1.tolist()) == list(range(6))
    (x3, _), = first_epoch(4)
    assert not np.array_equal(x1, x3)


def test_table_text(report):
    rows = [report.Row(224, 196, True, 0.95, zeroed=0.5, tflite_ms=2.0),
            report.Row(160, 100, False, 0.9, 0.89, 0.4, 0.7, 0.96, 30.0, 1.0, 5e-4)]
    text = report.format_table(rows, "trained here", 359)
    assert ("| 160 | 100 | 90.0% | 89.0% | 40.0% | 70.0% | 96.0% (lr 0.0005, 30 s) | 1.00 | "
            "0.0100 |") in text
    assert "| 224 (trained) | 196 | 95.0% (trained) | - | 50.0% | - | - | 2.00 | 0.0102 |" in text
    assert text.index("| 160 |") < text.index("| 224 (trained)")


def test_table_lr_multiplier_scales_only_the_tables(report):
    import keras

    table = keras.Variable(np.zeros((2, 4), np.float32), name="attention_biases")
    weight = keras.Variable(np.zeros((2, 4), np.float32), name="kernel")
    optimizer = report.TableBoostedAdamW(10.0, learning_rate=1e-3, weight_decay=0.0)
    gradient = np.ones((2, 4), np.float32)
    optimizer.apply([gradient, gradient], [table, weight])
    np.testing.assert_allclose(np.asarray(table), 10 * np.asarray(weight), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(weight), -1e-3, rtol=1e-2)
