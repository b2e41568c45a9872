"""TFLite export: every mode converts and runs; float32 parity; builtin ops; int8 on a trained
model; uint8 input; signature and labels; bad input."""

import subprocess
import sys

import numpy as np
import pytest

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher, LevitModel
from levit_tf.models.levit.inference import FoldedAttention, optimize_for_inference
from levit_tf.testing.models import SMALL, randomize
from levit_tf.tflite import (
    ATTENTION_FLOAT_OPS,
    TFLiteModel,
    export,
    read_metadata,
    xnnpack_coverage,
)
from levit_tf.tflite.report import build_report, fidelity, format_table, to_input_domain
from levit_tf.tflite.runtime import new_interpreter


@pytest.fixture(scope="module")
def random_model():
    return randomize(LevitForImageClassificationWithTeacher(LevitConfig(**SMALL)), seed=11)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(12).normal(size=(8, 96, 96, 3)).astype(np.float32)


def test_float32_parity_signature_and_labels(random_model, images, tmp_path):
    result = export(random_model, tmp_path / "m.tflite")
    model = TFLiteModel(result.path)
    expected = np.asarray(random_model(images)["logits"])
    error = np.max(np.abs(model(images) - expected)) / np.max(np.abs(expected))
    assert error <= 1e-4, f"float32 relative logit error {error:.2e}"
    assert model.compiled.get_signature_list() == {
        "serving_default": {"inputs": ["pixel_values"], "outputs": ["logits"]}}
    assert model.id2label == random_model.config.id2label
    assert read_metadata(result.path)["input_mode"] == "normalized"
    sidecar = (tmp_path / "m.labels.txt").read_text().splitlines()
    assert sidecar == [random_model.config.id2label[i] for i in range(7)]
    coverage = xnnpack_coverage(result.path)
    assert coverage.partitions == 1 and not coverage.builtin_ops  # all of it in XNNPACK
    assert not any(name.startswith(("Flex", "CUSTOM")) for name in coverage.total_ops)
    # one TRANSPOSE brings the heads ahead (plus one for a shrinking attention's query), one
    # brings the tokens back; QK^T's transpose is folded into the BATCH_MATMUL (adj_y)
    attentions = [block for block in optimize_for_inference(random_model).blocks
                  if isinstance(block, FoldedAttention)]
    assert coverage.total_ops["TRANSPOSE"] == sum(2 if a.stride == 1 else 3 for a in attentions)
    assert coverage.total_ops["BATCH_MATMUL"] == 2 * len(attentions)


@pytest.mark.parametrize("mode,tolerance", [("float16", 1e-2), ("dynamic", 0.15),
                                            ("int16x8", 0.1)])
def test_other_modes_export_and_run(mode, tolerance, random_model, images, tmp_path):
    calibration = images if mode == "int16x8" else None
    result = export(random_model, tmp_path / f"{mode}.tflite", mode,
                    calibration_data=calibration, calibration_steps=len(images))
    logits = TFLiteModel(result.path)(images)
    expected = np.asarray(random_model(images)["logits"])
    assert np.max(np.abs(logits - expected)) / np.max(np.abs(expected)) <= tolerance
    assert read_metadata(result.path)["quantization"] == mode


@pytest.mark.slow  # trains a digits model (~100 s)
def test_int8_on_a_trained_model(trained_model, tmp_path):
    model, calibration, held_out = trained_model
    reference = np.asarray(model.predict(held_out, verbose=0)["logits"])
    plain = export(model, tmp_path / "int8.tflite", "int8", calibration_data=calibration,
                   calibration_steps=200, float_ops=())
    mixed = export(model, tmp_path / "int8_mixed.tflite", "int8", calibration_data=calibration,
                   calibration_steps=200)  # the default: attention core in float
    assert mixed.float_ops == ATTENTION_FLOAT_OPS and plain.float_ops == ()
    # (this small 64 px model is a harder case than LeViT-128S on the digits, which the
    # benchmark measures against the >= 99% goal)
    for result in (plain, mixed):
        agreement = fidelity(reference, TFLiteModel(result.path)(held_out))
        assert agreement.top1_agreement >= 0.98, (result.path.name, agreement)
        assert agreement.cosine_similarity >= 0.995, (result.path.name, agreement)
    # plain int8 leaves softmax / hardswish / attention matmuls to builtin kernels; keeping
    # those in float puts the whole graph inside XNNPACK
    assert set(xnnpack_coverage(plain.path).builtin_ops) & set(ATTENTION_FLOAT_OPS)
    mixed_coverage = xnnpack_coverage(mixed.path)
    assert mixed_coverage.partitions == 1 and not mixed_coverage.builtin_ops


@pytest.mark.slow  # the trained digits model
def test_gptq_weights_bring_held_out_logits_closer(trained_model, tmp_path):
    """On real held-out digits, GPTQ-rounded weights (rounded on the training images) leave a
    smaller logit error than the converter's nearest rounding, in the modes where weights are
    a large part of it."""
    model, calibration, held_out = trained_model
    reference = np.asarray(model.predict(held_out, verbose=0)["logits"])
    errors = {}
    for mode in ("dynamic", "int16x8"):
        for rounding in ("nearest", "gptq"):
            path = export(model, tmp_path / f"{mode}_{rounding}.tflite", mode,
                          calibration_data=calibration, calibration_steps=200,
                          weight_rounding=rounding).path
            errors[mode, rounding] = float(np.mean(np.abs(TFLiteModel(path)(held_out)
                                                          - reference)))
    # measured 0.79x (dynamic: per-row activation rounding is the rest) and 0.46x (int16x8)
    assert errors["dynamic", "gptq"] < errors["dynamic", "nearest"], errors
    assert errors["int16x8", "gptq"] < 0.7 * errors["int16x8", "nearest"], errors


@pytest.mark.slow  # the trained digits model
def test_uint8_input_matches_float_input(trained_model, tmp_path):
    model, calibration, held_out = trained_model
    raw = to_input_domain(held_out[:20], "uint8")
    float_logits = TFLiteModel(export(model, tmp_path / "f.tflite").path)(held_out[:20])
    uint8_model = TFLiteModel(export(model, tmp_path / "u.tflite", uint8_input=True).path)
    assert uint8_model.input["dtype"] == np.uint8
    # raw pixels are the normalized ones rounded to uint8, so compare against those
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    renormalized = ((raw / 255.0 - mean) / std).astype(np.float32)
    expected = np.asarray(model(renormalized)["logits"])
    error = np.max(np.abs(uint8_model(raw) - expected)) / np.max(np.abs(expected))
    assert error <= 1e-4, error
    assert np.mean(uint8_model(raw).argmax(1) == float_logits.argmax(1)) >= 0.95

    int8 = TFLiteModel(export(model, tmp_path / "q.tflite", "int8", calibration_data=calibration,
                              calibration_steps=200, uint8_input=True).path)
    assert int8.input["dtype"] == np.uint8 and int8.input["quantization"][0] == pytest.approx(1.0)
    agreement = fidelity(expected, int8(raw))
    assert agreement.top1_agreement >= 0.95 and agreement.cosine_similarity >= 0.99


def test_report(random_model, images, tmp_path):
    path = export(random_model, tmp_path / "r.tflite").path
    report = build_report(path, random_model, images, threads=(1,), latency_runs=5)
    assert report.fidelity.top1_agreement == 1.0 and report.latency_ms[1] > 0
    assert report.xnnpack_fraction == 1.0
    assert "float32" in format_table([report])


def test_bad_input(random_model, images, tmp_path):
    with pytest.raises(ValueError, match="needs calibration_data"):
        export(random_model, tmp_path / "x.tflite", "int8")
    with pytest.raises(ValueError, match=r"must end in \.tflite"):
        export(random_model, tmp_path / "x.bin")
    with pytest.raises(ValueError, match="needs a classifier"):
        export(LevitModel(LevitConfig(**SMALL)), tmp_path / "x.tflite")
    with pytest.raises(ValueError, match=r"has 8 images, --calibration-steps asks for 200"):
        export(random_model, tmp_path / "x.tflite", "int8", calibration_data=images,
               calibration_steps=200)
    with pytest.raises(ValueError, match="needs at least 1 calibration step, got 0"):
        export(random_model, tmp_path / "x.tflite", "int8", calibration_data=images,
               calibration_steps=0)
    assert not list(tmp_path.iterdir())


def test_calibration_uses_the_images_that_exist(random_model, images, tmp_path, caplog):
    """No count given: the 8 images there are (of the default 200), with a warning naming
    the number; the file is a real int8 model."""
    with caplog.at_level("INFO", logger="levit_tf.tflite.calibration"):
        result = export(random_model, tmp_path / "q.tflite", "int8", calibration_data=images)
    assert result.calibration_images == 8
    assert "calibrating on 8 images" in caplog.text
    assert "has only 8 images" in caplog.text and "fewer than 50" in caplog.text
    assert read_metadata(result.path)["quantization"] == "int8"
    interpreter = new_interpreter(result.path)
    assert any(detail["dtype"] == np.int8 for detail in interpreter.get_tensor_details())


@pytest.mark.slow  # CLI subprocesses
def test_cli(random_model, tmp_path):
    random_model.save(tmp_path / "m.keras")
    ok = subprocess.run([sys.executable, "-m", "levit_tf.cli", "export-tflite",
                         str(tmp_path / "m.keras"), str(tmp_path / "m.tflite"), "--report"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "wrote" in ok.stdout and "float32" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "levit_tf.cli", "export-tflite",
                          str(tmp_path / "m.keras"), str(tmp_path / "q.tflite"),
                          "--quantization", "int8"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "needs calibration_data" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "q.tflite").exists()


def test_float_ops_option_values():
    """--float-ops: absent -> the mode's default, 'none' -> every op quantized, names and
    'attention' expanded; the exporter resolves the default per mode."""
    from levit_tf.cli.export_tflite import _float_ops
    from levit_tf.tflite.exporter import default_float_ops
    from levit_tf.tflite.quantization import Quantization

    assert _float_ops(None) is None and _float_ops(["none"]) == () and _float_ops(["NONE"]) == ()
    assert _float_ops(["attention", "add"]) == (*ATTENTION_FLOAT_OPS, "ADD")
    assert default_float_ops(Quantization.INT8) == ATTENTION_FLOAT_OPS
    assert all(default_float_ops(mode) == () for mode in Quantization
               if mode is not Quantization.INT8)


def test_folder_calibration_spreads_over_class_folders(tmp_path):
    """The first images a folder gives (calibration takes 200 of them) come from every class
    subfolder, not from the first folders in name order."""
    from PIL import Image

    from levit_tf.tflite.calibration import normalized_images

    colors = {"a_red": (255, 0, 0), "b_green": (0, 255, 0), "c_blue": (0, 0, 255)}
    for name, color in colors.items():
        (tmp_path / name).mkdir()
        for i in range(10):
            Image.new("RGB", (32, 32), color).save(tmp_path / name / f"{i}.png")
    first = list(normalized_images(tmp_path, (32, 32)).take(9).as_numpy_iterator())
    dominant = {int(np.argmax(image.mean(axis=(0, 1)))) for image in first}
    assert dominant == {0, 1, 2}
