"""The helpers of benchmarks/profile_training.py (the profiling run itself is a benchmark): op
categories, reading op times from a real TF profile, the bound in the report."""

from __future__ import annotations

from importlib import import_module

import pytest
import tensorflow as tf


@pytest.fixture(scope="module")
def profiler():
    return import_module("benchmarks.profile_training")


@pytest.mark.parametrize("op,category", [
    ("_MklNativeConv2D", "matmul / conv"), ("MatMul", "matmul / conv"),
    ("aten::addmm", "matmul / conv"), ("aten::convolution_backward", "matmul / conv"),
    ("BatchMatMulV2", "matmul / conv"), ("FusedBatchNormGradV3", "batch norm"),
    ("aten::native_batch_norm", "batch norm"), ("_MklSoftmax", "softmax"),
    ("aten::_softmax_backward_data", "softmax"), ("Relu6Grad", "elementwise"),
    ("aten::hardswish", "elementwise"), ("AddN", "elementwise"),
    ("Transpose", "data movement"), ("UnsortedSegmentSum", "data movement"),
    ("aten::index_put_", "data movement"), ("AssignSubVariableOp", "optimizer"),
    ("BiasAddGrad", "other")])
def test_categorize(profiler, op, category):
    assert profiler.categorize(op) == category


def test_op_times_from_a_real_tf_profile(profiler, tmp_path):
    a = tf.random.normal((256, 256))

    @tf.function
    def work():
        return tf.nn.relu(tf.matmul(a, a))

    work()
    tf.profiler.experimental.start(str(tmp_path))
    for _ in range(3):
        work().numpy()
    tf.profiler.experimental.stop()
    times = profiler._tf_op_time_us(next(tmp_path.rglob("*.xplane.pb")))
    matmuls = {op: us for op, us in times.items() if profiler.categorize(op) == "matmul / conv"}
    assert matmuls and all(us > 0 for us in matmuls.values()), times
    assert "Relu" in times and "Process" not in times  # executor events are not ops


def test_report_bounds_the_speedup_by_the_gemm_time(profiler):
    rows = [{"runtime": "keras oneDNN", "step_ms": 500.0,
             "op_ms": {"_MklMatMul": 300.0, "Mul": 150.0, "FusedBatchNormV3": 50.0}},
            {"runtime": "pytorch eager", "step_ms": 600.0,
             "op_ms": {"aten::addmm": 400.0, "aten::hardswish": 200.0}}]
    report = profiler.format_report(rows, "levit-128S", 32, 2)
    assert "keras oneDNN: 1.20x PyTorch's speed" in report
    assert "matmul/conv kernels alone take 300 ms" in report and "at most 2.00x" in report
    assert "64.0" in report  # img/s of the 500 ms step
