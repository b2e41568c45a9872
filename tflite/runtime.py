"""Running exported .tflite models with LiteRT 2's ``CompiledModel`` on the CPU (XNNPACK) or the
GPU accelerator, by the ``serving_default`` signature's names.

``tf.lite.Interpreter`` is deprecated and LiteRT 2's ``Interpreter`` is CPU-only; the one thing
here that still uses it is :func:`xnnpack_coverage`, which walks the interpreter's execution plan
(``CompiledModel`` exposes no per-op plan).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from levit_tf.tflite.compiled import SIGNATURE, CpuOptionsRejected, compile_model
from levit_tf.tflite.metadata import read_metadata
from levit_tf.utils.native_logs import capture_native_stderr, quiet_native_stderr
from levit_tf.utils.optional import require

COLD_RETRIES = 5  # GPU: repeats of a first run whose output lock timed out (see TFLiteModel._run)


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


def _signature_io(path: Path) -> tuple[dict, dict]:
    """(input, output) of the ``serving_default`` signature read from the flatbuffer: name,
    tensor index, shape, dtype and (scale, zero_point) of each (its first input and output)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    signatures = [model.SignatureDefs(i) for i in range(model.SignatureDefsLength())]
    names = [s.SignatureKey().decode() for s in signatures]
    if SIGNATURE not in names:
        raise ValueError(f"{path}: no '{SIGNATURE}' signature (has {', '.join(names) or 'none'})")
    signature = signatures[names.index(SIGNATURE)]
    graph = model.Subgraphs(signature.SubgraphIndex())
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}

    def describe(entry) -> dict:
        tensor = graph.Tensors(entry.TensorIndex())
        quant = tensor.Quantization()
        scale = quant.ScaleAsNumpy() if quant is not None and quant.ScaleLength() else [0.0]
        zero = quant.ZeroPointAsNumpy() if quant is not None and quant.ZeroPointLength() else [0]
        return {"name": entry.Name().decode(), "index": int(entry.TensorIndex()),
                "shape": tensor.ShapeAsNumpy().astype(int),
                "dtype": np.dtype(types[tensor.Type()].lower()),
                "quantization": (float(scale[0]), int(zero[0]))}

    return describe(signature.Inputs(0)), describe(signature.Outputs(0))


class TFLiteModel:
    """A .tflite LeViT classifier: ``model(images)`` -> float32 logits (B, num_labels).

    Compiled by LiteRT's ``CompiledModel`` for ``accelerator`` "cpu" (XNNPACK, ``num_threads``)
    or "gpu" (the GPU alone when LiteRT accepts every op, else GPU + CPU; ``gpu_status`` says
    which ops fell back; ``enforce_f32``: float32 GPU arithmetic instead of float16);
    ``cpu_options``: further LiteRT ``CpuOptions`` fields (e.g. ``xnnpack_flags``). Inputs
    are what the file was exported for (``input_mode`` in its metadata): normalized float
    pixel_values, or raw RGB uint8. Integer-quantized inputs / outputs are (de)quantized here.
    The model runs one image at a time (TFLite files are exported at batch 1).
    """

    def __init__(self, path: str | os.PathLike, num_threads: int = 1, *,
                 accelerator: str = "cpu", enforce_f32: bool = False,
                 cpu_options: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file")
        self.accelerator = accelerator
        try:
            self.metadata = read_metadata(self.path)
            self.input, self.output = _signature_io(self.path)
        except ValueError:
            raise
        except Exception as err:  # flatbuffers raises anything on a file that is not one
            raise ValueError(f"{self.path}: not a loadable .tflite model ({err})") from None
        if accelerator == "gpu":
            from levit_tf.tflite.devices.lavapipe import use_cached_if_needed

            use_cached_if_needed()
        try:
            self.compiled, self.gpu_status = compile_model(
                self.path, accelerator, enforce_f32=enforce_f32, num_threads=num_threads,
                cpu_options=cpu_options)
        except CpuOptionsRejected as err:
            raise CpuOptionsRejected(f"{self.path}: {err}") from None
        except ValueError as err:
            raise ValueError(f"{self.path}: not a loadable .tflite model ({err})") from None
        self._buffers()
        self._warm = accelerator == "cpu"
        # LiteRT sets its environment up on the first run and logs that to fd 2 (INFO lines a
        # CLI user should not see): run once here, quietly
        with capture_native_stderr():
            self._run(np.zeros(self.input_shape, self.input["dtype"]))

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

    def _buffers(self) -> None:
        self._inputs = {self.input["name"]: self.compiled.create_input_buffer_by_name(
            SIGNATURE, self.input["name"])}
        self._outputs = {self.output["name"]: self.compiled.create_output_buffer_by_name(
            SIGNATURE, self.output["name"])}

    def _run(self, image: np.ndarray) -> np.ndarray:
        """One (1, H, W, 3) input in the file's dtype -> raw output (1, ...).

        GPU: LiteRT 2.3.0's WebGPU output lock gives up ("Failed to lock custom tensor buffer")
        while the driver is still compiling the shaders of a cold first run (seen with lavapipe
        on a loaded 2-core machine); the first run is then repeated, on new buffers (the failed
        one stays locked), up to ``COLD_RETRIES`` times."""
        shape = tuple(int(s) for s in self.output["shape"])
        for attempt in range(COLD_RETRIES + 1):
            self._inputs[self.input["name"]].write(np.ascontiguousarray(image))
            self.compiled.run_by_name(SIGNATURE, self._inputs, self._outputs)
            try:
                value = self._outputs[self.output["name"]].read(int(np.prod(shape)),
                                                                self.output["dtype"])
                break
            except RuntimeError as err:
                if attempt == COLD_RETRIES or self._warm or "Failed to lock" not in str(err):
                    raise
                self._buffers()
        self._warm = True
        return value.reshape(shape)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim == 4 and len(images) == 0:
            raise ValueError(f"{self.path.name} got an empty batch (0 images); pass at least "
                             "one image")
        expected = self.input_shape[1:]
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f"{self.path.name} takes images of shape (batch, "
                             f"{', '.join(map(str, expected))}), got {images.shape}")
        return np.stack([self._dequantize_output(self._run(self._quantize_input(image[None])))[0]
                         for image in images])

    def latency_ms(self, runs: int = 50, warmup: int = 10) -> float:
        """Median wall time of one run at batch 1, after ``warmup`` runs."""
        dummy = np.zeros(self.input_shape, dtype=self.input["dtype"])
        for _ in range(warmup):
            self._run(dummy)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self._run(dummy)
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
