"""Can int8 be faster than float32 here? XNNPACK GEMM throughput at LeViT's own layer shapes.

    python -m benchmarks.gemm_throughput [--preset levit-128S] [--threads 1]

Exports the folded model once to read the shape (tokens M, in K, out N) of every
FULLY_CONNECTED op, then, per distinct shape, times a TFLite graph of ``--chain`` such layers
(K -> N -> K -> ...; weights random, no other ops) in float32, dynamic-range int8 and full int8
under XNNPACK, and prints GOP/s per mode. The last row weights every shape by how often the
model uses it: the FC-only latency of the whole network per mode, i.e. the speed-up that
quantization can buy on this CPU before any attention / softmax / elementwise op is counted.

On CPUs without an int8 dot-product instruction (x86 AVX-VNNI / AVX512-VNNI, ARM dotprod /
i8mm), XNNPACK's int8 kernels widen to 16 bits and multiply with ``vpmaddwd``: about the same
multiply-accumulates per cycle as float32 FMA, so int8 only wins where float32 is limited by
reading its 4x larger weights (few tokens, large layers).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tqdm import tqdm

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.tflite import export

MODES = ("float32", "dynamic", "int8")


def fc_shapes(model_bytes: bytes) -> Counter:
    """(M, K, N) of every FULLY_CONNECTED op of a .tflite flatbuffer -> how many there are."""
    model = schema.Model.GetRootAsModel(model_bytes, 0)
    graph = model.Subgraphs(0)
    shapes: Counter = Counter()
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) != \
                schema.BuiltinOperator.FULLY_CONNECTED:
            continue
        x = graph.Tensors(op.Inputs(0)).ShapeAsNumpy()
        weights = graph.Tensors(op.Inputs(1)).ShapeAsNumpy()
        shapes[(int(np.prod(x[:-1])), int(x[-1]), int(weights[0]))] += 1
    return shapes


def chain_model(m: int, k: int, n: int, length: int, mode: str) -> bytes:
    """A .tflite of ``length`` dense layers alternating K -> N and N -> K on (M, K) input."""
    rng = np.random.default_rng(0)
    dims = [k, n] * (length // 2 + 1)
    weights = [tf.constant(rng.normal(0, dims[i] ** -0.5, (dims[i], dims[i + 1]))
                           .astype(np.float32)) for i in range(length)]
    biases = [tf.constant(rng.normal(0, 0.1, (dims[i + 1],)).astype(np.float32))
              for i in range(length)]

    @tf.function(input_signature=[tf.TensorSpec((m, k), tf.float32)])
    def layers(x):
        for w, b in zip(weights, biases, strict=True):
            x = tf.matmul(x, w) + b
        return x

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [layers.get_concrete_function()], layers)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "int8":
        converter.representative_dataset = lambda: (
            [rng.normal(0, 1, (m, k)).astype(np.float32)] for _ in range(16))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def best_ms(model_bytes: bytes, threads: int, rounds: int = 5, runs: int = 100) -> float:
    """Fastest of ``rounds`` means over ``runs`` invokes (ms): the least disturbed estimate."""
    from ai_edge_litert.interpreter import Interpreter

    with tempfile.TemporaryDirectory() as work:
        path = Path(work, "chain.tflite")
        path.write_bytes(model_bytes)
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    for _ in range(20):
        interpreter.invoke()
    means = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(runs):
            interpreter.invoke()
        means.append((time.perf_counter() - start) / runs)
    return min(means) * 1e3


def folded_model_bytes(preset: str) -> bytes:
    model = LevitForImageClassificationWithTeacher(LevitConfig.from_preset(preset))
    with tempfile.TemporaryDirectory() as work:
        path = Path(work, "model.tflite")
        export(model, path)
        return path.read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="levit-128S")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chain", type=int, default=10, help="layers per timed graph")
    args = parser.parse_args()

    shapes = fc_shapes(folded_model_bytes(args.preset))
    per_layer: dict[tuple, dict[str, float]] = {}
    for shape in tqdm(sorted(shapes), desc="FC shapes"):
        m, k, n = shape
        per_layer[shape] = {mode: best_ms(chain_model(m, k, n, args.chain, mode), args.threads)
                            / args.chain for mode in MODES}

    from levit_tf.utils.cpu_features import int8_capability

    print(f"\nCPU: {int8_capability()}")
    print(f"\n{args.preset}: XNNPACK FULLY_CONNECTED, {args.threads} thread(s), "
          f"chains of {args.chain} layers (K->N, N->K)")
    header = f"{'M x K x N':>18} {'uses':>5}" + "".join(f" {m + ' GOP/s':>15}" for m in MODES)
    print(header + f" {'int8/f32':>9}")
    totals = dict.fromkeys(MODES, 0.0)
    for shape, ms in per_layer.items():
        m, k, n = shape
        ops = 2 * m * (k * n)
        cells = "".join(f" {ops / ms[mode] / 1e6:>15.1f}" for mode in MODES)
        print(f"{f'{m} x {k} x {n}':>18} {shapes[shape]:>5}{cells} "
              f"{ms['int8'] / ms['float32']:>9.2f}")
        for mode in MODES:
            totals[mode] += shapes[shape] * ms[mode]
    cells = "".join(f" {totals[mode]:>12.2f} ms" for mode in MODES)
    print(f"{'all FC layers':>18} {sum(shapes.values()):>5}{cells} "
          f"{totals['int8'] / totals['float32']:>9.2f}")


if __name__ == "__main__":
    main()
