"""Keras' own ``model.export`` formats beside ``levit-tf export-tflite``, measured in one run.

    python -m benchmarks.keras_export [--preset levit-128S] [--runs 50] [--out DIR]

One LeViT (random weights at every BN, so nothing can be pruned) is exported with Keras'
``model.export`` as tf_saved_model, litert, onnx and openvino, and with ``levit_tf.tflite.export``
(float32 and dynamic). Each artefact runs in its own runtime at 1 thread, batch 1: size, max
|logit - keras logit| / max |keras logit| on 8 random inputs, and the median latency of
``--runs`` runs after warm-up, with its ratio to ours (float32). Writes keras_export.txt.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    if path.suffix == ".xml":
        files.append(path.with_suffix(".bin"))
    return sum(p.stat().st_size for p in files) / 1e6


def runners(path: Path, fmt: str):
    """(run(pixels (1, H, W, 3)) -> logits (1, K)), pinned to one thread."""
    if fmt == "tf_saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        return lambda x: loaded.serve(x)["logits"].numpy()
    if fmt in ("litert", "ours"):
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(str(path), num_threads=1)
        runner = interpreter.get_signature_runner()
        return lambda x: runner(pixel_values=x)["logits"]
    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda x: session.run(["logits"], {"pixel_values": x})[0]
    if fmt.startswith("openvino"):
        import openvino

        precision = "bf16" if fmt.endswith("bf16") else "f32"
        compiled = openvino.Core().compile_model(str(path), "CPU", {
            "INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": precision})
        output = compiled.output("logits")
        return lambda x: compiled(x)[output]
    raise ValueError(fmt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="levit-128S")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for keras_export.txt (default: benchmarks/results/<CPU>)")
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import numpy as np
    from tqdm import tqdm

    from benchmarks.timing import median_ms
    from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
    from levit_tf.testing.models import randomize
    from levit_tf.tflite import export
    from levit_tf.utils.cpu_features import cpu_flags, cpu_model, int8_capability

    model = randomize(LevitForImageClassificationWithTeacher(LevitConfig.from_preset(
        args.preset)), seed=0)
    pixels = np.random.default_rng(1).normal(size=(8, *model.config.image_hw, 3)).astype(
        np.float32)
    reference = np.asarray(model(pixels)["logits"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        artefacts = [
            ("Keras tf_saved_model", "tf_saved_model", work / "saved_model"),
            ("Keras litert", "litert", work / "keras.tflite"),
            ("Keras onnx (ONNX Runtime)", "onnx", work / "keras.onnx"),
            ("Keras openvino (f32)", "openvino", work / "keras.xml"),
            ("Keras openvino (bf16 default)", "openvino-bf16", work / "keras.xml"),
            ("levit-tf export-tflite float32", "ours", work / "ours.tflite"),
            ("levit-tf export-tflite dynamic", "ours", work / "ours_dynamic.tflite"),
        ]
        with tqdm(artefacts, desc="export + time") as bar:
            for name, fmt, path in bar:
                bar.set_postfix_str(name)
                if fmt == "ours":
                    mode = "dynamic" if "dynamic" in path.stem else "float32"
                    export(model, path, mode)
                elif not path.exists():
                    model.export(path, format=fmt.removesuffix("-bf16"), verbose=False)
                run = runners(path, fmt)
                logits = np.concatenate([run(pixels[i:i + 1]) for i in range(len(pixels))])
                error = float(np.abs(logits - reference).max() / np.abs(reference).max())
                ms = median_ms(lambda r=run: r(pixels[:1]), warmup=10, runs=args.runs)
                rows.append((name, size_mb(path), error, ms))
    ours = next(ms for name, _, _, ms in rows if name.endswith("float32"))
    machine = (f"{cpu_model()}, {os.cpu_count()} cores, {int8_capability()}, load average "
               f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    lines = [f"machine: {machine}", f"{args.preset}, batch 1, 1 thread, median of {args.runs} "
             "runs; error = max |logit - keras| / max |keras|", "",
             f"{'artefact':<34}{'size MB':>9}{'max rel. error':>16}{'ms':>9}{'x ours f32':>12}"]
    lines += [f"{name:<34}{size:>9.1f}{error:>16.1e}{ms:>9.2f}{ms / ours:>12.2f}"
              for name, size, error, ms in rows]
    table = "\n".join(lines)
    print(table)
    # results/ holds the AVX2 figures, results/avx512_vnni/ those of VNNI CPUs
    vnni = "avx512_vnni" in cpu_flags()
    out = args.out or ROOT / "benchmarks" / "results" / ("avx512_vnni" if vnni else "")
    out.mkdir(parents=True, exist_ok=True)
    (out / "keras_export.txt").write_text(table + "\n")
    print(f"\nwrote {out / 'keras_export.txt'}")


if __name__ == "__main__":
    main()
