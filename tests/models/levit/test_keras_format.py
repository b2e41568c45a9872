"""The .keras format is stable: a file written by an earlier version loads and gives its logits.

``fixtures/levit_teacher_v0.keras`` was written by commit 9b7d2c8 (``fixtures/
make_levit_teacher_v0.py``), with its logits on a fixed input in ``levit_teacher_v0.npz``.
"""

from pathlib import Path

import keras
import numpy as np

from levit_tf import LevitForImageClassificationWithTeacher

FIXTURES = Path(__file__).parent / "fixtures"


def assert_same_logits(actual, expected) -> None:
    """Relative error <= 1e-5 (the parity tests' bound): the fixture's logits were computed
    with TF's Eigen kernels; with oneDNN on (the default on AVX-512 VNNI / AMX CPUs) the same
    weights round differently (measured 2.4e-6 absolute, 1.8e-6 relative). A load that maps
    any weight wrongly is off by O(1)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    error = np.max(np.abs(actual - expected)) / np.max(np.abs(expected))
    assert error <= 1e-5, f"relative logit error {error:.2e}"


def test_file_written_by_v0_loads_with_the_same_logits():
    model = keras.saving.load_model(FIXTURES / "levit_teacher_v0.keras")
    expected = np.load(FIXTURES / "levit_teacher_v0.npz")
    assert isinstance(model, LevitForImageClassificationWithTeacher)
    assert model.config.hidden_sizes == [16, 24, 32] and model.config.num_labels == 5
    out = model(expected["pixels"], training=False)
    for key in ("logits", "cls_logits", "distillation_logits"):
        assert_same_logits(out[key], expected[key])
    assert model.optimizer is not None  # the compile config came back too
    assert model.get_compile_config()["distillation"] == "none"


def test_v0_file_loads_through_from_pretrained():
    model = LevitForImageClassificationWithTeacher.from_pretrained(
        FIXTURES / "levit_teacher_v0.keras")
    expected = np.load(FIXTURES / "levit_teacher_v0.npz")
    assert_same_logits(model(expected["pixels"])["logits"], expected["logits"])
