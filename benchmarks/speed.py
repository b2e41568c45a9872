"""CPU speed of levit-tf against PyTorch, ONNX Runtime and litert-torch, measured in one run.

    python -m benchmarks.speed [--presets levit-128S levit-256] [--out benchmarks/results]

For each preset every runtime gets the same randomized weights (every BN gamma non-zero, so no
converter can prune a branch). Each (runtime family, thread count) runs in its own process with
its threads pinned: batch-1 latency at 1 and 2 threads, batch-32 throughput at 2 threads, and a
batch-32 training step (Keras vs PyTorch eager). Warm-up first, then the median of timed runs.
Prints a table with ratios to the best peer, and writes JSON and a PNG chart.

Peers: PyTorch eager (HF transformers and timm), ONNX Runtime (torch.onnx export of the timm
model), litert-torch's TFLite of the timm model (needs the peers venv: ``make peers``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.timing import emit, median_ms

ROOT = Path(__file__).resolve().parents[1]
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
GFLOP_PER_IMAGE = {"levit-128S": 0.61, "levit-256": 2.24}  # 2 x MACs (paper: 305M, 1120M)
PEAK_GFLOPS_PER_CORE = 0.61 / 5e-3  # the floor: LeViT-128S at ~5 ms on one core
TIMM_NAMES = {"levit-128S": "levit_128s", "levit-256": "levit_256"}
PEERS = ("torch-hf eager", "torch-timm eager", "onnxruntime", "litert-torch tflite")


# ------------------------------------------------------------------------------- workers
def worker_tensorflow(work: Path, preset: str, threads: int, runs: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import numpy as np

    from levit_tf.models.levit.inference import optimize_for_inference

    model = keras.saving.load_model(work / "model.keras")
    folded = optimize_for_inference(model)
    saved = tf.saved_model.load(str(work / "saved_model"))
    batches = [1] if threads == 1 else [1, 32]
    for batch in batches:
        x = tf.constant(np.random.default_rng(0).normal(size=(batch, 224, 224, 3)), tf.float32)
        n = runs if batch == 1 else max(5, runs // 5)
        candidates = {
            "keras eager": lambda x: model(x)["logits"],
            "keras tf.function": tf.function(lambda x: model(x)["logits"]),
            "keras folded tf.function": tf.function(lambda x: folded(x)["logits"]),
            "keras folded XLA": tf.function(lambda x: folded(x)["logits"], jit_compile=True),
            "savedmodel": lambda x: saved.signatures["serving_default"](pixel_values=x)["logits"],
        }
        for name, fn in candidates.items():
            ms = median_ms(lambda fn=fn, x=x: fn(x).numpy(), warmup=5, runs=n)
            emit(runtime=name, threads=threads, batch=batch, ms=ms)
    if threads == 2:
        worker_keras_training(model, runs)


def worker_keras_training_onednn(work: Path, preset: str, threads: int, runs: int) -> None:
    """The Keras training step once more on TF's oneDNN kernels (``TF_ENABLE_ONEDNN_OPTS=1``,
    set by ``run_worker``; stock TF enables them only on AVX-512 VNNI / AMX CPUs)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    import levit_tf  # noqa: F401  (registers the Keras classes load_model needs)

    worker_keras_training(keras.saving.load_model(work / "model.keras"), runs, " oneDNN")


def keras_train_step(model, batch: int = 32):
    """One SGD step of ``model`` (a LeViT classifier) on a fixed random (batch, 224, 224, 3)
    batch: a plain function returning the loss, for the caller to wrap in tf.function."""
    import numpy as np
    import tensorflow as tf

    optimizer = tf.keras.optimizers.SGD(0.01)
    x = tf.constant(np.random.default_rng(1).normal(size=(batch, 224, 224, 3)), tf.float32)
    y = tf.constant(np.arange(batch) % model.config.num_labels)

    def step():
        with tf.GradientTape() as tape:
            logits = model(x, training=True)["logits"]
            loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
                y, logits, from_logits=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return step


def worker_keras_training(model, runs: int, variant: str = "") -> None:
    import tensorflow as tf

    from levit_tf import LevitForImageClassification

    step = keras_train_step(LevitForImageClassification(model.config))
    for name, compiled in ((f"keras train step{variant}", tf.function(step)),
                           (f"keras train step{variant} XLA", tf.function(step, jit_compile=True))):
        ms = median_ms(lambda compiled=compiled: compiled().numpy(), warmup=2,
                       runs=max(3, runs // 10))
        emit(runtime=name, threads=2, batch=32, ms=ms)


def worker_tflite(work: Path, preset: str, threads: int, runs: int) -> None:
    from levit_tf.tflite import TFLiteModel

    for path in sorted(work.glob("*.tflite")):
        batch = 32 if path.stem.endswith("_b32") else 1
        if batch == 32 and threads == 1:
            continue
        name = path.stem.removesuffix("_b32")
        model = TFLiteModel(path, num_threads=threads)
        ms = model.latency_ms(runs=runs if batch == 1 else max(5, runs // 5), warmup=5)
        emit(runtime=name, threads=threads, batch=batch, ms=ms)


def worker_torch(work: Path, preset: str, threads: int, runs: int) -> None:
    import torch

    torch.set_num_threads(threads)
    import transformers

    from levit_tf.testing.torch_reference import randomize_, timm_model

    hf = transformers.LevitForImageClassificationWithTeacher.from_pretrained(work / "hf")
    hf.eval()
    timm = timm_model(preset, seed=0)
    timm.load_state_dict(torch.load(work / "timm_state.pt", weights_only=True))
    batches = [1] if threads == 1 else [1, 32]
    with torch.inference_mode():
        for batch in batches:
            x = torch.randn(batch, 3, 224, 224)
            n = runs if batch == 1 else max(5, runs // 5)
            emit(runtime="torch-hf eager", threads=threads, batch=batch,
                 ms=median_ms(lambda x=x: hf(x), 3, n))
            emit(runtime="torch-timm eager", threads=threads, batch=batch,
                 ms=median_ms(lambda x=x: timm(x), 3, n))
    if threads == 2:
        model = randomize_(transformers.LevitForImageClassification(hf.config), seed=1).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        x = torch.randn(32, 3, 224, 224)
        y = torch.arange(32) % model.config.num_labels

        def step():
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x).logits, y)
            loss.backward()
            optimizer.step()

        emit(runtime="torch train step", threads=2, batch=32,
             ms=median_ms(step, 2, max(3, runs // 10)))


def onnx_session(path: Path, threads: int):
    """An ONNX Runtime CPU-provider session of ``path`` pinned to ``threads`` intra-op threads
    and one inter-op thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def worker_onnxruntime(work: Path, preset: str, threads: int, runs: int) -> None:
    import numpy as np

    for batch in ([1] if threads == 1 else [1, 32]):
        session = onnx_session(work / f"timm_b{batch}.onnx", threads)
        feed = {session.get_inputs()[0].name:
                np.random.default_rng(0).normal(size=(batch, 3, 224, 224)).astype(np.float32)}
        emit(runtime="onnxruntime", threads=threads, batch=batch,
             ms=median_ms(lambda s=session, f=feed: s.run(None, f), 5,
                          runs if batch == 1 else max(5, runs // 5)))


WORKERS = {"tensorflow": worker_tensorflow, "tensorflow-onednn": worker_keras_training_onednn,
           "tflite": worker_tflite, "torch": worker_torch, "onnxruntime": worker_onnxruntime}


# ------------------------------------------------------------------------------- artifacts
# int8: the default export (attention core in float); int8-all: every op quantized
TFLITE_MODES = ("float32", "float16", "dynamic", "int8", "int8-all", "int16x8")


def reference_models(work: Path, preset: str):
    """The randomized timm model (its weights saved as ``timm_state.pt`` and
    ``timm.safetensors`` in ``work``) and the Keras model converted from them: (keras, timm)."""
    import safetensors.torch
    import torch

    from levit_tf.converters import load_pretrained
    from levit_tf.testing.torch_reference import timm_model

    timm = timm_model(preset, seed=0)
    torch.save(timm.state_dict(), work / "timm_state.pt")
    safetensors.torch.save_file(timm.state_dict(), work / "timm.safetensors")
    return load_pretrained(work / "timm.safetensors"), timm


def tflite_path(work: Path, name: str, batch: int = 1) -> Path:
    """Where ``export_tflite`` writes mode ``name`` (one of TFLITE_MODES)."""
    return work / f"levit-tf tflite {name}{'_b32' if batch == 32 else ''}.tflite"


def export_tflite(model, work: Path, name: str, batch: int = 1) -> Path:
    """Our TFLite export of ``model`` in mode ``name`` (int8 and int16x8 calibrated on 32 seeded
    random (224, 224, 3) images)."""
    import numpy as np

    from levit_tf.tflite import export

    mode = name.split("-")[0]
    calibration = None
    if mode in ("int8", "int16x8"):
        calibration = np.random.default_rng(2).normal(size=(32, 224, 224, 3)).astype(np.float32)
    path = tflite_path(work, name, batch)
    export(model, path, mode, calibration_data=calibration, calibration_steps=32,
           float_ops=() if name == "int8-all" else None, batch_size=batch)
    return path


def export_onnx(timm, work: Path, batch: int = 1) -> Path:
    """torch.onnx (dynamo) export of the timm model at ``batch``: ``timm_b{batch}.onnx``."""
    import torch

    path = work / f"timm_b{batch}.onnx"
    torch.onnx.export(timm, (torch.randn(batch, 3, 224, 224),), path, dynamo=True,
                      verbose=False)
    return path


def export_litert_torch(work: Path, preset: str, batch: int = 1) -> Path:
    """litert-torch's TFLite of the timm weights in ``work/timm_state.pt``, converted in the
    peers venv (``make peers``; check ``PEERS_PYTHON.exists()`` first)."""
    path = work / f"litert-torch tflite{'_b32' if batch == 32 else ''}.tflite"
    script = ROOT / "benchmarks" / "peers" / "litert_torch_convert.py"
    subprocess.run([str(PEERS_PYTHON), str(script), TIMM_NAMES[preset],
                    str(work / "timm_state.pt"), str(path), "--batch", str(batch)],
                   check=True, capture_output=True, timeout=900)
    return path


def prepare(work: Path, preset: str, progress) -> None:
    """Randomized weights in every format the runtimes need."""
    from levit_tf.export.saved_model import export_saved_model
    from levit_tf.testing.torch_reference import hf_model

    model, timm = reference_models(work, preset)
    hf_model(preset, seed=0).save_pretrained(work / "hf")
    model.save(work / "model.keras")
    progress("SavedModel")
    export_saved_model(model, work / "saved_model")
    for name in TFLITE_MODES:
        progress(f"TFLite {name}")
        export_tflite(model, work, name)
    export_tflite(model, work, "float32", batch=32)
    for batch in (1, 32):
        progress(f"ONNX batch {batch}")
        export_onnx(timm, work, batch)
    if PEERS_PYTHON.exists():
        for batch in (1, 32):
            progress(f"litert-torch batch {batch}")
            export_litert_torch(work, preset, batch)


def worker_env(threads: int, onednn: bool = False) -> dict[str, str]:
    """The environment of a timing process: quiet TF, OpenMP pinned to ``threads``, TF's oneDNN
    kernels on or off."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": str(threads),
            "TF_ENABLE_ONEDNN_OPTS": "1" if onednn else "0"}


def run_worker(family: str, work: Path, preset: str, threads: int, runs: int) -> list[dict]:
    env = worker_env(threads, onednn=family == "tensorflow-onednn")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.speed", "--worker", family, "--work", str(work),
         "--presets", preset, "--threads", str(threads), "--runs", str(runs)],
        capture_output=True, text=True, env=env, timeout=1800, cwd=ROOT)
    if result.returncode:
        raise RuntimeError(f"{family} worker failed:\n{result.stderr[-3000:]}")
    return [json.loads(line[4:]) for line in result.stdout.splitlines() if line.startswith("ROW ")]


# ------------------------------------------------------------------------------- report
def summarize(rows: list[dict]) -> str:
    lines = []
    for preset in dict.fromkeys(r["preset"] for r in rows):
        sub = [r for r in rows if r["preset"] == preset]

        def value(runtime, threads, batch, sub=sub):
            hits = [r["ms"] for r in sub if (r["runtime"], r["threads"], r["batch"])
                    == (runtime, threads, batch)]
            return hits[0] if hits else None

        best = {}
        for threads, batch in ((1, 1), (2, 1), (2, 32)):
            peer_times = [value(p, threads, batch) for p in PEERS]
            peer_times = [t for t in peer_times if t is not None]
            best[(threads, batch)] = min(peer_times) if peer_times else None
        lines.append(f"\n{preset}: batch-1 latency (ms) at 1 and 2 threads, batch-32 throughput "
                     "(img/s) at 2 threads; ratio = ours / best peer (latency) or peer / ours")
        lines.append(f"{'runtime':<30}{'1T ms':>9}{'ratio':>7}{'2T ms':>9}{'ratio':>7}"
                     f"{'b32 img/s':>11}{'ratio':>7}{'GFLOP/s 1T':>12}{'of peak':>9}")
        runtimes = [r for r in dict.fromkeys(r["runtime"] for r in sub) if "train" not in r]
        for runtime in runtimes:
            cells = []
            for threads, batch in ((1, 1), (2, 1)):
                ms, ref = value(runtime, threads, batch), best[(threads, batch)]
                cells.append(f"{ms:>9.2f}{ms / ref:>7.2f}" if ms and ref else
                             (f"{ms:>9.2f}{'':>7}" if ms else f"{'-':>9}{'':>7}"))
            ms32, ref32 = value(runtime, 2, 32), best[(2, 32)]
            cells.append(f"{32000 / ms32:>11.1f}{ref32 / ms32:>7.2f}" if ms32 and ref32 else
                         (f"{32000 / ms32:>11.1f}{'':>7}" if ms32 else f"{'-':>11}{'':>7}"))
            ms1 = value(runtime, 1, 1)
            gflops = GFLOP_PER_IMAGE[preset] / (ms1 / 1000) if ms1 else None
            cells.append(f"{gflops:>12.1f}{gflops / PEAK_GFLOPS_PER_CORE:>9.0%}" if gflops
                         else f"{'-':>12}{'-':>9}")
            lines.append(f"{runtime:<30}" + "".join(cells))
        torch_train = value("torch train step", 2, 32)
        for name in ("keras train step", "keras train step XLA", "keras train step oneDNN",
                     "keras train step oneDNN XLA"):
            keras_train = value(name, 2, 32)
            if keras_train and torch_train:
                lines.append(f"{name}, batch 32, 2 threads: {32000 / keras_train:.1f} img/s vs "
                             f"PyTorch eager {32000 / torch_train:.1f} img/s "
                             f"({torch_train / keras_train:.2f}x)")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    presets = list(dict.fromkeys(r["preset"] for r in rows))
    fig, axes = plt.subplots(1, len(presets), figsize=(7 * len(presets), 6), squeeze=False)
    for ax, preset in zip(axes[0], presets, strict=True):
        sub = [r for r in rows if r["preset"] == preset and r["batch"] == 1
               and "train" not in r["runtime"]]
        names = list(dict.fromkeys(r["runtime"] for r in sub))
        for offset, threads in ((-0.2, 1), (0.2, 2)):
            values = [next((r["ms"] for r in sub if r["runtime"] == n and r["threads"] == threads),
                           0) for n in names]
            ax.barh([i + offset for i in range(len(names))], values, height=0.4,
                    label=f"{threads} thread{'s' if threads > 1 else ''}",
                    color=["tab:blue" if threads == 1 else "tab:orange"] * len(names))
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ax.set_xlabel("batch-1 latency (ms, lower is better)")
        ax.set_title(f"{preset} on {platform.processor() or platform.machine()}, "
                     f"{os.cpu_count()} cores")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["levit-128S", "levit-256"])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--work", type=Path)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.worker:
        WORKERS[args.worker](args.work, args.presets[0], args.threads, args.runs)
        return

    from tqdm import tqdm

    args.out.mkdir(parents=True, exist_ok=True)
    families = ["tensorflow", "tflite", "torch", "onnxruntime"]
    jobs = [(p, f, t) for p in args.presets for f in families for t in (1, 2)]
    jobs += [(p, "tensorflow-onednn", 2) for p in args.presets]  # training only
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, tqdm(total=len(args.presets) + len(jobs),
                                                    desc="speed") as bar:
        works = {}
        for preset in args.presets:
            works[preset] = Path(tmp) / preset
            works[preset].mkdir()
            prepare(works[preset], preset, lambda what, p=preset: bar.set_postfix_str(
                f"{p}: exporting {what}"))
            bar.update()
        for preset, family, threads in jobs:
            bar.set_postfix_str(f"{preset}: {family} {threads}T")
            for row in run_worker(family, works[preset], preset, threads, args.runs):
                rows.append({**row, "preset": preset})
            bar.update()
    from levit_tf.utils.cpu_features import int8_capability

    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
               f"{int8_capability()}, "
               f"Python {platform.python_version()}, load average "
               f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    table = summarize(rows)
    print(f"\nmachine: {machine}\nthreads pinned per process (TF intra-op, torch, ORT intra-op, "
          f"TFLite num_threads); medians of {args.runs} batch-1 runs after warm-up" + table)
    (args.out / "speed.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    (args.out / "speed.txt").write_text(f"machine: {machine}\n{table}\n")
    plot(rows, args.out / "speed.png")
    print(f"\nwrote {args.out / 'speed.json'}, {args.out / 'speed.txt'}, {args.out / 'speed.png'}")


if __name__ == "__main__":
    main()
