"""Keras LeViT -> .tflite for ARM CPUs (XNNPACK): folded graph, builtin ops only, named signature.

Pipeline: ``optimize_for_inference`` (BN folded, heads fused, biases constant; optionally the
ImageNet normalization folded into the stem for raw uint8 input) -> a SavedModel with one
``serving_default`` signature (``pixel_values`` -> ``logits``) -> ``TFLiteConverter`` set up for
the quantization mode -> checks (builtin ops only) -> label metadata -> atomic write.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from levit_tf.inference import LevitForInference, optimize_for_inference
from levit_tf.modeling_levit import LevitPreTrainedModel
from levit_tf.preprocessing.config import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from levit_tf.tflite.calibration import (
    CalibrationSource,
    calibration_images,
    representative_dataset,
    to_input_domain,
)
from levit_tf.tflite.metadata import embed_metadata, labels_sidecar
from levit_tf.tflite.quantization import Quantization, configure

SIGNATURE = "serving_default"
# Selective int8: the attention core (QK^T, bias, softmax, AV) and Hardswish stay in float; the
# linear layers and convolutions (~90% of the FLOPs) are int8. XNNPACK then runs the whole graph.
ATTENTION_FLOAT_OPS = ("BATCH_MATMUL", "SUB", "SOFTMAX", "HARD_SWISH")
INPUT_NAME = "pixel_values"
OUTPUT_NAME = "logits"


@dataclass
class ExportResult:
    path: Path
    quantization: Quantization
    input_mode: str
    size_bytes: int
    float_ops: tuple[str, ...]
    calibration_images: int | None = None  # images the int8 / int16x8 ranges came from


def _inference_model(model: keras.Model, input_mode: str) -> LevitForInference:
    if isinstance(model, LevitForInference):
        if model.input_mode != input_mode:
            raise ValueError(f"model takes {model.input_mode!r} input, {input_mode!r} asked for")
        return model
    if not isinstance(model, LevitPreTrainedModel):
        raise TypeError(f"expected a LeViT model, got {type(model).__name__}")
    if not model.config.num_labels or not hasattr(model, "heads") or not model.heads():
        raise ValueError("TFLite export needs a classifier (a model with a head), got "
                         f"{type(model).__name__} with {model.config.num_labels} labels")
    return optimize_for_inference(model, input_mode=input_mode)


def _write_saved_model(model: LevitForInference, directory: str, batch_size: int) -> None:
    height, width = model.config.image_hw
    dtype = tf.uint8 if model.input_mode == "uint8" else tf.float32
    spec = tf.TensorSpec((batch_size, height, width, model.config.num_channels), dtype,
                         name=INPUT_NAME)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=SIGNATURE, fn=lambda pixel_values: {OUTPUT_NAME: model(pixel_values)["logits"]},
        input_signature=[spec])
    archive.write_out(directory, verbose=False)


def _op_names(model_bytes: bytes) -> set[str]:
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(model_bytes, 0)
    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        op = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = builtin.get(op, str(op))
        if name == "CUSTOM":
            name = f"CUSTOM:{code.CustomCode().decode()}"
        names.add(name)
    return names


def check_builtin_only(model_bytes: bytes) -> None:
    """Raises if the model needs Flex (SELECT_TF_OPS) or custom ops, which Android lacks."""
    foreign = sorted(n for n in _op_names(model_bytes) if n.startswith("CUSTOM"))
    if foreign:
        raise ValueError(f"exported graph uses non-builtin ops {foreign}")


def export(model: keras.Model, path: str | os.PathLike,
           quantization: Quantization | str = Quantization.FLOAT32, *,
           calibration_data: CalibrationSource | None = None, calibration_steps: int | None = None,
           uint8_input: bool = False, float_ops: Sequence[str] = (),
           batch_size: int = 1) -> ExportResult:
    """Writes ``model`` as a .tflite file for XNNPACK.

    Args:
        model: a LeViT classifier (any of the Levit* classification classes) or its
            ``optimize_for_inference`` twin.
        path: output ``.tflite`` file; written atomically, plus ``<name>.labels.txt``.
        quantization: float32 | float16 | dynamic | int8 | int16x8.
        calibration_data: for int8 / int16x8: a folder of images, 'tfds:NAME[:SPLIT]', a
            tf.data.Dataset or a numpy array of normalized images (see ``calibration``).
        calibration_steps: number of calibration images; None: the images that exist, up to
            200 (a warning below 50). More than the data has is an error.
        uint8_input: take raw RGB uint8 (B, H, W, 3) with ImageNet normalization folded into
            the stem (full int8: the uint8 input is quantized exactly, scale 1).
        float_ops: op types kept in float in full-int8 mode (selective quantization, e.g.
            ('BATCH_MATMUL', 'SOFTMAX')).
    """
    mode = Quantization(quantization)
    path = Path(path)
    if path.suffix != ".tflite":
        raise ValueError(f"{path}: the output file name must end in .tflite")
    if not path.parent.is_dir():
        raise ValueError(f"{path.parent}: output directory does not exist")
    if mode.needs_calibration and calibration_data is None:
        raise ValueError(f"{mode.value} quantization needs calibration_data (real images, "
                         "200 recommended)")
    if float_ops and mode is not Quantization.INT8:
        raise ValueError("float_ops (selective quantization) applies to int8 mode only")
    # full integer I/O quantizes the raw 0..255 input exactly; float modes take uint8 directly
    input_mode = "normalized"
    if uint8_input:
        input_mode = "rgb255" if mode is Quantization.INT8 else "uint8"
    folded = _inference_model(model, input_mode)
    config = folded.config
    representative, calibrated_on = None, None
    if mode.needs_calibration:
        images = calibration_images(calibration_data, calibration_steps, config.image_hw,
                                    functools.partial(to_input_domain, input_mode=input_mode))
        representative, calibrated_on = representative_dataset(images), len(images)
    with tempfile.TemporaryDirectory() as saved_model:
        _write_saved_model(folded, saved_model, batch_size)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, [SIGNATURE])
        configure(converter, mode, representative, integer_io=uint8_input)
        if float_ops:
            debug_options = tf.lite.experimental.QuantizationDebugOptions(
                denylisted_ops=list(float_ops))
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=representative, debug_options=debug_options)
            model_bytes = debugger.get_nondebug_quantized_model()
        else:
            model_bytes = converter.convert()
    check_builtin_only(model_bytes)
    metadata = {
        "id2label": {str(k): v for k, v in config.id2label.items()},
        "input_mode": input_mode, "mean": list(IMAGENET_DEFAULT_MEAN),
        "std": list(IMAGENET_DEFAULT_STD), "image_size": list(config.image_hw),
        "quantization": mode.value, "float_ops": list(float_ops),
        "config": config.to_dict(),
    }
    model_bytes = embed_metadata(model_bytes, json.loads(json.dumps(metadata)))
    _write_atomically(path, model_bytes)
    _write_atomically(labels_sidecar(path),
                      "".join(f"{config.id2label[i]}\n" for i in range(config.num_labels)).encode())
    return ExportResult(path, mode, input_mode, len(model_bytes), tuple(float_ops),
                        calibrated_on)


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
