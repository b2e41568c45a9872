"""Runs one-op .tflite files with LiteRT (XNNPACK) on recorded inputs; executed by the emulated
aarch64 python (numpy and ``ai_edge_litert`` only) and by the host python alike.

usage: python guest_ops.py FOLDER OUT
FOLDER holds ``ops.json`` (the op numbers), ``op_<n>.tflite`` and ``in_<n>.npz`` (arrays
``0``, ``1``, ... in the order of the file's inputs); writes ``OUT/out_<n>.npz`` (arrays in the
order of its outputs) and ``OUT/delegated.json`` ({n: the op ran inside an XNNPACK partition}).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def run_op(path: Path, inputs: list) -> tuple[list, bool]:
    """Outputs of the one-op file ``path`` on ``inputs`` and whether XNNPACK took the op."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), inputs, strict=True):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    delegated = any(n["op_name"] == "DELEGATE" for n in interpreter._get_ops_details())
    return [interpreter.get_tensor(d["index"]).copy()
            for d in interpreter.get_output_details()], delegated


def main(folder: str, out: str) -> None:
    import numpy as np

    root, out_dir = Path(folder), Path(out)
    delegated = {}
    for number in json.loads((root / "ops.json").read_text()):
        with np.load(root / f"in_{number}.npz") as stored:
            inputs = [stored[str(i)] for i in range(len(stored.files))]
        outputs, delegated[number] = run_op(root / f"op_{number}.tflite", inputs)
        np.savez(out_dir / f"out_{number}.npz", **{str(i): o for i, o in enumerate(outputs)})
    (out_dir / "delegated.json").write_text(json.dumps(delegated))


if __name__ == "__main__":
    main(*sys.argv[1:])
