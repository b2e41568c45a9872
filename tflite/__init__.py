"""TFLite export for ARM mobile CPUs (installed as ``levit_tf.tflite``)."""

from levit_tf.tflite.export import (
    ATTENTION_FLOAT_OPS,
    ExportResult,
    check_builtin_only,
    export,
)
from levit_tf.tflite.metadata import labels_sidecar, read_metadata
from levit_tf.tflite.quantization import Quantization
from levit_tf.tflite.runtime import DelegateCoverage, TFLiteModel, xnnpack_coverage

__all__ = [
    "ATTENTION_FLOAT_OPS",
    "DelegateCoverage",
    "ExportResult",
    "Quantization",
    "TFLiteModel",
    "check_builtin_only",
    "export",
    "labels_sidecar",
    "read_metadata",
    "xnnpack_coverage",
]
