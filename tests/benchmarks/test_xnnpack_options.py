"""benchmarks/xnnpack_options.py's plumbing (the timing itself is a benchmark): every option's
logits are compared with LiteRT's defaults before it is timed, a refused option is reported
with LiteRT's refusal instead of being timed, the options reach the timing workers, and the
table is the per-round arithmetic."""

from __future__ import annotations

from importlib import import_module

import numpy as np
import pytest

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.testing.models import TINY, randomize
from levit_tf.tflite import CpuOptionsRejected, TFLiteModel, export

BASE = {"xnnpack_flags": 0x3}


@pytest.fixture(scope="module")
def options_script():
    return import_module("benchmarks.xnnpack_options")


@pytest.fixture(scope="module")
def float32_file(tmp_path_factory):
    model = randomize(LevitForImageClassificationWithTeacher(LevitConfig(**TINY)), seed=3)
    return export(model, tmp_path_factory.mktemp("xnnpack_options") / "f.tflite").path


def test_check_compares_with_litert_defaults_and_reports_refusals(options_script, float32_file):
    options = {"LiteRT default": {}, "QS8 | QU8": BASE, "YNNPACK": {"enable_ynnpack": True}}
    checks = options_script.check({"float32": float32_file}, options, size=TINY["image_size"])
    assert checks[("float32", "LiteRT default")].deviation == 0.0
    assert checks[("float32", "QS8 | QU8")].same_arithmetic
    ynnpack = checks[("float32", "YNNPACK")]
    if ynnpack.error is None:  # a LiteRT build with YNNPACK: then it was run and compared
        assert np.isfinite(ynnpack.deviation)
    else:  # ai-edge-litert 2.3.0 has none: the file compiles, the option is what LiteRT refused
        assert "not with CpuOptions {'enable_ynnpack': True}" in ynnpack.error
        assert "not a loadable" not in ynnpack.error


def test_tflite_model_names_an_unknown_cpu_option(float32_file):
    with pytest.raises(CpuOptionsRejected, match=r"CpuOptions has no field 'xnnpack_flag'"):
        TFLiteModel(float32_file, cpu_options={"xnnpack_flag": 1})
    with pytest.raises(CpuOptionsRejected, match="pass num_threads as its own argument"):
        TFLiteModel(float32_file, cpu_options={"num_threads": 2})


def test_options_reach_the_timing_workers(options_script, float32_file):
    scaling = import_module("benchmarks.thread_scaling")
    files = {"default": ("tflite", float32_file), "base": ("tflite", float32_file, BASE)}
    measured = scaling.measure(files, (1,), 1, 2, warmup=1, turn_warmup=0, settle_s=0.0)
    assert measured.workers[("default", 1)]["cpu_options"] == {}
    assert measured.workers[("base", 1)]["cpu_options"] == BASE


def test_table_is_the_per_round_arithmetic(options_script):
    check = options_script.Check
    name = options_script.variant
    times = {(name("levit-tf float32", "LiteRT default"), 1): [[10.0, 11.0, 12.0], [20.0]],
             (name("levit-tf float32", "+ slinky"), 1): [[5.0], [30.0]],
             (name("levit-tf int8", "LiteRT default"), 1): [[4.0], [8.0]],
             (name("levit-tf int8", "+ slinky"), 1): [[2.0], [8.0]]}
    checks = {("levit-tf float32", "LiteRT default"): check(),
              ("levit-tf float32", "+ slinky"): check(deviation=0.5),
              ("levit-tf float32", "YNNPACK"): check(error="refused by LiteRT"),
              ("levit-tf int8", "LiteRT default"): check(),
              ("levit-tf int8", "+ slinky"): check()}
    rows = options_script.table(times, checks, [1]).splitlines()[1:]
    float_slinky, ynnpack, int8_slinky = rows[1], rows[2], rows[4]
    # float32 + slinky per round: 5 / 11 and 30 / 20 of its default (median 0.977)
    assert "0.977 [0.716-1.239]" in float_slinky and "changed (5.0e-01" in float_slinky
    assert ynnpack.endswith("does not compile: refused by LiteRT")
    # int8 + slinky: 2 / 4 and 8 / 8 of int8's default; 2 / 11 and 8 / 20 of float32's
    assert "0.750 [0.625-0.875]" in int8_slinky and "0.291 [0.236-0.345]" in int8_slinky
    assert int8_slinky.endswith("same")
