"""How close can a float32 TFLite LeViT get to a latency goal? The matmul-only floor.

    python benchmarks/matmul_floor.py [--preset levit-128S] [--rounds 7] [--runs 50]

Exports three float32 graphs of the same randomized weights and times them interleaved under
XNNPACK at 1 and 2 threads (fastest median of ``--rounds`` rounds of ``--runs`` invokes):

- ``levit-tf``: the folded model, as ``levit_tf.tflite.export`` writes it;
- ``matmul skeleton``: the same graph with every op that is not a matmul or convolution taken
  out (hardswish, softmax, the attention-bias SUB, the residual ADDs), keeping only the reshapes,
  transposes and slices that feed the batched matmuls. It computes nothing useful: it is the
  time of LeViT's FULLY_CONNECTED / CONV_2D / BATCH_MATMUL work alone, a floor for any graph
  that does that work with these kernels;
- ``litert-torch``: litert-torch's conversion of the same timm weights (needs ``make peers``).

The table gives each latency as a ratio to litert-torch's and the latency a goal ratio asks for.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras import ops
from levit_tf.tflite import TFLiteModel, export
from tqdm import tqdm

from levit_tf import inference

ROOT = Path(__file__).resolve().parents[1]
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
TIMM_NAMES = {"levit-128S": "levit_128s", "levit-256": "levit_256"}


def _attention_matmuls_only(self: inference.FoldedAttention, x):
    """FoldedAttention.call with the bias, softmax, hardswish and residual taken out."""
    d, v, h = self.key_dim, self.value_dim, self.num_heads
    if self.stride == 1:
        qkv = ops.reshape(self.queries_keys_values(x), (-1, self.num_keys, h, 2 * d + v))
        query, key, value = qkv[..., :d], qkv[..., d: 2 * d], qkv[..., 2 * d:]
    else:
        kv = ops.reshape(self.keys_values(x), (-1, self.num_keys, h, d + v))
        key, value = kv[..., :d], kv[..., d:]
        query = ops.reshape(self.queries(self.subsample(x)), (-1, self.num_queries, h, d))
    scores = ops.matmul(ops.transpose(query, (0, 2, 1, 3)), ops.transpose(key, (0, 2, 3, 1)))
    out = ops.matmul(scores, ops.transpose(value, (0, 2, 1, 3)))
    return self.projection(ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (-1, h * v)))


def _mlp_matmuls_only(self: inference.FoldedMLP, x):
    return self.linear_down(self.linear_up(x))


@contextlib.contextmanager
def matmuls_only() -> Iterator[None]:
    """While active, folded models trace without hardswish, softmax, bias and residuals."""
    saved = (inference.FoldedAttention.call, inference.FoldedMLP.call, ops.hard_swish)
    inference.FoldedAttention.call = _attention_matmuls_only
    inference.FoldedMLP.call = _mlp_matmuls_only
    ops.hard_swish = lambda x: x  # the stem's activations (inference.py calls ops.hard_swish)
    try:
        yield
    finally:
        inference.FoldedAttention.call, inference.FoldedMLP.call, ops.hard_swish = saved


def prepare(work: Path, preset: str) -> dict[str, Path]:
    import safetensors.torch
    import torch
    from levit_tf.converters import load_pretrained

    from levit_tf.testing.torch_reference import timm_model

    timm = timm_model(preset, seed=0)  # every weight and BN statistic randomized
    torch.save(timm.state_dict(), work / "timm_state.pt")
    safetensors.torch.save_file(timm.state_dict(), work / "timm.safetensors")
    model = load_pretrained(work / "timm.safetensors")
    paths = {"levit-tf": export(model, work / "levit-tf.tflite").path}
    with matmuls_only():
        paths["matmul skeleton"] = export(model, work / "skeleton.tflite").path
    if PEERS_PYTHON.exists():
        peer = work / "litert-torch.tflite"
        subprocess.run([str(PEERS_PYTHON), str(ROOT / "benchmarks" / "peers" /
                        "litert_torch_convert.py"), TIMM_NAMES[preset],
                        str(work / "timm_state.pt"), str(peer)],
                       check=True, capture_output=True, timeout=900)
        paths["litert-torch"] = peer
    return paths


def time_interleaved(paths: dict[str, Path], threads: int, rounds: int, runs: int
                     ) -> dict[str, float]:
    """Fastest per-round median latency (ms) of each model, rounds interleaved."""
    models = {name: TFLiteModel(path, num_threads=threads) for name, path in paths.items()}
    best = dict.fromkeys(models, float("inf"))
    for _ in tqdm(range(rounds), desc=f"timing, {threads} thread(s)", unit="round",
                  leave=False):
        for name, model in models.items():
            best[name] = min(best[name], model.latency_ms(runs=runs, warmup=5))
    return best


def format_table(results: dict[int, dict[str, float]], preset: str, goal: float) -> str:
    names = list(next(iter(results.values())))
    peer = "litert-torch" if "litert-torch" in names else None
    lines = [f"{preset}: float32 TFLite under XNNPACK, batch 1 (ms; ratio to litert-torch)",
             f"{'graph':<18}" + "".join(f"{f'{t} thread(s)':>22}" for t in results)]
    for name in names:
        cells = []
        for latencies in results.values():
            ratio = f" ({latencies[name] / latencies[peer]:.3f}x)" if peer else ""
            cells.append(f"{latencies[name]:.2f}{ratio}")
        lines.append(f"{name:<18}" + "".join(f"{cell:>22}" for cell in cells))
    if peer:
        lines.append(f"{f'goal {goal}x':<18}" + "".join(
            f"{latencies[peer] * goal:>22.2f}" for latencies in results.values()))
        for threads, latencies in results.items():
            room = latencies[peer] * goal - latencies["matmul skeleton"]
            lines.append(f"{threads} thread(s): the goal leaves {room:+.2f} ms for everything "
                         f"that is not a matmul; levit-tf spends "
                         f"{latencies['levit-tf'] - latencies['matmul skeleton']:.2f} ms on it")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="levit-128S", choices=sorted(TIMM_NAMES))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--goal", type=float, default=0.9, help="latency ratio to the peer")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        paths = prepare(Path(work), args.preset)
        results = {threads: time_interleaved(paths, threads, args.rounds, args.runs)
                   for threads in (1, 2)}
    table = format_table(results, args.preset, args.goal)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"matmul_floor_{args.preset}.txt").write_text(table + "\n")


if __name__ == "__main__":
    main()
