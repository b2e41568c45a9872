"""How close can a TFLite LeViT get to a latency goal? The matmul-only floor.

    python -m benchmarks.matmul_floor [--preset levit-128S] [--modes float32 dynamic]

Exports, from the same randomized weights, in each of ``--modes``:

- ``levit-tf MODE``: the folded model, as ``levit_tf.tflite.export()`` writes it;
- ``skeleton MODE``: the same graph with every op that is not a matmul or convolution taken out
  (hardswish, softmax, the attention-bias SUB, the residual ADDs), keeping only the reshapes,
  transposes and slices that feed the batched matmuls. It computes nothing useful: it is the
  time of LeViT's FULLY_CONNECTED / CONV_2D / BATCH_MATMUL work alone, a floor for any graph
  that does that work with these kernels. (No int8 skeleton: without softmax and
  normalization its activations overflow float32, which calibration cannot quantize.)

and ``litert-torch float32``, litert-torch's conversion of the same timm weights (needs
``make peers``). All are timed interleaved under XNNPACK at 1 and 2 threads (fastest median of
``--rounds`` rounds of ``--runs`` invokes); the table gives each latency and its ratio to
litert-torch's.
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
from tqdm import tqdm

from levit_tf.models.levit import inference
from levit_tf.tflite import TFLiteModel, export

ROOT = Path(__file__).resolve().parents[1]
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
TIMM_NAMES = {"levit-128S": "levit_128s", "levit-256": "levit_256"}
PEER = "litert-torch float32"


def _attention_matmuls_only(self: inference.FoldedAttention, x):
    """FoldedAttention.call with the bias, softmax, hardswish and residual taken out."""
    query, key, value = self.split_heads(x)
    return self.projection(self.merge_heads(ops.matmul(self.scores(query, key), value)))


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


def prepare(work: Path, preset: str, modes: list[str]) -> dict[str, Path]:
    """Writes every graph into ``work``: {graph name: .tflite path}. The skeleton's matmul op
    counts equal the full graph's (tests/tflite/test_matmul_floor.py keeps them in step)."""
    import safetensors.torch
    import torch

    from levit_tf.converters import load_pretrained
    from levit_tf.testing.torch_reference import timm_model

    timm = timm_model(preset, seed=0)  # every weight and BN statistic randomized
    torch.save(timm.state_dict(), work / "timm_state.pt")
    safetensors.torch.save_file(timm.state_dict(), work / "timm.safetensors")
    model = load_pretrained(work / "timm.safetensors")
    paths = {}
    for mode in tqdm(modes, desc="exporting", unit="mode", leave=False):
        paths[f"levit-tf {mode}"] = export(model, work / f"levit-tf-{mode}.tflite", mode).path
        with matmuls_only():
            paths[f"skeleton {mode}"] = export(model, work / f"skeleton-{mode}.tflite", mode).path
    if PEERS_PYTHON.exists():
        peer = work / "litert-torch.tflite"
        subprocess.run([str(PEERS_PYTHON), str(ROOT / "benchmarks" / "peers" /
                        "litert_torch_convert.py"), TIMM_NAMES[preset],
                        str(work / "timm_state.pt"), str(peer)],
                       check=True, capture_output=True, timeout=900)
        paths[PEER] = peer
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


def format_table(results: dict[int, dict[str, float]], preset: str) -> str:
    """results: {threads: {graph name: ms}} -> the table and, per mode, the matmul floor."""
    names = list(next(iter(results.values())))
    peer = PEER if PEER in names else None
    lines = [f"{preset}: TFLite under XNNPACK, batch 1 (ms; ratio to litert-torch's float32)",
             f"{'graph':<22}" + "".join(f"{f'{t} thread(s)':>22}" for t in results)]
    for name in names:
        cells = []
        for latencies in results.values():
            ratio = f" ({latencies[name] / latencies[peer]:.3f}x)" if peer else ""
            cells.append(f"{latencies[name]:.2f}{ratio}")
        lines.append(f"{name:<22}" + "".join(f"{cell:>22}" for cell in cells))
    for mode in (name.removeprefix("skeleton ") for name in names if name.startswith("skeleton")):
        for threads, latencies in results.items():
            floor, ours = latencies[f"skeleton {mode}"], latencies[f"levit-tf {mode}"]
            share = f"{floor / latencies[peer]:.3f}x litert-torch's model; " if peer else ""
            lines.append(f"{mode}, {threads} thread(s): the matmul work alone takes {floor:.2f} "
                         f"ms = {share}the rest of levit-tf's graph adds {ours - floor:.2f} ms")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="levit-128S", choices=sorted(TIMM_NAMES))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--modes", nargs="+", default=["float32"],
                        choices=["float32", "float16", "dynamic"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        paths = prepare(Path(work), args.preset, args.modes)
        results = {threads: time_interleaved(paths, threads, args.rounds, args.runs)
                   for threads in (1, 2)}
    table = format_table(results, args.preset)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"matmul_floor_{args.preset}_{'_'.join(args.modes)}.txt").write_text(table + "\n")


if __name__ == "__main__":
    main()
