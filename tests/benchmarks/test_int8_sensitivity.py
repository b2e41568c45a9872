"""The helpers of benchmarks/int8_sensitivity.py (its figures need the fine-tuned model): the
calibrated graph quantizes to exactly what ``export`` writes, edited ranges reach the
quantized file, float op groups stay float, and the range rules pick what they say."""

from __future__ import annotations

from importlib import import_module

import numpy as np
import pytest

from levit_tf import LevitConfig, LevitForImageClassification
from levit_tf.testing.models import SMALL, randomize
from levit_tf.tflite import ATTENTION_FLOAT_OPS, export
from levit_tf.tflite.runtime import new_interpreter


@pytest.fixture(scope="module")
def sensitivity():
    return import_module("benchmarks.int8_sensitivity")


@pytest.fixture(scope="module")
def setup(sensitivity):
    """A random small LeViT, 12 calibration images and its calibrated graph."""
    model = randomize(LevitForImageClassification(LevitConfig(**SMALL)), seed=5)
    calibration = np.random.default_rng(1).normal(0, 1, (12, 96, 96, 3)).astype(np.float32)
    return model, calibration, sensitivity.calibrated_graph(model, calibration)


def _run(path, images: np.ndarray) -> np.ndarray:
    interpreter = new_interpreter(path)
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    out = []
    for image in images:
        interpreter.set_tensor(source["index"], image[None])
        interpreter.invoke()
        out.append(interpreter.get_tensor(target["index"])[0].copy())
    return np.stack(out)


def _details_by_name(path) -> dict[str, dict]:
    return {d["name"]: d for d in new_interpreter(path).get_tensor_details()}


@pytest.mark.slow  # two int8 conversions
def test_calibrated_graph_quantizes_to_the_exported_int8(sensitivity, setup, tmp_path):
    model, calibration, calibrated = setup
    exported = export(model, tmp_path / "export.tflite", "int8", calibration_data=calibration,
                      calibration_steps=len(calibration)).path
    ours = tmp_path / "ours.tflite"
    ours.write_bytes(sensitivity.quantize(calibrated, ATTENTION_FLOAT_OPS))
    images = np.random.default_rng(2).normal(0, 1, (3, 96, 96, 3)).astype(np.float32)
    np.testing.assert_array_equal(_run(ours, images), _run(exported, images))
    int8_tensors = [d for d in _details_by_name(ours).values() if d["dtype"] == np.int8]
    assert len(int8_tensors) > 20  # it is an int8 model, not the float graph


def test_edited_range_sets_the_quantized_scale(sensitivity, setup, tmp_path):
    _, _, calibrated = setup
    ranges = sensitivity.tensor_ranges(calibrated)
    name = next(n for n in ranges if "projection" in n and ranges[n][0] < 0 < ranges[n][1])
    low, high = ranges[name]
    path = tmp_path / "edited.tflite"
    path.write_bytes(sensitivity.quantize(
        sensitivity.with_ranges(calibrated, {name: (low / 2, high / 2)}), ATTENTION_FLOAT_OPS))
    scale = _details_by_name(path)[name]["quantization"][0]
    assert scale == pytest.approx((high - low) / 2 / 255, rel=1e-3)
    with pytest.raises(KeyError, match="no calibrated tensors"):
        sensitivity.with_ranges(calibrated, {"no-such-tensor": (0.0, 1.0)})


def test_float_op_groups_stay_float(sensitivity, setup, tmp_path):
    _, _, calibrated = setup
    path = tmp_path / "float_stem.tflite"
    path.write_bytes(sensitivity.quantize(calibrated, (*ATTENTION_FLOAT_OPS, "CONV_2D")))
    interpreter = new_interpreter(path)
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    convs = [op for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D"]
    assert len(convs) == 4  # the stem
    for op in convs:
        assert tensors[op["inputs"][0]]["dtype"] == np.float32
    fcs = [op for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"]
    assert fcs and all(tensors[op["inputs"][0]]["dtype"] == np.int8 for op in fcs)


def test_activations_are_the_float_graph_on_each_image(sensitivity, setup):
    model, calibration, calibrated = setup
    values = sensitivity.activations(calibrated, calibration[:2])
    ranges = sensitivity.tensor_ranges(calibrated)
    shared = set(values) & set(ranges)
    assert len(shared) > 0.9 * len(ranges)
    for name in shared:  # calibration saw these 2 images among its 12: inside its range
        assert values[name].shape[0] == 2
        low, high = ranges[name]
        assert values[name].min() >= low - 1e-4 and values[name].max() <= high + 1e-4, name
    keras_logits = np.asarray(model(calibration[:2], training=False)["logits"])
    matches = [name for name, v in values.items() if v.shape == keras_logits.shape
               and np.allclose(v, keras_logits, atol=1e-4)]
    assert matches  # the float graph's logits are Keras's


def test_range_rules(sensitivity):
    rng = np.random.default_rng(0)
    uniform = rng.uniform(-1, 1, 50_000)
    assert sensitivity.mse_range(uniform, -1.0, 1.0) == pytest.approx((-1.0, 1.0))
    heavy = rng.standard_t(3, 50_000)  # a heavy tail, as in activations with outliers
    low, high = sensitivity.mse_range(heavy, heavy.min(), heavy.max())
    assert high < heavy.max() and low > heavy.min()  # the tails are clipped
    assert (sensitivity.quantization_mse(heavy, low, high)
            < sensitivity.quantization_mse(heavy, heavy.min(), heavy.max()))
    fine = np.linspace(0.5, 1.0, 501)  # a finer search finds no better fraction
    errors = [sensitivity.quantization_mse(heavy, f * heavy.min(), f * heavy.max()) for f in fine]
    assert high / heavy.max() == pytest.approx(fine[int(np.argmin(errors))], abs=0.011)
    assert (sensitivity.percentile_range(heavy, heavy.min(), heavy.max())[1]
            == pytest.approx(np.percentile(heavy, 99.99)))
    # int8 over a uniform signal: ~6 dB per bit, 8 bits plus the uniform signal's 4.8 dB
    assert sensitivity.sqnr_db(uniform, -1.0, 1.0) == pytest.approx(6.02 * 8, abs=0.5)
    rounded = sensitivity.fake_quantize(uniform.astype(np.float32), -1.0, 1.0)
    assert len(np.unique(rounded)) <= 256 and np.abs(rounded - uniform).max() <= 1 / 255 + 1e-6


def test_short_names(sensitivity):
    fused = ("levit_for_image_classification_inference_1/stage1_mlp_9_1/linear_down_1/BiasAdd;"
             "levit_for_image_classification_inference_1/stage1_mlp_9_1/linear_down_1/MatMul")
    assert sensitivity.short_name(fused) == "stage1_mlp_9_1/linear_down_1/BiasAdd"
    assert sensitivity.short_name("StatefulPartitionedCall:0") == "logits"


def test_channel_balance_and_producers(sensitivity, setup):
    values = np.ones((10, 4, 8))
    values[..., 3] = 5.0  # one channel 5x the others
    assert sensitivity.channel_spread(values) == pytest.approx(5.0)
    written = sensitivity.producers(setup[2])
    assert sum(op == "CONV_2D" for op in written.values()) == 4  # the stem
    assert "ADD" in written.values() and "FULLY_CONNECTED" in written.values()


def test_margin_report(sensitivity):
    reference = np.array([[3.0, 1.0, 0.0], [1.0, 1.1, 0.0], [0.0, 0.0, 5.0]])
    flipped_second = np.array([[3.0, 1.0, 0.0], [1.2, 1.1, 0.0], [0.0, 0.0, 5.0]])
    np.testing.assert_allclose(sensitivity.top2_margins(reference), [2.0, 0.1, 5.0])
    report = sensitivity.margin_report(reference, flipped_second)
    assert "median 2.000" in report and "flips 1 crops, the largest margin flipped 0.100" in report


def test_layer_errors_are_each_layers_own_rounding(sensitivity, setup):
    model, calibration, _ = setup
    errors = sensitivity.layer_errors(model, calibration[:4], ATTENTION_FLOAT_OPS)
    ops = {name.split()[0] for _, name in errors}
    assert {"CONV_2D", "FULLY_CONNECTED", "ADD"} <= ops <= set(sensitivity.ARITHMETIC_OPS)
    per_scale = np.array([error for error, _ in errors])
    assert list(per_scale) == sorted(per_scale, reverse=True)
    # a layer's own int8 error is its rounding, sqrt(1/12) = 0.289 of its scale, give or take
    assert 0.2 < np.median(per_scale) < 0.5
