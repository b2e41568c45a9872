"""TFLite export for ARM mobile CPUs (installed as ``levit_tf.tflite``).

Lazy (PEP 562): importing the package, or its ``cli`` module for ``levit-tf --help``, loads no
TensorFlow; each public name imports its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from levit_tf.utils.lazy import lazy_exports

_EXPORTS = {
    "ATTENTION_FLOAT_OPS": ".exporter",
    "ExportResult": ".exporter",
    "CpuOptionsRejected": ".compiled",
    "check_builtin_only": ".exporter",
    "export": ".exporter",
    "labels_sidecar": ".metadata",
    "read_metadata": ".metadata",
    "Quantization": ".quantization",
    "DelegateCoverage": ".runtime",
    "TFLiteModel": ".runtime",
    "xnnpack_coverage": ".runtime",
}

if TYPE_CHECKING:
    from levit_tf.tflite.compiled import CpuOptionsRejected
    from levit_tf.tflite.exporter import (
        ATTENTION_FLOAT_OPS,
        ExportResult,
        check_builtin_only,
        export,
    )
    from levit_tf.tflite.metadata import labels_sidecar, read_metadata
    from levit_tf.tflite.quantization import Quantization
    from levit_tf.tflite.runtime import DelegateCoverage, TFLiteModel, xnnpack_coverage


__getattr__, __dir__ = lazy_exports("levit_tf.tflite", globals(), _EXPORTS)


__all__ = [
    "ATTENTION_FLOAT_OPS",
    "CpuOptionsRejected",
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
