"""Quantization modes and the converter settings each one needs (one explicit branch per mode)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable

import numpy as np
import tensorflow as tf


class Quantization(str, enum.Enum):
    """TFLite export modes."""

    FLOAT32 = "float32"  # no quantization
    FLOAT16 = "float16"  # fp16 weights + reduced-precision metadata: ARMv8.2 XNNPACK runs fp16
    DYNAMIC = "dynamic"  # int8 weights, activations quantized on the fly
    INT8 = "int8"  # full integer: int8 weights (per-channel) and activations, calibrated
    INT16X8 = "int16x8"  # int16 activations, int8 weights, calibrated

    @property
    def needs_calibration(self) -> bool:
        return self in (Quantization.INT8, Quantization.INT16X8)

    @property
    def has_int8_weights(self) -> bool:
        """Whether the converter stores this mode's weights as per-channel int8."""
        return self in (Quantization.DYNAMIC, Quantization.INT8, Quantization.INT16X8)


RepresentativeDataset = Callable[[], Iterable[list[np.ndarray]]]


def configure(converter: tf.lite.TFLiteConverter, mode: Quantization,
              representative_dataset: RepresentativeDataset | None = None,
              integer_io: bool = False) -> None:
    """Sets ``converter`` up for ``mode``. Only TFLite builtin ops are allowed (never Flex)."""
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode is Quantization.FLOAT32:
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode is Quantization.FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
        # writes the "reduced_precision_support" metadata XNNPACK reads to run fp16 kernels
        converter.target_spec._experimental_supported_accumulation_type = tf.float16
        return
    if mode is Quantization.DYNAMIC:
        return
    if representative_dataset is None:
        raise ValueError(f"{mode.value} quantization needs calibration data")
    converter.representative_dataset = representative_dataset
    if mode is Quantization.INT8:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if integer_io:
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.int8
        return
    if mode is Quantization.INT16X8:
        # 16x8 has no HARD_SWISH kernel: those ops fall back to float (TFLITE_BUILTINS)
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS]
        return
    raise ValueError(f"unknown quantization mode {mode!r}")
