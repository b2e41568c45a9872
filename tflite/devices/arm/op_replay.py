"""Op-by-op replay: every op of a .tflite file run alone on ARM and on x86 from the same inputs.

End to end, an ARM run can differ from x86 for two reasons: an ARM kernel computes something
else, or a float op (XNNPACK's float SOFTMAX uses a different exp approximation on each ISA)
differs by a rounding error that a later QUANTIZE turns into a one-step flip, which the rest of
the network then carries to the logits. Only the first is a fault of the file or the runtime.
The replay tells them apart: x86 runs the file once with every op output exposed (the recorded
activations), each op is cut out into a one-op file, and the host and the emulated aarch64
python both run every one-op file on the recorded inputs (``guest_ops.py``). Integer outputs
must then be equal (a difference is counted in quantization steps); float outputs are compared
relative to the largest |value| of the x86 output.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from levit_tf.tflite.devices.arm.profiles import Profile
from levit_tf.tflite.devices.arm.runtime import Runtime

GUEST_OPS = Path(__file__).with_name("guest_ops.py")
FLOAT_OP_BOUND = 1e-5  # relative to the op output's largest |x86 value|


@dataclass
class OpDiff:
    """One op of the file, run alone on ARM and on x86 from the same inputs."""

    number: int
    op: str
    dtype: str  # of its (first) output
    max_diff: float  # integer outputs: in quantization steps; float: relative
    differing: int  # output elements that differ
    size: int
    delegated: bool  # XNNPACK took the op on ARM (and on x86)


@dataclass
class Replay:
    """Every op of one file on one profile."""

    profile: str
    ops: list[OpDiff]
    graph_consistent: bool  # x86 one-op runs reproduce the x86 whole-graph activations
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def worst(self, integer: bool) -> OpDiff | None:
        ops = [o for o in self.ops if _is_integer(o.dtype) == integer]
        return max(ops, key=lambda o: o.max_diff) if ops else None

    def summary(self) -> str:
        """'N ops: int exact, float <= 3e-8 rel' and the failures, for a table cell."""
        worst_int, worst_float = self.worst(True), self.worst(False)
        parts = [f"{len(self.ops)} ops replayed"]
        if worst_int is not None:
            parts.append("int exact" if worst_int.max_diff == 0 else
                         f"int <= {worst_int.max_diff:g} step ({worst_int.op})")
        if worst_float is not None:
            parts.append(f"float <= {worst_float.max_diff:.1e} rel ({worst_float.op})")
        return ", ".join(parts) + ("" if self.ok else " FAIL: " + "; ".join(self.failures))


def _is_integer(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))


def _schema():
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    return schema, flatbuffer_utils


def expose_all(model_bytes: bytes) -> bytes:
    """The same graph with every op output also a graph output (signatures dropped), so one x86
    run records every activation."""
    _, utils = _schema()
    model = utils.convert_bytearray_to_object(bytearray(model_bytes))
    graph = model.subgraphs[0]
    outputs = list(graph.outputs)
    graph.outputs = outputs + [t for op in graph.operators for t in op.outputs
                               if t not in outputs]
    model.signatureDefs = []
    return bytes(utils.convert_object_to_bytearray(model))


def one_op_files(model_bytes: bytes) -> list[tuple[int, str, bytes, list[int], list[int]]]:
    """(op number, op name, one-op .tflite bytes, graph tensors it reads, graph tensors it
    writes) for every op; constant inputs stay constants, the others become the file's inputs."""
    from levit_tf.tflite.exporter import builtin_op_name

    schema, utils = _schema()
    model = utils.convert_bytearray_to_object(bytearray(model_bytes))
    graph = model.subgraphs[0]
    files = []
    for number, op in enumerate(graph.operators):
        one = schema.ModelT()
        one.version, one.description = model.version, b"one op"
        one.operatorCodes = [model.operatorCodes[op.opcodeIndex]]
        one.buffers = [schema.BufferT()]
        tensors, remap, reads = [], {}, []
        for index in [t for t in (*op.inputs, *op.outputs) if t >= 0]:
            if index in remap:
                continue
            tensor = copy.copy(graph.tensors[index])
            data = model.buffers[tensor.buffer].data
            one.buffers.append(schema.BufferT())
            if data is not None and len(data):
                one.buffers[-1].data = data
            elif index in op.inputs:
                reads.append(index)
            tensor.buffer = len(one.buffers) - 1
            remap[index] = len(tensors)
            tensors.append(tensor)
        single = copy.copy(op)
        single.opcodeIndex = 0
        single.inputs = [remap[t] if t >= 0 else -1 for t in op.inputs]
        single.outputs = [remap[t] for t in op.outputs]
        one_graph = schema.SubGraphT()
        one_graph.tensors, one_graph.operators = tensors, [single]
        one_graph.inputs = [remap[t] for t in reads]
        one_graph.outputs = list(single.outputs)
        one.subgraphs = [one_graph]
        code = one.operatorCodes[0]
        files.append((number, builtin_op_name(code.builtinCode, code.deprecatedBuiltinCode),
                      bytes(utils.convert_object_to_bytearray(one)), reads, list(op.outputs)))
    return files


def record_x86(model_bytes: bytes, inputs: np.ndarray) -> dict[int, np.ndarray]:
    """Every tensor of the graph (by index) after an x86 XNNPACK run on ``inputs`` (1, ...)."""
    from levit_tf.tflite.runtime import new_interpreter

    with tempfile.TemporaryDirectory(prefix="levit-replay-") as tmp:
        path = Path(tmp) / "exposed.tflite"
        path.write_bytes(expose_all(model_bytes))
        interpreter = new_interpreter(path)
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], inputs)
        interpreter.invoke()
        recorded = {int(d["index"]): interpreter.get_tensor(d["index"]).copy()
                    for d in interpreter.get_output_details()}
        recorded[int(interpreter.get_input_details()[0]["index"])] = inputs
        return recorded


def _write_case(folder: Path, files, recorded: dict[int, np.ndarray]) -> None:
    for number, _, data, reads, _ in files:
        (folder / f"op_{number}.tflite").write_bytes(data)
        np.savez(folder / f"in_{number}.npz", **{str(i): recorded[t] for i, t in enumerate(reads)})
    (folder / "ops.json").write_text(json.dumps([f[0] for f in files]))


def _read_outputs(folder: Path, files) -> tuple[dict[int, list[np.ndarray]], dict[str, bool]]:
    outputs = {}
    for number, *_ in files:
        with np.load(folder / f"out_{number}.npz") as stored:
            outputs[number] = [stored[str(i)] for i in range(len(stored.files))]
    return outputs, json.loads((folder / "delegated.json").read_text())


def _step_diff(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    if _is_integer(str(a.dtype)):
        diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
        return float(diff.max(initial=0)), int(np.count_nonzero(diff))
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    scale = max(float(np.abs(a).max(initial=0)), 1e-30)
    return float(diff.max(initial=0)) / scale, int(np.count_nonzero(diff))


def replay(path: str | os.PathLike, inputs: np.ndarray, profiles: Sequence[Profile],
           runtime: Runtime, timeout: float | None = None,
           jobs: int | None = None) -> list[Replay]:
    """Every op of ``path`` alone on x86 and on each profile (``jobs`` processes at a time,
    default: the CPUs), from the activations x86 computed for ``inputs`` (1, ...) in the file's
    input dtype."""
    model_bytes = Path(path).read_bytes()
    recorded = record_x86(model_bytes, inputs)
    files = one_op_files(model_bytes)
    with tempfile.TemporaryDirectory(prefix="levit-replay-") as tmp:
        case = Path(tmp) / "case"
        case.mkdir()
        _write_case(case, files, recorded)

        def run(item: tuple[str, list[str]]):
            name, command = item
            out = Path(tmp) / name
            out.mkdir()
            done = subprocess.run([*command, str(case), str(out)], capture_output=True,
                                  text=True, timeout=timeout,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            if done.returncode:
                tail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
                raise RuntimeError(f"op replay of {Path(path).name} on {name} failed: {tail}")
            return name, _read_outputs(out, files)

        commands = [("x86", [sys.executable, "-s", str(GUEST_OPS)])] + [
            (p.name, runtime.command(p.cpu, [str(GUEST_OPS)])) for p in profiles]
        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count()) as pool:
            results = dict(pool.map(run, commands))
    x86_outputs, x86_delegated = results["x86"]
    consistent = all(np.array_equal(x86_outputs[number][i], recorded[t])
                     for number, _, _, _, writes in files for i, t in enumerate(writes))
    replays = []
    for profile in profiles:
        arm_outputs, arm_delegated = results[profile.name]
        ops = []
        for number, op, _, _, _ in files:
            worst, differing = 0.0, 0
            for a, b in zip(x86_outputs[number], arm_outputs[number], strict=True):
                diff, count = _step_diff(a, b)
                worst, differing = max(worst, diff), differing + count
            first = x86_outputs[number][0]
            ops.append(OpDiff(number, op, str(first.dtype), worst, differing, int(first.size),
                              arm_delegated[str(number)] and x86_delegated[str(number)]))
        run = Replay(profile.name, ops, consistent)
        run.failures = _replay_failures(run, x86_delegated, arm_delegated)
        replays.append(run)
    return replays


def _replay_failures(run: Replay, x86_delegated: dict, arm_delegated: dict) -> list[str]:
    failures = []
    if not run.graph_consistent:
        failures.append("x86 one-op runs do not reproduce the x86 graph's activations")
    if x86_delegated != arm_delegated:
        moved = sorted(o.op for o in run.ops if x86_delegated[str(o.number)]
                       != arm_delegated[str(o.number)])
        failures.append(f"XNNPACK took different ops on ARM: {', '.join(moved)}")
    integer = [o for o in run.ops if _is_integer(o.dtype) and o.max_diff > 0]
    if integer:
        names = sorted({f"{o.op} #{o.number} ({o.max_diff:g} steps)" for o in integer})
        failures.append(f"integer ops differ from x86: {', '.join(names[:4])}")
    floats = [o for o in run.ops if not _is_integer(o.dtype) and o.max_diff > FLOAT_OP_BOUND]
    if floats:
        names = sorted({f"{o.op} #{o.number} ({o.max_diff:.1e})" for o in floats})
        failures.append(f"float ops beyond {FLOAT_OP_BOUND:g} relative: {', '.join(names[:4])}")
    return failures
