"""Running exported .tflite models with the LiteRT interpreter (``ai_edge_litert``) on XNNPACK.

``tf.lite.Interpreter`` is deprecated; this module only uses ``ai_edge_litert``, whose default
CPU path applies the XNNPACK delegate.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from levit_tf.native_logs import quiet_native_stderr
from levit_tf.optional import require
from levit_tf.tflite.metadata import read_metadata


def _interpreter_class():
    require("ai_edge_litert", "running .tflite models (the LiteRT interpreter)")
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter


def new_interpreter(path: str | os.PathLike, num_threads: int = 1):
    """A LiteRT interpreter with tensors allocated (XNNPACK applied), without LiteRT's
    "Created TensorFlow Lite XNNPACK delegate" line on stderr."""
    interpreter_class = _interpreter_class()
    with quiet_native_stderr():
        interpreter = interpreter_class(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    return interpreter


class TFLiteModel:
    """A .tflite LeViT classifier: ``model(images)`` -> float32 logits (B, num_labels).

    Inputs are what the file was exported for (``input_mode`` in its metadata): normalized float
    pixel_values, or raw RGB uint8. Integer-quantized inputs / outputs are (de)quantized here.
    The model runs one image at a time (TFLite files are exported at batch 1).
    """

    def __init__(self, path: str | os.PathLike, num_threads: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file")
        self.metadata = read_metadata(self.path)
        try:
            self.interpreter = new_interpreter(self.path, num_threads)
        except (ValueError, RuntimeError) as err:
            raise ValueError(f"{self.path}: not a loadable .tflite model ({err})") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.input["shape"])

    @property
    def id2label(self) -> dict[int, str]:
        return {int(k): v for k, v in self.metadata.get("id2label", {}).items()}

    @property
    def input_mode(self) -> str:
        return self.metadata.get("input_mode", "normalized")

    def _quantize_input(self, image: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        scale, zero_point = self.input["quantization"]
        if dtype in (np.uint8, np.int8) and scale and image.dtype.kind == "f":
            image = np.round(image / scale + zero_point)
            info = np.iinfo(dtype)
            image = np.clip(image, info.min, info.max)
        return image.astype(dtype)

    def _dequantize_output(self, value: np.ndarray) -> np.ndarray:
        scale, zero_point = self.output["quantization"]
        if value.dtype.kind in "iu" and scale:
            return (value.astype(np.float32) - zero_point) * scale
        return value.astype(np.float32)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        expected = self.input_shape[1:]
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f"{self.path.name} takes images of shape (batch, "
                             f"{', '.join(map(str, expected))}), got {images.shape}")
        logits = []
        for image in images:
            self.interpreter.set_tensor(self.input["index"], self._quantize_input(image[None]))
            self.interpreter.invoke()
            logits.append(self._dequantize_output(self.interpreter.get_tensor(
                self.output["index"]))[0])
        return np.stack(logits)

    def latency_ms(self, runs: int = 50, warmup: int = 10) -> float:
        """Median wall time of one invoke at batch 1, after ``warmup`` runs."""
        dummy = np.zeros(self.input_shape, dtype=self.input["dtype"])
        self.interpreter.set_tensor(self.input["index"], dummy)
        for _ in range(warmup):
            self.interpreter.invoke()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.interpreter.invoke()
            times.append(time.perf_counter() - start)
        return float(np.median(times) * 1000)


@dataclass
class DelegateCoverage:
    """Which ops XNNPACK took: counts of all ops, of ops left on builtin kernels, partitions."""

    total_ops: Counter
    builtin_ops: Counter
    partitions: int

    @property
    def fraction_delegated(self) -> float:
        total = sum(self.total_ops.values())
        return 1.0 - sum(self.builtin_ops.values()) / total if total else 0.0


def xnnpack_coverage(path: str | os.PathLike) -> DelegateCoverage:
    """Works out from the interpreter's execution plan which ops stay outside XNNPACK.

    After the delegate is applied, the interpreter lists the original ops plus one DELEGATE
    node per XNNPACK partition. Walking back from the outputs through those nodes finds the
    original ops that still execute themselves.
    """
    interpreter = new_interpreter(path, num_threads=1)
    nodes = interpreter._get_ops_details()
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    originals = [n for n in nodes if n["op_name"] != "DELEGATE"]
    producer = {int(t): n for n in originals for t in n["outputs"]}
    delegate_of = {int(t): d for d in delegates for t in d["outputs"]}
    executed: dict[int, dict] = {}
    pending = [int(d["index"]) for d in interpreter.get_output_details()]
    seen: set[int] = set()
    while pending:
        tensor = pending.pop()
        if tensor in seen:
            continue
        seen.add(tensor)
        node = delegate_of.get(tensor) or producer.get(tensor)
        if node is None:
            continue
        if node["op_name"] != "DELEGATE":
            executed[int(node["index"])] = node
        pending.extend(int(t) for t in node["inputs"] if t >= 0)
    return DelegateCoverage(Counter(n["op_name"] for n in originals),
                            Counter(n["op_name"] for n in executed.values()), len(delegates))
