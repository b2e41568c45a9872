"""`make demo` on a small setting: fine-tune, SavedModel, TFLite x3, one table, the plots."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_make_demo_quick(tmp_path):
    result = subprocess.run(["make", "-s", "demo", f"DEMO_ARGS=--quick --out {tmp_path}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout[result.stdout.index("model    "):]
    for row in ("Keras (float32)", "SavedModel", "TFLite float32", "TFLite float16",
                "TFLite int8"):
        assert row in table
    float32_row = next(line for line in table.splitlines() if line.startswith("TFLite float32"))
    assert "100.00%" in float32_row  # float32 TFLite agrees with Keras on every held-out image
    for name in ("training_curve.png", "quantization_error.png", "levit_int8.tflite",
                 "savedmodel/1/saved_model.pb"):
        assert (tmp_path / name).is_file(), name
