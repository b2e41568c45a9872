"""What the float attention core costs the default int8 graph, at 1 and 2 threads.

    python -m benchmarks.int8_attention_core [--preset levit-128S] [--rounds 60] [--runs 15]
        [--work DIR] [--out benchmarks/results]

The default int8 export keeps each attention's core (QK^T, the bias SUB, softmax, AV and the
Hardswish after it) in float, because LiteRT's XNNPACK delegate leaves their int8 forms on
builtin kernels. This times, in the interleaved rounds of ``thread_scaling.py`` (one worker
process per graph and thread count, every graph in every round), from the same randomized
weights:

- ``levit-tf float32`` and ``levit-tf int8`` (the default), exported as speed.py exports them;
- ``int8 without core``: the same int8 export of a folded model whose attentions
  skip the core (the projection reads the values directly; the shrinking attentions' query
  projections, which fed QK^T only, go too: <1% of the MACs). It computes nothing useful; its
  latency is the default int8 graph minus the attention core: what the graph would take if
  the core cost nothing, a floor under any int8 attention core;
- ``float32 without core``: the same skeleton in float32, so the core's cost in the
  float32 graph (the same float ops) sits beside its cost in the int8 graph.

Prints latencies, the per-round ratios to our float32, and what the core costs (each full graph
minus its core-less twin, per round); writes ``int8_attention_core.txt`` to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras import ops

from benchmarks import speed, thread_scaling
from levit_tf.models.levit.inference import (
    FoldedAttention,
    LevitForInference,
    optimize_for_inference,
)

ROOT = Path(__file__).resolve().parents[1]
#: mode -> (the full graph it is compared with, speed.export_tflite's name of its export)
CORELESS = {"int8 without core": ("levit-tf int8", "int8-nocore"),
            "float32 without core": ("levit-tf float32", "float32-nocore")}


class WithoutAttentionCore(LevitForInference):
    """The folded model with every attention's core taken out: (B*N, C) tokens go through the
    query/key/value projection, the values straight to Hardswish and the output projection.
    A timing skeleton; its logits mean nothing."""

    def tokens(self, pixel_values):
        x = self.stem_tokens(pixel_values)
        for block in self.blocks:
            x = values_only(block, x) if isinstance(block, FoldedAttention) else block(x)
        return x


def values_only(block: FoldedAttention, x):
    """``block`` without QK^T, bias, softmax and AV: (B*N, C) -> (B*N_q, output_dim)."""
    _, _, value = block.split_heads(x)
    value = value[:, :, : block.num_queries]  # a shrinking attention keeps N_q rows
    out = block.projection(ops.hard_swish(block.merge_heads(value)))
    return x + out if block.stride == 1 else out


def export_coreless(model, work: Path, mode: str) -> Path:
    """``mode``'s export of ``model`` without its attention cores, written and calibrated as
    speed.py writes and calibrates the full graph's."""
    folded = optimize_for_inference(model)
    skeleton = WithoutAttentionCore(folded.config, name="without_attention_core")
    skeleton.set_weights(folded.get_weights())
    return speed.export_tflite(skeleton, work, CORELESS[mode][1])


def prepare(work: Path, preset: str) -> dict[str, tuple[str, Path]]:
    """mode -> (runner kind, file), exported into ``work`` (files there are reused)."""
    files = {mode: ("tflite", speed.tflite_path(work, thread_scaling.OURS[mode]))
             for mode in ("levit-tf float32", "levit-tf int8")}
    files.update({mode: ("tflite", speed.tflite_path(work, name))
                  for mode, (_, name) in CORELESS.items()})
    if all(path.exists() for _, path in files.values()):
        return files
    model, _ = speed.reference_models(work, preset)
    for mode, (_, path) in files.items():
        if not path.exists():
            if mode in CORELESS:
                export_coreless(model, work, mode)
            else:
                speed.export_tflite(model, work, thread_scaling.OURS[mode])
    return files


def core_cost(times: dict, threads: list[int]) -> list[str]:
    """Per round: each full graph minus its core-less twin (ms), summarized over rounds."""
    medians = thread_scaling.round_medians(times)
    lines = ["\nattention core cost (full graph - the same graph without attention core, ms "
             "per round)",
             f"{'graph':<20}{'threads':>8}{'median':>8}{'min':>8}{'p25':>8}{'p75':>8}{'max':>8}"]
    for coreless, (full, _) in CORELESS.items():
        for t in threads:
            cost = [a - b for a, b in zip(medians[(full, t)], medians[(coreless, t)],
                                          strict=True)]
            row = thread_scaling.spread(cost)
            lines.append(f"{full:<20}{t:>8}" + "".join(
                f"{row[k]:>8.3f}" for k in ("median", "min", "p25", "p75", "max")))
    return lines


def coverage_lines(files: dict[str, tuple[str, Path]]) -> list[str]:
    """What XNNPACK took of each graph: a floor only counts if nothing left the delegate."""
    from levit_tf.tflite.runtime import xnnpack_coverage

    lines = []
    for mode, (_, path) in files.items():
        coverage = xnnpack_coverage(path)
        builtin = sum(coverage.builtin_ops.values())
        lines.append(f"{mode}: {sum(coverage.total_ops.values())} ops, {coverage.partitions} "
                     f"XNNPACK partition(s), {builtin} on builtin kernels")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="levit-128S", choices=sorted(speed.TIMM_NAMES))
    parser.add_argument("--threads", nargs="+", type=thread_scaling.positive, default=[1, 2])
    parser.add_argument("--rounds", type=thread_scaling.positive, default=60)
    parser.add_argument("--runs", type=thread_scaling.positive, default=15)
    parser.add_argument("--work", type=Path, help="keep (and reuse) the exported models here")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    from tqdm import tqdm

    from levit_tf.utils.cpu_features import cpu_model, int8_capability
    from levit_tf.utils.files import atomic_write_text

    thread_scaling.writable_out(args.out, "int8_attention_core")
    with tempfile.TemporaryDirectory() as tmp:
        work = (args.work or Path(tmp)) / args.preset
        work.mkdir(parents=True, exist_ok=True)
        files = prepare(work, args.preset)
        coverage = coverage_lines(files)
        try:
            with tqdm(total=args.rounds, desc="rounds") as bar:
                measurement = thread_scaling.measure(files, args.threads, args.rounds,
                                                     args.runs, progress=lambda: bar.update())
        except thread_scaling.WorkerError as err:
            sys.exit(f"int8_attention_core: {err}")
    summary = thread_scaling.summarize(measurement.times, peers=())
    report = "\n".join([
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {int8_capability()}, "
        f"Python {platform.python_version()}",
        f"{args.preset} 224 px, batch 1; {args.rounds} interleaved rounds x {args.runs} timed "
        "runs per graph and thread count",
        *coverage, "", thread_scaling.format_report(summary),
        *core_cost(measurement.times, args.threads), ""])
    print("\n" + report)
    atomic_write_text(args.out / "int8_attention_core.txt", report)
    print(f"wrote {args.out / 'int8_attention_core.txt'}")


if __name__ == "__main__":
    main()
