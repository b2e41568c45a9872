"""GPTQ weight rounding: the rounded kernels stay on the converter's int8 grid and lower each
layer's output error; the layer schedule follows the model; the converted file stores the
rounded integers (and the check of that can fail); requests it cannot serve are refused."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.models.levit.inference import FoldedAttention, FoldedMLP, optimize_for_inference
from levit_tf.testing.models import SMALL, randomize
from levit_tf.tflite import TFLiteModel, export, read_metadata
from levit_tf.tflite.weight_rounding import (
    DYNAMIC_MIN_ELEMENTS,
    RoundedLayer,
    RoundingReport,
    _int8_weights,
    check_stored,
    gptq_kernel,
    kernel_rows,
    layer_schedule,
    output_error,
    per_channel_scale,
    round_to_nearest,
)


@pytest.fixture(scope="module")
def random_model():
    return randomize(LevitForImageClassificationWithTeacher(LevitConfig(**SMALL)), seed=5)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(6).normal(size=(12, 96, 96, 3)).astype(np.float32)


def kernel_count(folded) -> int:
    dense = sum(len(block.dense_inputs()) for block in folded.blocks)
    return len(folded.stem_convs) + dense + (folded.head is not None)


def test_gptq_kernel_stays_on_the_grid_and_beats_nearest():
    rng = np.random.default_rng(0)
    # correlated inputs, as activations are: GPTQ's compensation has something to work with
    inputs = rng.normal(size=(600, 24)) @ rng.normal(size=(24, 64))
    kernel = rng.normal(size=(64, 48)).astype(np.float32)
    gram = inputs.T @ inputs
    rounded = gptq_kernel(kernel, gram)
    scale = per_channel_scale(kernel)
    # the converter computes the same scale from the rounded kernel, so stores these integers
    np.testing.assert_allclose(per_channel_scale(rounded), scale, rtol=1e-6)
    steps = rounded / scale
    assert np.max(np.abs(steps - np.round(steps))) < 1e-3 and np.max(np.abs(steps)) <= 127.001
    gptq = output_error(kernel - rounded.astype(np.float64), gram)
    nearest = output_error(kernel - round_to_nearest(kernel), gram)
    assert gptq < 0.5 * nearest, (gptq, nearest)
    assert np.isclose(output_error(kernel - round_to_nearest(kernel), gram),
                      np.sum((inputs @ (kernel - round_to_nearest(kernel))) ** 2))


def test_conv_rows_are_the_convolution():
    conv = keras.layers.Conv2D(8, 3, strides=2)
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 11, 11, 4)), tf.float32)
    expected = np.asarray(conv(x)) - np.asarray(conv.bias)
    rows = kernel_rows(conv, x)
    np.testing.assert_allclose(rows @ np.asarray(conv.kernel).reshape(-1, 8),
                               expected.reshape(-1, 8), atol=1e-5)


def test_schedule_follows_the_model(random_model, images):
    """Each layer's input function gives what that layer reads when the model runs: pushing the
    images through the schedule reproduces the logits, and every block is rebuilt from its
    layers and their input functions."""
    folded = optimize_for_inference(random_model)
    plan = list(layer_schedule(folded))
    assert len(plan) == kernel_count(folded)
    state = tf.constant(images[:4])
    for layer, layer_input, advance in plan:
        if layer is folded.head:
            logits = layer(layer_input(state))
        if advance is not None:
            state = advance(state)
    np.testing.assert_allclose(logits, folded(images[:4])["logits"], atol=1e-5)
    tokens = folded.stem_tokens(images[:4])
    for block in folded.blocks:
        *_, (last, last_input) = block.dense_inputs()
        rebuilt = last(last_input(tokens))
        if isinstance(block, FoldedMLP) or (isinstance(block, FoldedAttention)
                                            and block.stride == 1):
            rebuilt = tokens + rebuilt
        np.testing.assert_allclose(rebuilt, block(tokens), atol=1e-5)
        tokens = block(tokens)


def test_int8_export_stores_the_rounded_weights(random_model, images, tmp_path):
    folded = optimize_for_inference(random_model)
    before = [np.array(w) for w in folded.get_weights()]
    result = export(folded, tmp_path / "g.tflite", "int8", calibration_data=images,
                    weight_rounding="gptq")
    report = result.weight_rounding
    # every convolution and Dense layer is int8 in this mode, so every one was rounded
    assert len(report.layers) == kernel_count(folded) and report.images == len(images)
    assert report.error_ratio < 1.0
    # (equal where the inputs are uncorrelated: the first convolution reads noise images here)
    assert all(layer.gptq_error <= layer.nearest_error * 1.001 for layer in report.layers)
    assert all(np.array_equal(a, b) for a, b in zip(before, folded.get_weights(), strict=True))
    assert read_metadata(result.path)["weight_rounding"] == "gptq"
    # the file holds GPTQ's integers, and not the converter's own rounding of the float kernels
    stored = _int8_weights(result.path.read_bytes())
    nearest = [round_to_nearest(np.asarray(layer.kernel)) for layer, *_ in
               layer_schedule(folded)]
    changed = [not any(s.shape == n.shape and np.allclose(s, n) for s in stored)
               for n in nearest]
    assert sum(changed) >= len(changed) // 2, changed
    # a second rounding in the file would be caught
    first = report.layers[0]
    step = per_channel_scale(first.kernel)
    moved = first.kernel.copy()
    moved.reshape(-1, moved.shape[-1])[0, 0] += 0.5 * step[0]
    bad = RoundingReport((RoundedLayer(first.name, moved, 0.0, 0.0),), 1, 0.0)
    with pytest.raises(RuntimeError, match=f"weights of {first.name} are not stored"):
        check_stored(result.path.read_bytes(), bad)


def test_dynamic_export_rounds_what_the_converter_quantizes(random_model, images, tmp_path):
    """Dynamic mode leaves weights under DYNAMIC_MIN_ELEMENTS float: GPTQ rounds exactly the
    kernels that the file stores as int8, and the logits stay close to float."""
    result = export(random_model, tmp_path / "d.tflite", "dynamic", calibration_data=images,
                    weight_rounding="gptq")
    folded = optimize_for_inference(random_model)
    large = [layer for layer, *_ in layer_schedule(folded)
             if np.prod(layer.kernel.shape) >= DYNAMIC_MIN_ELEMENTS]
    assert len(result.weight_rounding.layers) == len(large) > 0
    assert len(_int8_weights(result.path.read_bytes())) == len(large)
    expected = np.asarray(random_model(images)["logits"])
    logits = TFLiteModel(result.path)(images)
    assert np.max(np.abs(logits - expected)) / np.max(np.abs(expected)) <= 0.15


def test_requests_it_cannot_serve(random_model, images, tmp_path):
    with pytest.raises(ValueError, match=r"\(dynamic, int8, int16x8\), not float16"):
        export(random_model, tmp_path / "x.tflite", "float16", weight_rounding="gptq")
    with pytest.raises(ValueError, match="gptq weight rounding needs calibration_data"):
        export(random_model, tmp_path / "x.tflite", "dynamic", weight_rounding="gptq")
    with pytest.raises(ValueError, match="weight_rounding must be one of nearest, gptq"):
        export(random_model, tmp_path / "x.tflite", "int8", calibration_data=images,
               weight_rounding="adaround")
    with pytest.raises(ValueError, match="has 12 images, --calibration-steps asks for 50"):
        export(random_model, tmp_path / "x.tflite", "dynamic", calibration_data=images,
               calibration_steps=50, weight_rounding="gptq")
    assert not list(tmp_path.iterdir())
