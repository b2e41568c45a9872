"""``levit-tf convert ... --format keras-hub`` and keras-hub's own ``from_preset`` in a fresh
process after ``import levit_tf``, on the TensorFlow, JAX and PyTorch backends: our classes,
logits within 1e-5 (relative) of ``LevitForImageClassificationWithTeacher`` on the same
checkpoint and of PyTorch (HF's model, and HF's PIL processor + model for raw photos).
Bad presets: one error naming the file, from the Python API and the CLI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.keras_hub.conftest import LEVIT_TF, ROOT, SKIP_REASON

pytest.importorskip("keras_hub", reason=SKIP_REASON)

BACKENDS = ("tensorflow", "jax", "torch")
TOLERANCE = 1e-5  # relative: max |ours - reference| / max |reference|
CLASSES = {"ImageClassifier": "LevitImageClassifier", "Backbone": "LevitBackbone",
           "ImageClassifierPreprocessor": "LevitImageClassifierPreprocessor",
           "ImageConverter": "LevitImageConverter"}


def errors(actual: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(max abs, relative) error."""
    actual, reference = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    assert actual.shape == reference.shape, (actual.shape, reference.shape)
    worst = float(np.max(np.abs(actual - reference)))
    return worst, worst / float(np.max(np.abs(reference)))


@pytest.fixture(scope="module")
def backend_runs(keras_hub_preset) -> dict[str, dict[str, Any]]:
    """One fresh process per backend, side by side (tests/keras_hub/preset_worker.py)."""
    root = Path(keras_hub_preset["root"])
    started = {}
    for backend in BACKENDS:
        out = root / f"run-{backend}"
        out.mkdir()
        env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu",
               "PYTHONPATH": str(ROOT)}
        started[backend] = (out, subprocess.Popen(
            [sys.executable, "-m", "tests.keras_hub.preset_worker",
             str(keras_hub_preset["preset"]), str(root), str(out)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    runs = {}
    for backend, (out, process) in started.items():
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, f"{backend}: {stderr[-3000:]}"
        runs[backend] = {"out": out, **json.loads((out / "result.json").read_text())}
    return runs


def test_cli_writes_a_keras_hub_preset(keras_hub_preset):
    done = keras_hub_preset["convert"]
    assert done.returncode == 0, done.stderr
    assert "(keras-hub preset): LevitForImageClassificationWithTeacher" in done.stdout
    files = sorted(p.name for p in Path(keras_hub_preset["preset"]).iterdir())
    assert files == ["config.json", "image_converter.json", "metadata.json", "model.weights.h5",
                     "preprocessor.json", "task.json", "task.weights.h5"]
    config = json.loads((Path(keras_hub_preset["preset"]) / "config.json").read_text())
    assert config["registered_name"] == "levit_tf>LevitBackbone"
    metadata = json.loads((Path(keras_hub_preset["preset"]) / "metadata.json").read_text())
    assert metadata["tasks"] == ["ImageClassifier"]
    print(f"\nlevit-tf convert --format keras-hub: {keras_hub_preset['convert_seconds']:.1f} s")


@pytest.mark.parametrize("backend", BACKENDS)
def test_from_preset_in_a_fresh_process(backend_runs, keras_hub_preset, backend):
    """keras-hub's base classes return ours; logits, features and the whole pipeline (photos
    through the preset's preprocessor) match our TF model and PyTorch."""
    run = backend_runs[backend]
    assert run["device"]["backend"] == backend
    assert run["classes"] == CLASSES
    rows = []
    for output, ours, torch in (("logits", "ours_logits", "torch_logits"),
                                ("features", "ours_features", "torch_features"),
                                ("pipeline_logits", "ours_pipeline_logits",
                                 "torch_pipeline_logits")):
        actual = np.load(run["out"] / f"{output}.npy")
        if output == "features":  # (B, h, w, C) grid -> HF's tokens (B, h * w, C)
            actual = actual.reshape(actual.shape[0], -1, actual.shape[-1])
        for name, reference in (("ours", ours), ("pytorch", torch)):
            worst, relative = errors(actual, np.load(keras_hub_preset[reference]))
            rows.append(f"{backend:10s} {output:16s} vs {name:8s} max abs {worst:.2e} "
                        f"relative {relative:.2e}")
            assert relative <= TOLERANCE, rows[-1]
    print("\n" + "\n".join(rows) + f"\n{backend}: worker {run['seconds']} s")


def test_python_api_names_the_file(keras_hub_preset, tmp_path):
    import keras_hub

    from levit_tf.keras_hub import LevitBackbone, LevitImageClassifier, PresetError

    preset = Path(keras_hub_preset["preset"])
    missing = tmp_path / "missing"
    shutil.copytree(preset, missing)
    (missing / "model.weights.h5").unlink()
    with pytest.raises(PresetError, match=re.escape(f"{missing}/model.weights.h5: missing")):
        LevitImageClassifier.from_preset(str(missing))
    newer = tmp_path / "newer"  # as a newer levit-tf would write it: both backbone configs
    shutil.copytree(preset, newer)
    config = json.loads((newer / "config.json").read_text())
    config["config"]["layout_version"] = 2
    (newer / "config.json").write_text(json.dumps(config))
    with pytest.raises(PresetError, match=re.escape(
            f"{newer}/config.json: layout_version 2 was saved by a newer levit-tf")):
        LevitBackbone.from_preset(str(newer))
    task = json.loads((newer / "task.json").read_text())
    task["config"]["backbone"]["config"]["layout_version"] = 2
    (newer / "task.json").write_text(json.dumps(task))
    # keras-hub's own base class builds our backbone from task.json: refused there too
    with pytest.raises(ValueError, match=re.escape(
            "LevitBackbone: layout_version 2 (the preset's config.json / task.json) was saved "
            "by a newer levit-tf")):
        keras_hub.models.ImageClassifier.from_preset(str(newer))
    (newer / "config.json").write_text((preset / "config.json").read_text())
    with pytest.raises(PresetError, match=re.escape(f"{newer}/task.json: layout_version 2")):
        LevitImageClassifier.from_preset(str(newer))
    other = tmp_path / "other"
    keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64],
        stackwise_num_blocks=[1], stackwise_num_strides=[1], block_type="basic_block",
        image_shape=(32, 32, 3)).save_to_preset(str(other))
    other_message = "a preset of keras_hub>ResNetBackbone, not a LeViT"
    with pytest.raises(PresetError, match=re.escape(other_message)):
        LevitImageClassifier.from_preset(str(other))


@pytest.mark.parametrize("case", ["missing-weights", "newer-layout", "other-family", "hf-dir"])
def test_cli_reads_presets_and_refuses_bad_ones_in_one_line(keras_hub_preset, tmp_path, case):
    """``levit-tf info PRESET`` reads a preset like any checkpoint; a bad one is one line
    naming the file, exit 1."""
    preset = Path(keras_hub_preset["preset"])
    bad = tmp_path / case
    if case == "hf-dir":  # an HF checkpoint is no preset: read as a checkpoint (works)
        bad = Path(keras_hub_preset["hf"])
    else:
        shutil.copytree(preset, bad)
    expected = {
        "missing-weights": f"{bad / 'model.weights.h5'}: missing",
        "newer-layout": f"{bad / 'config.json'}: layout_version 3 was saved by a newer levit-tf",
        "other-family": f"{bad / 'config.json'}: a preset of keras_hub>ResNetBackbone, not a "
                        "LeViT preset",
    }
    config = json.loads((preset / "config.json").read_text())
    if case == "missing-weights":
        (bad / "model.weights.h5").unlink()
    elif case == "newer-layout":
        config["config"]["layout_version"] = 3
        (bad / "config.json").write_text(json.dumps(config))
        task = json.loads((bad / "task.json").read_text())
        task["config"]["backbone"]["config"]["layout_version"] = 3
        (bad / "task.json").write_text(json.dumps(task))
    elif case == "other-family":
        config.update(registered_name="keras_hub>ResNetBackbone", class_name="ResNetBackbone")
        (bad / "config.json").write_text(json.dumps(config))
    done = subprocess.run([str(LEVIT_TF), "info", str(bad)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    if case == "hf-dir":
        assert done.returncode == 0 and "LevitForImageClassificationWithTeacher" in done.stdout
        return
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"levit-tf info: error: {expected[case]}"), lines[0]


def test_cli_round_trip_preset_to_keras_file(keras_hub_preset, tmp_path):
    """A preset is a convert SOURCE too: back to a .keras file, same logits."""
    from levit_tf import LevitForImageClassificationWithTeacher

    done = subprocess.run([str(LEVIT_TF), "convert", str(keras_hub_preset["preset"]),
                           str(tmp_path / "back.keras")], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    model = LevitForImageClassificationWithTeacher.from_pretrained(tmp_path / "back.keras")
    logits = np.asarray(model(np.load(keras_hub_preset["pixels"]))["logits"])
    assert errors(logits, np.load(keras_hub_preset["ours_logits"]))[1] <= TOLERANCE
    taken = subprocess.run([str(LEVIT_TF), "convert", str(keras_hub_preset["hf"]),
                            str(keras_hub_preset["preset"]), "--format", "keras-hub"],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert taken.returncode == 1
    assert taken.stderr.strip() == (f"levit-tf convert: error: {keras_hub_preset['preset']} "
                                    "exists and is not an empty folder")
