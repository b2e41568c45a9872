"""``levit-tf verify`` decides: every mode's correct export passes, on a random-weight model and
on one trained on the real digits; an export of another model (same architecture, classes and
input size) fails in every mode; the two checks and the bound overrides do what they say."""

from __future__ import annotations

import json

import numpy as np
import pytest

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.cli import main
from levit_tf.testing.models import randomize
from levit_tf.tflite import export
from levit_tf.tflite.report import build_report
from levit_tf.tflite.verdict import (
    DECISIVE_MARGIN,
    MAX_LOGIT_ERROR,
    judge,
    logit_error,
    parse_bounds,
)

MODES = tuple(MAX_LOGIT_ERROR)


# ----------------------------------------------------------------------------- the checks

def test_an_unrelated_model_scores_about_sqrt2():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 3, (200, 10)), rng.normal(0, 3, (200, 10))
    assert logit_error(a, b) == pytest.approx(np.sqrt(2), rel=0.05)
    assert all(judge(a, b, mode).passed is False for mode in MODES)
    assert logit_error(a, a) == 0.0


def test_error_within_the_bound_passes_and_beyond_it_fails():
    rng = np.random.default_rng(1)
    reference = rng.normal(0, 2, (100, 10))
    noise = rng.normal(0, 1, reference.shape)
    for mode, bound in MAX_LOGIT_ERROR.items():
        scale = reference.std() / noise.std()
        inside = judge(reference, reference + 0.5 * bound * scale * noise, mode)
        outside = judge(reference, reference + 2 * bound * scale * noise, mode)
        assert inside.passed, (mode, inside)
        assert not outside.passed and f"> {bound:g}" in outside.reasons[0], (mode, outside)


def test_a_decisive_image_that_changes_class_fails_even_within_the_error_bound():
    reference = np.zeros((50, 4))
    reference[:, 0] = 10.0  # every image decisive for class 0 (margin 10 >> 4 x bound x std)
    logits = reference.copy()
    logits[7] = [0.0, 10.0, 0.0, 0.0]  # one image swaps its two top classes
    verdict = judge(reference, logits, "int8")
    assert verdict.logit_error < MAX_LOGIT_ERROR["int8"]
    assert verdict.decisive_images == 50 and verdict.decisive_kept == 49
    assert not verdict.passed and verdict.reasons == ["top-1 changed on 1 of 50 decisive images"]


def test_images_the_keras_model_barely_separates_are_not_decisive():
    reference = np.array([[1.0, 0.99, 0.0, -1.0], [3.0, -3.0, 0.0, 0.0]])
    bound = MAX_LOGIT_ERROR["int8"]
    threshold = DECISIVE_MARGIN * bound * reference.std()
    assert 0.01 < threshold < 3.0  # the first image is not decisive, the second is
    flipped = reference.copy()
    flipped[0, :2] = reference[0, 1::-1]  # the first image's top two classes swap
    verdict = judge(reference, flipped, "int8")
    assert verdict.decisive_images == 1 and verdict.decisive_kept == 1 and verdict.passed


def test_bound_overrides():
    assert parse_bounds(["int8=0.2", "float16=0.05"]) == {"int8": 0.2, "float16": 0.05}
    reference = np.random.default_rng(2).normal(0, 1, (40, 5))
    logits = reference + 0.25 * reference.std() * np.random.default_rng(3).normal(0, 1, (40, 5))
    assert judge(reference, logits, "int8").passed
    assert not judge(reference, logits, "int8", {"int8": 0.2}).passed
    for bad in ("int8", "int9=0.2", "int8=0", "int8=-1", "int8=x", "=0.1"):
        with pytest.raises(ValueError, match=f"--max-error {bad}: expected MODE=NUMBER"):
            parse_bounds([bad])


# ----------------------------------------------------------------------------- real exports

@pytest.fixture(scope="module")
def digits_case(trained_model, tmp_path_factory):
    """The trained digits model and a random-weight model of the same architecture, classes
    and input size, each exported in every mode (calibrated on the training digits)."""
    trained, calibration, held_out = trained_model
    other = randomize(LevitForImageClassificationWithTeacher(
        LevitConfig.from_dict(trained.config.to_dict())), seed=5)
    folder = tmp_path_factory.mktemp("verdict")
    files = {}
    for name, model in (("trained", trained), ("random", other)):
        for mode in MODES:
            files[name, mode] = export(
                model, folder / f"{name}_{mode}.tflite", mode, calibration_data=calibration,
                calibration_steps=200 if mode in ("int8", "int16x8") else None).path
    return {"trained": trained, "random": other}, files, held_out[:200], folder


@pytest.mark.slow  # the trained digits model and ten exports
def test_every_mode_passes_on_its_own_model_and_fails_on_another(digits_case):
    models, files, held_out, _ = digits_case
    rows = []
    for reference in ("trained", "random"):
        for exported in ("trained", "random"):
            for mode in MODES:
                report = build_report(files[exported, mode], models[reference], held_out,
                                      threads=(1,), latency_runs=1)
                verdict = report.verdict
                rows.append(f"{exported:>7} export vs {reference:>7} model {mode:<8} "
                            f"{verdict.logit_error:.3g} / {verdict.bound:g} "
                            f"decisive {verdict.decisive_kept}/{verdict.decisive_images} "
                            f"{'PASS' if verdict.passed else 'FAIL'}")
                assert verdict.passed == (exported == reference), rows[-1]
                if exported == reference:  # a correct export stays well inside its bound
                    assert verdict.logit_error < verdict.bound / 2, rows[-1]
    print("\n" + "\n".join(rows))


@pytest.mark.slow  # the trained digits model
def test_cli_verdict_table_json_and_exit_code(digits_case, capsys):
    models, files, _, folder = digits_case
    models["trained"].save(folder / "trained.keras")
    right, wrong = files["trained", "dynamic"], files["random", "float16"]
    code = main(["verify", str(folder / "trained.keras"), str(right), str(wrong), "--json",
                 str(folder / "v.json")])
    out, err = capsys.readouterr()
    assert code == 1
    assert "inputs: 32 seeded N(0, 1) pixel_values" in out
    assert "PASS" in out and "FAIL" in out and f"{wrong.name}: FAIL (logit error" in out
    assert err.strip().splitlines() == [err.strip()] and err.startswith(
        "levit-tf verify: error: 1 of 2 files failed: random_float16.tflite (float16: logit "
        "error")
    rows = json.loads((folder / "v.json").read_text())
    assert [row["verdict"]["passed"] for row in rows] == [True, False]
    assert rows[1]["verdict"]["bound"] == MAX_LOGIT_ERROR["float16"]

    loose = main(["verify", str(folder / "trained.keras"), str(wrong),
                  "--max-error", "float16=10"])
    capsys.readouterr()
    assert loose == 0  # a bound of 10 admits anything (and leaves no image decisive)
    assert main(["verify", str(folder / "trained.keras"), str(right)]) == 0
    bad = main(["verify", str(folder / "trained.keras"), str(right), "--max-error", "int8=no"])
    assert bad == 1 and "--max-error int8=no: expected MODE=NUMBER" in capsys.readouterr().err
    # calibrated files are judged on images only (noise leaves their calibrated ranges)
    int8 = main(["verify", str(folder / "trained.keras"), str(files["trained", "int8"])])
    assert int8 == 1 and capsys.readouterr().err.strip().endswith(
        "trained_int8.tflite is int8: its activation ranges were calibrated on images, so "
        "verify needs --images (held-out images) to judge it")
