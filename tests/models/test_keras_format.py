"""The .keras format is stable: a file written by an earlier version loads and gives its logits.

``fixtures/levit_teacher_v0.keras`` was written by commit 9b7d2c8 (``fixtures/
make_levit_teacher_v0.py``), with its logits on a fixed input in ``levit_teacher_v0.npz``.
"""

from pathlib import Path

import keras
import numpy as np

from levit_tf import LevitForImageClassificationWithTeacher

FIXTURES = Path(__file__).parent / "fixtures"


def test_file_written_by_v0_loads_with_the_same_logits():
    model = keras.saving.load_model(FIXTURES / "levit_teacher_v0.keras")
    expected = np.load(FIXTURES / "levit_teacher_v0.npz")
    assert isinstance(model, LevitForImageClassificationWithTeacher)
    assert model.config.hidden_sizes == [16, 24, 32] and model.config.num_labels == 5
    out = model(expected["pixels"], training=False)
    for key in ("logits", "cls_logits", "distillation_logits"):
        np.testing.assert_allclose(np.asarray(out[key]), expected[key], rtol=0, atol=1e-6)
    assert model.optimizer is not None  # the compile config came back too
    assert model.get_compile_config()["distillation"] == "none"


def test_v0_file_loads_through_from_pretrained():
    model = LevitForImageClassificationWithTeacher.from_pretrained(
        FIXTURES / "levit_teacher_v0.keras")
    expected = np.load(FIXTURES / "levit_teacher_v0.npz")
    np.testing.assert_allclose(np.asarray(model(expected["pixels"])["logits"]),
                               expected["logits"], rtol=0, atol=1e-6)
