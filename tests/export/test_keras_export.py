"""Keras' own ``model.export(path, format=...)`` on every LeViT class, however it was built
(constructor, ``from_pretrained``, ``load_model``), at 224 px and at other sizes: each artefact,
run by its own runtime, returns the Keras outputs; bad requests are one line and write nothing;
on the JAX and PyTorch backends the formats Keras cannot write for LeViT are refused in one line.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest

from levit_tf import (
    LevitConfig,
    LevitForImageClassification,
    LevitForImageClassificationWithTeacher,
    LevitModel,
)
from levit_tf.export.keras_export import BACKEND_FORMATS
from levit_tf.testing.models import SMALL, randomize

ROOT = Path(__file__).resolve().parents[2]
FORMATS = BACKEND_FORMATS["tensorflow"]
#: max |artefact - keras| / max |keras|, per output (the issue's bounds)
TOLERANCE = {"tf_saved_model": 1e-5, "litert": 1e-4, "onnx": 1e-4, "openvino": 1e-4}
TARGET = {"tf_saved_model": "saved_model", "litert": "model.tflite", "onnx": "model.onnx",
          "openvino": "model.xml"}


def run_saved_model(path: Path, pixels: np.ndarray) -> dict[str, np.ndarray]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # held: the function needs its variables alive
    return {k: v.numpy() for k, v in loaded.serve(pixels).items()}


def run_litert(path: Path, pixels: np.ndarray) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(str(path)).get_signature_runner()(pixel_values=pixels)


def run_onnx(path: Path, pixels: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {"pixel_values": pixels}), strict=True))


def run_openvino(path: Path, pixels: np.ndarray) -> dict[str, np.ndarray]:
    import openvino

    # f32 math: on CPUs with AVX512_BF16 / AMX, OpenVINO's default precision is bf16 (measured
    # 9e-3 relative error here), a runtime choice, not the export's
    compiled = openvino.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return {port.get_any_name(): value for port, value in compiled(pixels).items()}


RUNNERS: dict[str, Callable[[Path, np.ndarray], dict[str, np.ndarray]]] = {
    "tf_saved_model": run_saved_model, "litert": run_litert, "onnx": run_onnx,
    "openvino": run_openvino}
PACKAGES = {"litert": "ai_edge_litert", "onnx": "onnxruntime", "openvino": "openvino"}


def model_built_by_constructor(tmp_path_factory) -> keras.Model:
    return randomize(LevitModel(LevitConfig(**SMALL)), seed=1)  # 96 px


def model_from_pretrained(tmp_path_factory) -> keras.Model:
    """An HF checkpoint directory (random weights, one head, 128 px) through from_pretrained."""
    import transformers

    from levit_tf.testing.torch_reference import randomize_

    fields = {k: v for k, v in SMALL.items() if k not in ("num_labels", "image_size")}
    hf = randomize_(transformers.LevitForImageClassification(transformers.LevitConfig(
        **fields, image_size=128, num_labels=5)), seed=2)
    folder = tmp_path_factory.mktemp("hf")
    hf.save_pretrained(folder)
    return LevitForImageClassification.from_pretrained(folder)


def model_from_load_model(tmp_path_factory) -> keras.Model:
    """LeViT-128S at 224 px (random weights) saved and loaded back with load_model."""
    path = tmp_path_factory.mktemp("keras") / "levit-128S.keras"
    randomize(LevitForImageClassificationWithTeacher(LevitConfig.from_preset("levit-128S")),
              seed=3).save(path)
    return keras.saving.load_model(path)


BUILDERS = {
    "LevitModel-constructor-96px": model_built_by_constructor,
    "LevitForImageClassification-from_pretrained-128px": model_from_pretrained,
    "LevitForImageClassificationWithTeacher-load_model-224px": model_from_load_model,
}
_models: dict[str, keras.Model] = {}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Callable[[str], keras.Model]:
    def get(case: str) -> keras.Model:
        if case not in _models:
            _models[case] = BUILDERS[case](tmp_path_factory)
        return _models[case]

    yield get
    _models.clear()


CASES = [pytest.param(case, fmt, id=f"{case}-{fmt}",
                      marks=[pytest.mark.slow] if "224px" in case else [])
         for case in BUILDERS for fmt in FORMATS]


@pytest.mark.parametrize("case,fmt", CASES)
def test_export_runs_with_the_keras_outputs(case, fmt, built, tmp_path):
    if fmt in PACKAGES and importlib.util.find_spec(PACKAGES[fmt]) is None:
        pytest.skip(f"{PACKAGES[fmt]} is not installed")
    model = built(case)
    pixels = np.random.default_rng(4).normal(size=(2, *model.config.image_hw, 3)).astype(
        np.float32)
    expected = {k: np.asarray(v) for k, v in model(pixels).items()}
    target = tmp_path / "out" / TARGET[fmt]
    model.export(target, format=fmt, verbose=False)
    outputs = RUNNERS[fmt](target, pixels)
    assert set(outputs) == set(expected), (sorted(outputs), sorted(expected))
    for key, value in expected.items():
        error = np.max(np.abs(outputs[key] - value)) / np.max(np.abs(value))
        assert error <= TOLERANCE[fmt], f"{fmt} {key}: relative error {error:.2e}"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [TARGET[fmt]] + (["model.bin"] if fmt == "openvino" else []))  # no staging left


def test_bad_requests_are_one_line_and_write_nothing(built, tmp_path):
    model = built("LevitModel-constructor-96px")
    with pytest.raises(ValueError, match=r"^Unrecognized format=nope\."):
        model.export(tmp_path / "m.x", format="nope")
    with pytest.raises(ValueError, match=r"a litert export's file name must end in \.tflite$"):
        model.export(tmp_path / "m.onnx", format="litert")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="full exists and is not an empty folder"):
        model.export(tmp_path / "full", format="tf_saved_model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


OTHER_BACKEND = """
import json, sys, tempfile
from pathlib import Path
import keras, numpy as np
from levit_tf import LevitConfig, LevitForImageClassification
from levit_tf.export.keras_export import BACKEND_FORMATS, pixel_values_signature
from levit_tf.testing.models import SMALL

model = LevitForImageClassification(LevitConfig(**SMALL))
work = Path(sys.argv[1])
result = {"refused": {}, "keras_fails": {}, "saved_model_error": None}
for fmt in ("tf_saved_model", "litert", "onnx", "openvino"):
    path = work / {"tf_saved_model": "sm", "litert": "m.tflite", "onnx": "m.onnx",
                   "openvino": "m.xml"}[fmt]
    if fmt in BACKEND_FORMATS[keras.backend.backend()]:
        model.export(path, format=fmt, verbose=False)
        import tensorflow as tf
        pixels = np.random.default_rng(0).normal(size=(2, 96, 96, 3)).astype("float32")
        ours = keras.ops.convert_to_numpy(model(pixels)["logits"])
        loaded = tf.saved_model.load(str(path))
        served = loaded.serve(pixels)["logits"].numpy()
        result["saved_model_error"] = float(np.abs(served - ours).max() / np.abs(ours).max())
        continue
    try:
        model.export(path, format=fmt)
    except ValueError as err:
        result["refused"][fmt] = str(err)
    try:  # Keras' exporter itself, past our check: it must fail too
        keras.Model.export(model, str(work / ("direct-" + path.name)), format=fmt,
                           verbose=False, input_signature=pixel_values_signature((96, 96)))
    except Exception as err:
        result["keras_fails"][fmt] = type(err).__name__
result["left"] = sorted(p.name for p in work.iterdir() if not p.name.startswith("direct-"))
print(json.dumps(result))
"""


@pytest.mark.slow  # two fresh interpreters (JAX, PyTorch)
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends_export_what_keras_can_and_refuse_the_rest(backend, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu",
           "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", OTHER_BACKEND, str(tmp_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    refused = [fmt for fmt in FORMATS if fmt not in BACKEND_FORMATS[backend]]
    assert sorted(result["refused"]) == sorted(refused)
    for fmt, message in result["refused"].items():
        assert message.splitlines() == [message] and message.startswith(
            f"format={fmt!r} does not export a LeViT model on the {backend} backend"), message
    assert sorted(result["keras_fails"]) == sorted(refused), result  # nothing working is hidden
    if "tf_saved_model" in BACKEND_FORMATS[backend]:
        assert result["saved_model_error"] <= 1e-5, result
        assert result["left"] == ["sm"]
    else:
        assert result["left"] == []
