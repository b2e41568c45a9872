"""The timing skeleton of benchmarks/int8_attention_core.py (the timing itself is a benchmark):
its int8 export drops exactly the attention core of the default int8 graph and still runs in
one XNNPACK partition, so the latency difference is the core's."""

from __future__ import annotations

from importlib import import_module

import numpy as np
import pytest

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.models.levit.inference import FoldedAttention, optimize_for_inference
from levit_tf.testing.models import SMALL, randomize
from levit_tf.tflite import export, xnnpack_coverage

CORE = ("BATCH_MATMUL", "SUB", "SOFTMAX")


@pytest.fixture(scope="module")
def core():
    return import_module("benchmarks.int8_attention_core")


@pytest.mark.slow  # two int8 conversions
def test_skeleton_drops_the_attention_core_only(core, tmp_path):
    model = randomize(LevitForImageClassificationWithTeacher(LevitConfig(**SMALL)), seed=5)
    folded = optimize_for_inference(model)
    skeleton = core.WithoutAttentionCore(folded.config)
    skeleton.set_weights(folded.get_weights())
    calibration = np.random.default_rng(0).normal(size=(8, 96, 96, 3)).astype(np.float32)
    full = xnnpack_coverage(export(folded, tmp_path / "full.tflite", "int8",
                                   calibration_data=calibration).path)
    cut = xnnpack_coverage(export(skeleton, tmp_path / "cut.tflite", "int8",
                                  calibration_data=calibration).path)
    attentions = [b for b in folded.blocks if isinstance(b, FoldedAttention)]
    shrinking = sum(b.stride == 2 for b in attentions)
    assert all(full.total_ops[op] for op in CORE)
    assert not any(cut.total_ops[op] for op in CORE)
    # the shrinking attentions' query projections fed QK^T only, so they go with the core
    assert cut.total_ops["FULLY_CONNECTED"] == full.total_ops["FULLY_CONNECTED"] - shrinking
    assert cut.total_ops["CONV_2D"] == full.total_ops["CONV_2D"]
    assert cut.total_ops["HARD_SWISH"] == full.total_ops["HARD_SWISH"]
    for coverage in (full, cut):  # the difference is the core's, not a delegate split
        assert coverage.partitions == 1 and not coverage.builtin_ops


def test_core_cost_is_the_per_round_difference(core):
    """Per round: the full graph's median minus its core-less twin's, summarized over rounds."""
    rounds = {("levit-tf int8", 1): [[4.0, 4.2, 9.0], [3.0]],
              ("int8 without core", 1): [[3.0], [2.5]],
              ("levit-tf float32", 1): [[10.0], [12.0]],
              ("float32 without core", 1): [[8.0], [11.0]]}
    lines = core.core_cost(rounds, [1])
    int8_row = next(line for line in lines if line.startswith("levit-tf int8"))
    float_row = next(line for line in lines if line.startswith("levit-tf float32"))
    # int8: medians 4.2 - 3.0 = 1.2 and 3.0 - 2.5 = 0.5; float32: 2.0 and 1.0
    assert [float(v) for v in int8_row.split()[-5:]] == [0.85, 0.5, 0.675, 1.025, 1.2]
    assert [float(v) for v in float_row.split()[-5:]] == [1.5, 1.0, 1.25, 1.75, 2.0]
