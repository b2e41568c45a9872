"""Where the TFLite time goes: cumulative latency of the folded graph cut after each block.

    python -m benchmarks.profile_blocks [--preset levit-128S] [--threads 1] [--mode float32]

The Python LiteRT interpreter has no op profiler, so this profiles by construction: it exports
the folded model truncated after the stem and after every block (same weights, same XNNPACK
delegate), times each prefix, and prints per-block increments next to each block's FLOPs and the
GFLOP/s it reaches. The last row is the whole network.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from keras import ops
from tqdm import tqdm

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.models.levit.inference import (
    FoldedAttention,
    LevitForInference,
    optimize_for_inference,
)
from levit_tf.tflite import TFLiteModel


class Prefix(keras.Model):
    """The folded model's stem and its first ``blocks`` blocks, pooled to (B, C)."""

    def __init__(self, folded: LevitForInference, blocks: int) -> None:
        super().__init__()
        self.folded, self.blocks = folded, blocks

    def call(self, pixel_values):
        x = self.folded.stem_tokens(pixel_values)
        for block in self.folded.blocks[:self.blocks]:
            x = block(x)
        return {"logits": ops.mean(ops.reshape(x, (1, -1, x.shape[-1])), axis=1)}


def block_macs(block: keras.layers.Layer, tokens: int) -> int:
    """Multiply-accumulates of one folded block at batch 1 (``tokens``: its input tokens)."""
    if isinstance(block, FoldedAttention):
        h, d, v = block.num_heads, block.key_dim, block.value_dim
        nk, nq = block.num_keys, block.num_queries
        if block.stride == 1:
            projections = nk * block.queries_keys_values.kernel.shape[0] * h * (2 * d + v)
        else:
            width = block.keys_values.kernel.shape[0]
            projections = nk * width * h * (d + v) + nq * width * h * d
        return projections + h * nq * nk * (d + v) + nq * h * v * block.output_dim
    return 2 * tokens * block.hidden_size * block.hidden_dim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="levit-128S")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mode", default="float32", choices=["float32", "dynamic"])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    model = LevitForImageClassificationWithTeacher(LevitConfig.from_preset(args.preset))
    rng = np.random.default_rng(0)
    for weight in model.weights:  # random, non-zero everywhere (nothing prunable)
        scale = 0.05 if weight.path.endswith("kernel") else 0.2
        value = rng.normal(0, scale, weight.shape)
        if weight.path.endswith(("moving_variance", "gamma")):
            value = rng.uniform(0.5, 1.5, weight.shape)
        weight.assign(value.astype("float32"))
    folded = optimize_for_inference(model)
    grids = [g[0] * g[1] for g in model.config.stage_grids()]
    block_tokens, stage = [], 0
    for block in folded.blocks:  # tokens each block reads, for its FLOP count
        block_tokens.append(grids[stage])
        if isinstance(block, FoldedAttention) and block.stride == 2:
            stage += 1
            block_tokens[-1] = grids[stage]  # the MLP after it runs on the smaller grid
    stem_macs = sum(int(np.prod(c.kernel.shape)) * (224 // 2 ** (i + 1)) ** 2
                    for i, c in enumerate(folded.stem_convs))
    rows, previous = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for count in tqdm(range(len(folded.blocks) + 1), desc="prefixes"):
            prefix = Prefix(folded, count)
            prefix(np.zeros((1, 224, 224, 3), np.float32))
            path = Path(tmp) / f"prefix{count}.tflite"
            export_prefix(prefix, path, args.mode)
            ms = min(TFLiteModel(path, args.threads).latency_ms(args.runs) for _ in range(2))
            name = "stem" if count == 0 else folded.blocks[count - 1].name
            macs = (stem_macs if count == 0 else
                    block_macs(folded.blocks[count - 1], block_tokens[count - 1]))
            rows.append((name, ms - previous, macs))
            previous = ms
    print(f"\n{args.preset} {args.mode}, {args.threads} thread(s): per-block TFLite time")
    print(f"{'block':<28}{'ms':>8}{'MMAC':>8}{'GFLOP/s':>9}")
    for name, ms, macs in rows:  # increments below timer noise get no GFLOP/s
        rate = f"{2 * macs / 1e6 / ms:>9.1f}" if ms > 0.05 else f"{'noise':>9}"
        print(f"{name:<28}{ms:>8.3f}{macs / 1e6:>8.1f}{rate}")
    print(f"{'total':<28}{previous:>8.3f}{sum(r[2] for r in rows) / 1e6:>8.1f}")


def export_prefix(prefix: keras.Model, path: Path, mode: str) -> None:
    """Converts a prefix model the way ``levit_tf.tflite.export()`` converts the full one."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as saved:
        archive = keras.export.ExportArchive()
        archive.track(prefix)
        archive.add_endpoint(name="serving_default", fn=lambda x: prefix(x),
                             input_signature=[tf.TensorSpec((1, 224, 224, 3), tf.float32)])
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if mode == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        path.write_bytes(converter.convert())


if __name__ == "__main__":
    main()
