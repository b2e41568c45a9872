"""LiteRT's GPU accelerator on our exports, run on Mesa's software Vulkan (lavapipe).

Every float export (float32, float16, uint8 input; 96 px and one 224 px LeViT-128S) must compile
with the GPU accelerator *alone* (LiteRT refuses that compile when any op is outside the GPU
delegate) and report ``is_fully_accelerated()``; int8 files only get their status reported. A tiny
model with a 5-D tensor proves the check can fail: its GPU-only compile is refused and LiteRT's
fallback list names its ops. GPU-vs-CPU logits are held to bounds measured here (see each).

lavapipe comes from Debian bookworm-backports through a private apt folder (``lavapipe.prepare``),
cached in the user cache dir; under CI (``CI=true``) it is fetched fresh into the test's temp dir.
Mesa's shader cache lives in the test's temp dir.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.models.levit.presets import PRESETS
from levit_tf.testing.models import SMALL, randomize
from levit_tf.tflite import TFLiteModel, export
from levit_tf.tflite.calibration import to_input_domain
from levit_tf.tflite.compiled import compile_model
from levit_tf.tflite.report import format_gpu, gpu_report

# GPU vs CPU max |logit difference|, relative to the CPU's max |logit| (random weights give
# logits of ~3 on the 96 px model, ~200 on LeViT-128S at 224 px).
# float16 GPU math (LiteRT's default): measured 3e-3 - 5e-3 (96 px float modes: 0.0101-0.0154
# absolute; 224 px: 1.03 of 198). fp16 rounds at ~5e-4 relative, accumulated over ~20 layers;
# 0.02 leaves ~4x headroom.
FP16_RELATIVE = 0.02
# enforce_f32: measured 1.4e-6 - 2.6e-6 absolute on logits of ~3 (<= 1e-6 relative): float32
# reassociation only.
F32_RELATIVE = 1e-5


@pytest.fixture(scope="module")
def gpu(tmp_path_factory):
    """lavapipe activated for this process (the user's cached one; fresh under CI)."""
    from levit_tf.tflite.devices import lavapipe

    temp = tmp_path_factory.mktemp("gpu")
    cache = temp / "lavapipe" if os.environ.get("CI") == "true" else None
    runtime = lavapipe.prepare(cache)
    lavapipe.activate(runtime, shader_cache=temp / "shader-cache")
    return runtime


@pytest.fixture(scope="module")
def small_model():
    return randomize(LevitForImageClassificationWithTeacher(LevitConfig(**SMALL)), seed=11)


@pytest.fixture(scope="module")
def small_exports(small_model, tmp_path_factory):
    """The float exports of a 96 px LeViT: float32, float16, float32 with uint8 input."""
    out = tmp_path_factory.mktemp("small")
    return {name: export(small_model, out / f"{name}.tflite", mode, **kwargs).path
            for name, mode, kwargs in [("float32", "float32", {}), ("float16", "float16", {}),
                                       ("uint8", "float32", {"uint8_input": True})]}


@pytest.fixture(scope="module")
def quantized_exports(small_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("quantized")
    calibration = np.random.default_rng(3).normal(size=(8, 96, 96, 3)).astype(np.float32)
    # the default int8 only: each quantized kind is a cold shader compile (~50 s in CI); the
    # dynamic-range file was checked by hand (fully accelerated, see README)
    return {"int8": export(small_model, out / "int8.tflite", "int8",
                           calibration_data=calibration, calibration_steps=8).path}


def _inputs(path, count: int = 4, size: int = 96) -> np.ndarray:
    mode = TFLiteModel(path).input_mode
    sample = np.random.default_rng(0).normal(size=(count, size, size, 3)).astype(np.float32)
    return to_input_domain(sample, mode)


@pytest.mark.parametrize("name", ["float32", "float16", "uint8"])
def test_float_exports_fully_gpu_accelerated(name, gpu, small_exports):
    report = gpu_report(small_exports[name], _inputs(small_exports[name]))
    print(name, format_gpu(report))
    assert report.adapter.startswith("llvmpipe")  # the GPU accelerator ran, on lavapipe
    assert report.gpu_only_compile and report.litert_fully_accelerated
    assert report.fully_accelerated and report.fallback == []
    assert report.max_diff_fp16 < FP16_RELATIVE * report.max_abs_logit
    assert report.max_diff_f32 < F32_RELATIVE * report.max_abs_logit


@pytest.mark.slow  # int8 kernels are a second cold shader compile
def test_quantized_exports_report_gpu_status(gpu, quantized_exports):
    """int8: status reported, not required (int8 files target the CPU / NPU); the GPU runs
    float math against int8 kernels on the CPU, so their difference is the quantization's."""
    for name in ("int8",):
        report = gpu_report(quantized_exports[name], _inputs(quantized_exports[name]))
        print(name, format_gpu(report))
        assert report.fully_accelerated == (report.gpu_only_compile and not report.fallback)
        assert report.error or (np.isfinite(report.max_diff_fp16)
                                and np.isfinite(report.max_diff_f32))


@pytest.fixture(scope="module")
def five_d_model(tmp_path_factory):
    """A tiny model with a rank-5 tensor, which LiteRT's GPU delegate does not take."""
    import tensorflow as tf

    class FiveD(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32, name="pixel_values")])
        def serve(self, x):
            y = tf.reshape(tf.reshape(tf.nn.relu(x), [1, 2, 2, 1, 2]) + 1.0, [1, 8])
            return {"logits": y * 2.0}

    module = FiveD()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.serve.get_concrete_function()], module)
    path = tmp_path_factory.mktemp("five_d") / "five_d.tflite"
    path.write_bytes(converter.convert())
    return path


def test_unsupported_op_fails_the_check(gpu, five_d_model):
    compiled, status = compile_model(five_d_model, "gpu")
    assert not status.gpu_only  # the GPU-only compile was refused
    assert not status.fully_accelerated
    assert {"RESHAPE", "ADD"} <= set(status.fallback_ops)
    assert status.cpu_ops and status.cpu_ops > 0
    # compiled GPU + CPU, it still computes the right thing
    x = np.linspace(-1, 1, 8, dtype=np.float32)[None]
    inputs = {"pixel_values": compiled.create_input_buffer_by_name("serving_default",
                                                                     "pixel_values")}
    outputs = {"logits": compiled.create_output_buffer_by_name("serving_default", "logits")}
    inputs["pixel_values"].write(x)
    compiled.run_by_name("serving_default", inputs, outputs)
    logits = outputs["logits"].read(8, np.float32)
    np.testing.assert_allclose(logits, (np.maximum(x[0], 0) + 1) * 2, rtol=1e-3)


@pytest.mark.slow  # cold shader compile: 692 s on this (loaded) 2-core machine
def test_levit_128s_224_fully_gpu_accelerated(gpu, tmp_path):
    """One real-size model: LeViT-128S at 224 px (random weights), float32, GPU at fp16 (what an
    Android app gets by default). The cold shader compile dominates this test's time."""
    config = LevitConfig(**PRESETS["levit-128S"], image_size=224, num_labels=1000)
    model = randomize(LevitForImageClassificationWithTeacher(config), seed=5)
    path = export(model, tmp_path / "levit_128s.tflite").path
    inputs = np.random.default_rng(0).normal(size=(2, 224, 224, 3)).astype(np.float32)
    cpu = TFLiteModel(path)(inputs)
    gpu16 = TFLiteModel(path, accelerator="gpu")
    status = gpu16.gpu_status
    assert status.gpu_only and status.litert_fully_accelerated and status.fully_accelerated
    diff = float(np.abs(gpu16(inputs) - cpu).max())
    print(f"LeViT-128S 224 px float32: GPU fp16 vs CPU max|diff| {diff:.3g}, "
          f"max|logit| {np.abs(cpu).max():.3g}")
    assert diff < FP16_RELATIVE * np.abs(cpu).max()


def test_cli_gpu(gpu, small_model, small_exports, tmp_path, capsys):
    from levit_tf.cli import main

    small_model.save(tmp_path / "small.keras")
    assert main(["verify", str(tmp_path / "small.keras"), str(small_exports["float16"]),
                 "--accelerator", "gpu"]) == 0
    assert "fully GPU-accelerated" in capsys.readouterr().out


def test_no_gpu_is_one_line(small_exports, tmp_path):
    """No usable Vulkan driver: one line naming the problem and the fix, exit 1."""
    env = {**os.environ, "VK_DRIVER_FILES": str(tmp_path / "none.json"),
           "VK_ICD_FILENAMES": str(tmp_path / "none.json")}
    done = subprocess.run([sys.executable, "-m", "levit_tf.cli", "predict",
                           str(small_exports["float32"]), "x.png", "--accelerator", "gpu"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "gpu-runtime" in lines[0], done.stderr
