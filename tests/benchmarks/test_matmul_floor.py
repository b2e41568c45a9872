"""The helpers of benchmarks/matmul_floor.py (the timing itself is a benchmark): the matmul
skeleton keeps every matmul and convolution and drops everything else, the patch is undone
afterwards, and the table's arithmetic."""

from __future__ import annotations

from importlib import import_module

import pytest

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.testing.models import SMALL, randomize
from levit_tf.tflite import export, xnnpack_coverage

MATMULS = ("FULLY_CONNECTED", "CONV_2D", "BATCH_MATMUL")


@pytest.fixture(scope="module")
def floor():
    return import_module("benchmarks.matmul_floor")


@pytest.mark.slow  # three TFLite conversions
def test_skeleton_keeps_the_matmuls_only(floor, tmp_path):
    model = randomize(LevitForImageClassificationWithTeacher(LevitConfig(**SMALL)), seed=3)
    full = xnnpack_coverage(export(model, tmp_path / "full.tflite").path).total_ops
    with floor.matmuls_only():
        skeleton = xnnpack_coverage(export(model, tmp_path / "skeleton.tflite").path).total_ops
    again = xnnpack_coverage(export(model, tmp_path / "again.tflite").path).total_ops
    assert {op: skeleton[op] for op in MATMULS} == {op: full[op] for op in MATMULS}
    for dropped in ("SOFTMAX", "HARD_SWISH", "SUB"):
        assert full[dropped] and not skeleton[dropped], dropped
    assert again == full  # the patch is undone on exit


def test_table_gives_each_modes_matmul_floor(floor):
    results = {1: {"levit-tf float32": 9.0, "skeleton float32": 8.5, "levit-tf dynamic": 8.0,
                   "skeleton dynamic": 7.0, "litert-torch float32": 10.0},
               2: {"levit-tf float32": 5.0, "skeleton float32": 4.6, "levit-tf dynamic": 4.5,
                   "skeleton dynamic": 4.0, "litert-torch float32": 5.0}}
    table = floor.format_table(results, "levit-128S")
    assert "8.50 (0.850x)" in table and "4.00 (0.800x)" in table
    assert ("float32, 1 thread(s): the matmul work alone takes 8.50 ms = 0.850x litert-torch's "
            "model; the rest of levit-tf's graph adds 0.50 ms") in table
    assert "dynamic, 2 thread(s): the matmul work alone takes 4.00 ms = 0.800x" in table
    assert "graph adds 1.00 ms" in table  # dynamic, 1 thread
