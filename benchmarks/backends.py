"""LeViT-128S on each Keras backend vs plain PyTorch eager, same weights, measured in one run.

    python -m benchmarks.backends [--preset levit-128S] [--batch 32] [--runs 5]
                                  [--out benchmarks/results]

One process per runtime (a Keras backend is fixed at import): TensorFlow with XLA
(``jit_compile=True``), JAX (jit), the torch backend (Keras' default there: eager), and the HF
PyTorch model in eager mode. Each loads the same randomized HF checkpoint, then times batch-32
inference (``predict_on_batch``; ``torch.no_grad`` for PyTorch) and a batch-32 SGD training step
(``train_on_batch``; forward, backward, step for PyTorch) at 224 px: warm-up (which compiles),
then the median of the timed runs. Prints images/s and ratios to PyTorch eager; writes
``backends.txt`` / ``backends.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIMES = ("tensorflow", "jax", "torch", "pytorch-eager")
LABELS = {"tensorflow": "Keras/TF (XLA)", "jax": "Keras/JAX (jit)",
          "torch": "Keras/torch backend", "pytorch-eager": "PyTorch eager (HF)"}


def median_seconds(step, warmup: int, runs: int) -> float:
    """Median wall time of ``step()`` in seconds after ``warmup`` untimed calls."""
    from benchmarks.timing import median_ms

    return median_ms(step, warmup, runs) / 1000


def measure_keras(checkpoint: str, batch: int, warmup: int, runs: int) -> dict[str, float]:
    """(inference, training) images/s of the converted model on this process' backend."""
    import keras
    import numpy as np

    from levit_tf.converters import load_pretrained

    backend = keras.backend.backend()
    model = load_pretrained(checkpoint)
    size = model.config.image_hw
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((batch, *size, 3)).astype(np.float32)
    labels = rng.integers(0, model.config.num_labels, batch)
    # TF: XLA on request; JAX: always jit; torch: Keras' default (eager)
    model.compile(optimizer=keras.optimizers.SGD(1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=backend == "tensorflow" or "auto")
    start = time.perf_counter()
    model.predict_on_batch(pixels)
    infer_compile = time.perf_counter() - start
    infer = median_seconds(lambda: model.predict_on_batch(pixels), warmup, runs)
    start = time.perf_counter()
    model.train_on_batch(pixels, labels)
    train_compile = time.perf_counter() - start
    train = median_seconds(lambda: model.train_on_batch(pixels, labels), warmup, runs)
    return {"inference": batch / infer, "training": batch / train,
            "first_inference_s": infer_compile, "first_training_s": train_compile,
            "jit_compile": bool(model.jit_compile)}


def measure_pytorch(checkpoint: str, batch: int, warmup: int, runs: int) -> dict[str, float]:
    """The same numbers for the HF PyTorch model, eager."""
    import torch

    from levit_tf.testing.torch_compat import make_torchvision_importable

    make_torchvision_importable()  # transformers imports torchvision when present
    import transformers

    model = transformers.LevitForImageClassificationWithTeacher.from_pretrained(checkpoint)
    size = model.config.image_size
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn((batch, 3, size, size), generator=generator)
    labels = torch.randint(0, model.config.num_labels, (batch,), generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    model.eval()

    def infer() -> None:
        with torch.no_grad():
            model(pixels)

    def train() -> None:
        model.train()
        out = model(pixels)
        loss = (torch.nn.functional.cross_entropy(out.cls_logits, labels)
                + torch.nn.functional.cross_entropy(out.distillation_logits, labels)) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return {"inference": batch / median_seconds(infer, warmup, runs),
            "training": batch / median_seconds(train, warmup, runs)}


def child(runtime: str, checkpoint: str, batch: int, warmup: int, runs: int) -> None:
    measure = measure_pytorch if runtime == "pytorch-eager" else measure_keras
    result = measure(checkpoint, batch, warmup, runs)
    import torch

    result["torch_threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(result), flush=True)


def run_child(runtime: str, checkpoint: str, args: argparse.Namespace) -> dict[str, float]:
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["JAX_PLATFORMS"] = "cpu"
    if runtime != "pytorch-eager":
        env["KERAS_BACKEND"] = runtime
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.backends", "--child", runtime, "--checkpoint",
         checkpoint, "--batch", str(args.batch), "--warmup", str(args.warmup), "--runs",
         str(args.runs)],
        env=env, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{runtime} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def table(results: dict[str, dict[str, float]], preset: str, batch: int) -> str:
    base = results["pytorch-eager"]
    rows = [f"{preset}, 224 px, batch {batch}, {os.cpu_count()} CPU cores "
            "(images/s; x = ratio to PyTorch eager)",
            f"{'runtime':<22}{'inference':>16}{'training step':>20}{'first call (s)':>18}"]
    for runtime in RUNTIMES:
        r = results[runtime]
        first = (f"{r['first_inference_s']:.0f} / {r['first_training_s']:.0f}"
                 if "first_inference_s" in r else "-")
        rows.append(f"{LABELS[runtime]:<22}"
                    f"{r['inference']:>8.1f} ({r['inference'] / base['inference']:.2f}x)"
                    f"{r['training']:>12.1f} ({r['training'] / base['training']:.2f}x)"
                    f"{first:>18}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="levit-128S")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", choices=RUNTIMES, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.checkpoint, args.batch, args.warmup, args.runs)
        return
    from levit_tf.testing.torch_reference import hf_model

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        hf_model(args.preset, seed=0).save_pretrained(tmp)  # every weight random, BN included
        for runtime in RUNTIMES:
            print(f"{LABELS[runtime]} ...", file=sys.stderr, flush=True)
            results[runtime] = run_child(runtime, tmp, args)
            print(f"{LABELS[runtime]}: {json.dumps(results[runtime])}", file=sys.stderr,
                  flush=True)
    text = table(results, args.preset, args.batch)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "backends.txt").write_text(text + "\n")
        (args.out / "backends.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
