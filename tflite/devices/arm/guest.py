"""Runs a .tflite file with LiteRT (XNNPACK) on prepared input tensors; the emulated aarch64
python executes this file, so it needs nothing but numpy and ``ai_edge_litert``.

usage: python guest.py MODEL.tflite INPUTS.npy OUTPUTS.npy COVERAGE.json
INPUTS (N, *input_shape[1:]) in the model's input dtype -> OUTPUTS (N, *output_shape[1:]) raw
(still quantized for integer outputs); COVERAGE: XNNPACK partitions and ops left on builtin
kernels, worked out like ``levit_tf.tflite.runtime.xnnpack_coverage``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter


def coverage(interpreter) -> dict:
    """{"partitions": int, "builtin_ops": {op: count}, "total_ops": {op: count}}: ops reached
    from the outputs through the DELEGATE nodes that still run on builtin kernels."""
    nodes = interpreter._get_ops_details()
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    originals = [n for n in nodes if n["op_name"] != "DELEGATE"]
    producer = {int(t): n for n in originals for t in n["outputs"]}
    delegate_of = {int(t): d for d in delegates for t in d["outputs"]}
    executed: dict[int, str] = {}
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
            executed[int(node["index"])] = node["op_name"]
        pending.extend(int(t) for t in node["inputs"] if t >= 0)
    return {"partitions": len(delegates), "builtin_ops": dict(Counter(executed.values())),
            "total_ops": dict(Counter(n["op_name"] for n in originals))}


def run(model_path: str, inputs):
    """Raw outputs (N, ...) and the coverage dict of ``model_path`` on ``inputs`` (N, ...)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=model_path, num_threads=1)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    outputs = []
    for tensor in inputs:
        interpreter.set_tensor(input_index, tensor[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(output_index)[0].copy())
    return np.stack(outputs), coverage(interpreter)


def main(argv: list[str]) -> None:
    import numpy as np

    model_path, inputs_path, outputs_path, coverage_path = argv
    outputs, info = run(model_path, np.load(inputs_path))
    np.save(outputs_path, outputs)
    with open(coverage_path, "w") as file:
        json.dump(info, file)


if __name__ == "__main__":
    main(sys.argv[1:])
