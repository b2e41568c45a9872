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
import numpy as np
import tensorflow as tf

from levit_tf.export.saved_model import serving_archive
from levit_tf.models.levit.inference import LevitForInference, optimize_for_inference
from levit_tf.models.levit.modeling_levit import LevitPreTrainedModel
from levit_tf.preprocessing.config import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from levit_tf.tflite.calibration import (
    IMAGE_SUFFIXES,
    CalibrationSource,
    calibration_images,
    representative_dataset,
    source_name,
    to_input_domain,
)
from levit_tf.tflite.metadata import embed_metadata, labels_sidecar
from levit_tf.tflite.quantization import Quantization, configure
from levit_tf.tflite.weight_rounding import (
    DYNAMIC_MIN_ELEMENTS,
    WEIGHT_ROUNDINGS,
    RoundingReport,
    check_stored,
    round_weights,
)
from levit_tf.utils.backends import require_tensorflow_backend
from levit_tf.utils.files import atomic_write_bytes, check_writable_file
from levit_tf.utils.labels import check_one_line_labels, ordered_labels

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
    calibration_images: int | None = None  # images the ranges (and GPTQ) came from
    weight_rounding: RoundingReport | None = None  # GPTQ's layers and errors; None: nearest


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


@functools.cache
def _builtin_names_by_code() -> dict[int, str]:
    from tensorflow.lite.python import schema_py_generated as schema

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def builtin_op_name(builtin_code: int, deprecated_builtin_code: int = 0) -> str:
    """The ``BuiltinOperator`` name of an operator code's two fields (the larger one is the
    code: old files fill only the deprecated field), e.g. 'SOFTMAX'; the number if unknown."""
    op = max(builtin_code, deprecated_builtin_code)
    return _builtin_names_by_code().get(op, str(op))


def _op_names(model_bytes: bytes) -> set[str]:
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(model_bytes, 0)
    names = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        name = builtin_op_name(code.BuiltinCode(), code.DeprecatedBuiltinCode())
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
           uint8_input: bool = False, float_ops: Sequence[str] | None = None,
           batch_size: int = 1, weight_rounding: str = "nearest") -> ExportResult:
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
            ('BATCH_MATMUL', 'SOFTMAX')). None: the mode's default (``default_float_ops``):
            int8 keeps ``ATTENTION_FLOAT_OPS`` in float, the fastest full-integer graph (one
            XNNPACK partition); ``()`` quantizes every op (the plain full-int8 graph).
        weight_rounding: 'nearest' (the converter's) or 'gptq': int8 weights rounded by GPTQ
            on the calibration images (dynamic, int8, int16x8; needs ``calibration_data``),
            which keeps each layer's outputs closer to float (``weight_rounding`` module).
    """
    require_tensorflow_backend("TFLite export")
    mode = Quantization(quantization)
    path = Path(path)
    float_ops = check_request(path, mode, calibration_data, calibration_steps, float_ops,
                              weight_rounding)
    labels = export_labels(model)
    # full integer I/O quantizes the raw 0..255 input exactly; float modes take uint8 directly
    input_mode = "normalized"
    if uint8_input:
        input_mode = "rgb255" if mode is Quantization.INT8 else "uint8"
    folded = _inference_model(model, input_mode)
    config = folded.config
    representative, calibrated_on, rounding = None, None, None
    if mode.needs_calibration or weight_rounding == "gptq":
        images = calibration_images(calibration_data, calibration_steps, config.image_hw,
                                    functools.partial(to_input_domain, input_mode=input_mode))
        calibrated_on = len(images)
        if mode.needs_calibration:
            representative = representative_dataset(images)
    if weight_rounding == "gptq":
        if folded is model:  # never change the caller's model
            folded = LevitForInference.from_config(model.get_config())
            folded.set_weights(model.get_weights())
        small = DYNAMIC_MIN_ELEMENTS if mode is Quantization.DYNAMIC else 1
        rounding = round_weights(folded, np.concatenate(images), min_elements=small)
    with tempfile.TemporaryDirectory() as saved_model:
        serving_archive(folded, batch_size=batch_size, probabilities=False,
                        images=False).write_out(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, [SIGNATURE])
        configure(converter, mode, representative, integer_io=uint8_input)
        if float_ops:
            debug_options = tf.lite.experimental.QuantizationDebugOptions(
                denylisted_ops=list(float_ops))
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=representative, debug_options=debug_options)
            model_bytes = debugger.get_nondebug_quantized_model()
            if uint8_input:  # the debugger ignores the converter's integer I/O types
                from tensorflow.lite.python.util import modify_model_io_type

                model_bytes = bytes(modify_model_io_type(bytearray(model_bytes), tf.uint8,
                                                         tf.int8))
        else:
            model_bytes = converter.convert()
    check_builtin_only(model_bytes)
    if rounding is not None:
        check_stored(model_bytes, rounding)
    metadata = {
        "id2label": {str(k): v for k, v in config.id2label.items()},
        "input_mode": input_mode, "mean": list(IMAGENET_DEFAULT_MEAN),
        "std": list(IMAGENET_DEFAULT_STD), "image_size": list(config.image_hw),
        "quantization": mode.value, "float_ops": list(float_ops),
        "weight_rounding": weight_rounding,
        "config": config.to_dict(),
    }
    model_bytes = embed_metadata(model_bytes, json.loads(json.dumps(metadata)))
    # labels first: a published .tflite always has its labels file beside it
    _write_atomically(labels_sidecar(path), "".join(f"{label}\n" for label in labels).encode())
    _write_atomically(path, model_bytes)
    return ExportResult(path, mode, input_mode, len(model_bytes), tuple(float_ops),
                        calibrated_on, rounding)


def export_labels(model: keras.Model) -> list[str]:
    """The class names a .tflite export publishes (metadata and ``labels.txt``), in class
    order. Raises ValueError for ids that are not 0..N-1 and for labels with a line break
    (``labels.txt`` is read line by line): they are refused, not escaped."""
    config = getattr(model, "config", None)
    if config is None:
        return []
    labels = ordered_labels(config.id2label, config.num_labels)
    check_one_line_labels(labels)
    return labels


def builtin_op_names() -> set[str]:
    """Every TFLite builtin operator name (``BuiltinOperator``), e.g. 'SOFTMAX'."""
    return set(_builtin_names_by_code().values())


def check_float_ops(names: Sequence[str]) -> tuple[str, ...]:
    """Upper-cased op names for ``float_ops``; raises ValueError naming unknown ones with the
    close valid names ('attention' is expanded by the CLI, not here)."""
    import difflib

    valid = builtin_op_names()
    ops = tuple(dict.fromkeys(str(name).upper() for name in names))
    for op in ops:
        if op not in valid:
            close = difflib.get_close_matches(op, sorted(valid), n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            raise ValueError(
                f"unknown float op {op!r}{hint}; use TFLite builtin op names such as "
                f"{', '.join(ATTENTION_FLOAT_OPS)}, FULLY_CONNECTED, CONV_2D, ADD, MUL, or "
                "'attention'")
    return ops


def check_calibration_count(source: CalibrationSource | None, steps: int) -> None:
    """Fails at once when ``source`` cannot give ``steps`` images: a missing folder, a folder
    with fewer image files, or a shorter array (datasets and tfds are counted while read)."""
    if source is None or isinstance(source, tf.data.Dataset):
        return
    if isinstance(source, np.ndarray):
        count = len(source)
    elif str(source).startswith("tfds:"):
        return
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise ValueError(f"calibration data {str(source)!r}: no such folder (expected a "
                             "folder of images or tfds:NAME[:SPLIT])")
        count = sum(1 for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if count < steps:
        raise ValueError(f"calibration data {source_name(source)} has {count} images, "
                         f"--calibration-steps asks for {steps} (lower it or add images)")


def check_request(path: Path, mode: Quantization, calibration_data: CalibrationSource | None,
                  calibration_steps: int | None, float_ops: Sequence[str] | None,
                  weight_rounding: str = "nearest") -> tuple[str, ...]:
    """The checks ``export`` makes before any conversion work (the CLI runs them before it
    loads the model); returns the validated ``float_ops``."""
    if path.suffix != ".tflite":
        raise ValueError(f"{path}: the output file name must end in .tflite")
    if not path.parent.is_dir():
        raise ValueError(f"{path.parent}: output directory does not exist")
    check_writable_file(path)
    check_writable_file(labels_sidecar(path), "labels file")
    if weight_rounding not in WEIGHT_ROUNDINGS:
        raise ValueError(f"weight_rounding must be one of {', '.join(WEIGHT_ROUNDINGS)}, got "
                         f"{weight_rounding!r}")
    gptq = weight_rounding == "gptq"
    if gptq and not mode.has_int8_weights:
        modes = ", ".join(m.value for m in Quantization if m.has_int8_weights)
        raise ValueError(f"gptq weight rounding applies to int8 weights ({modes}), not "
                         f"{mode.value}")
    if mode.needs_calibration and calibration_data is None:
        raise ValueError(f"{mode.value} quantization needs calibration_data (real images, "
                         "200 recommended)")
    if gptq and calibration_data is None:
        raise ValueError("gptq weight rounding needs calibration_data (real images, 200 "
                         "recommended)")
    if (mode.needs_calibration or gptq) and calibration_steps is not None:
        if isinstance(calibration_steps, bool) or not isinstance(calibration_steps,
                                                                 int | np.integer):
            raise ValueError(f"calibration steps must be an integer, got {calibration_steps!r}")
        if calibration_steps < 1:
            raise ValueError(f"{mode.value} quantization needs at least 1 calibration step, got "
                             f"{calibration_steps} (default: every image there, up to 200)")
        check_calibration_count(calibration_data, calibration_steps)
    if float_ops is None:
        return default_float_ops(mode)
    if float_ops and mode is not Quantization.INT8:
        raise ValueError("float_ops (selective quantization) applies to int8 mode only")
    return check_float_ops(float_ops) if float_ops else ()


def default_float_ops(mode: Quantization) -> tuple[str, ...]:
    """The op types ``mode`` keeps in float unless asked otherwise: the attention core for
    int8 (quantized, BATCH_MATMUL / SOFTMAX / HARD_SWISH leave XNNPACK for builtin kernels and
    split LeViT-128S's graph into 48 partitions: 1.9x float32's time on a VNNI CPU)."""
    return ATTENTION_FLOAT_OPS if mode is Quantization.INT8 else ()


def _write_atomically(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)
