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
    """tests/keras_hub/preset_worker.py: a fresh process for JAX and for PyTorch, side by
    side; TensorFlow here, in this process (fresh TensorFlow processes: test_docs.py,
    test_install.py)."""
    from tests.keras_hub import preset_worker

    root = Path(keras_hub_preset["root"])
    started = {}
    for backend in BACKENDS:
        out = root / f"run-{backend}"
        out.mkdir()
        if backend == "tensorflow":
            continue
        env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu",
               "PYTHONPATH": str(ROOT)}
        started[backend] = (out, subprocess.Popen(
            [sys.executable, "-m", "tests.keras_hub.preset_worker",
             str(keras_hub_preset["preset"]), str(root), str(out)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    runs = {}
    preset_worker.main(str(keras_hub_preset["preset"]), str(root), str(root / "run-tensorflow"))
    runs["tensorflow"] = {"out": root / "run-tensorflow",
                          **json.loads((root / "run-tensorflow" / "result.json").read_text())}
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


def cli(*args: str) -> tuple[int, str, str]:
    """``levit-tf ARGS`` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from levit_tf.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def bad_presets(preset: Path, root: Path) -> dict[str, tuple[Path, str]]:
    """{case: (a broken copy of ``preset``, the start of its one error line)}."""
    config = json.loads((preset / "config.json").read_text())
    task = json.loads((preset / "task.json").read_text())
    cases = {}
    for case in ("missing-weights", "newer-layout", "other-family"):
        bad = root / case
        shutil.copytree(preset, bad)
        cases[case] = bad
    (cases["missing-weights"] / "model.weights.h5").unlink()
    newer = json.loads(json.dumps(config))
    newer["config"]["layout_version"] = 3
    task["config"]["backbone"]["config"]["layout_version"] = 3
    (cases["newer-layout"] / "config.json").write_text(json.dumps(newer))
    (cases["newer-layout"] / "task.json").write_text(json.dumps(task))
    other = {**config, "registered_name": "keras_hub>ResNetBackbone",
             "class_name": "ResNetBackbone"}
    (cases["other-family"] / "config.json").write_text(json.dumps(other))
    return {
        "missing-weights": (cases["missing-weights"],
                            f"{cases['missing-weights'] / 'model.weights.h5'}: missing"),
        "newer-layout": (cases["newer-layout"], f"{cases['newer-layout'] / 'config.json'}: "
                         "layout_version 3 was saved by a newer levit-tf"),
        "other-family": (cases["other-family"], f"{cases['other-family'] / 'config.json'}: a "
                         "preset of keras_hub>ResNetBackbone, not a LeViT preset"),
    }


def test_cli_reads_presets_and_refuses_bad_ones_in_one_line(keras_hub_preset, tmp_path):
    """``levit-tf info|predict|convert PRESET`` read a preset like any checkpoint; a bad one is
    one line naming the file, exit 1, nothing written; once through the installed entry
    point."""
    code, out, _ = cli("info", str(keras_hub_preset["preset"]))
    assert code == 0 and "LevitForImageClassificationWithTeacher" in out
    cases = bad_presets(Path(keras_hub_preset["preset"]), tmp_path)
    for case, (bad, message) in cases.items():
        for verb in (["info", str(bad)], ["convert", str(bad), str(tmp_path / "out.keras")]):
            code, _, err = cli(*verb)
            lines = err.strip().splitlines()
            assert code == 1 and len(lines) == 1, (case, err)
            assert lines[0].startswith(f"levit-tf {verb[0]}: error: {message}"), lines[0]
    assert not (tmp_path / "out.keras").exists()
    bad, message = cases["missing-weights"]
    done = subprocess.run([str(LEVIT_TF), "info", str(bad)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"levit-tf info: error: {message}"), lines[0]


def test_cli_round_trip_preset_to_keras_file(keras_hub_preset, tmp_path):
    """A preset is a convert SOURCE too: back to a .keras file, same logits; an existing
    preset folder is not overwritten."""
    from levit_tf import LevitForImageClassificationWithTeacher

    code, _, err = cli("convert", str(keras_hub_preset["preset"]), str(tmp_path / "back.keras"))
    assert code == 0, err
    model = LevitForImageClassificationWithTeacher.from_pretrained(tmp_path / "back.keras")
    logits = np.asarray(model(np.load(keras_hub_preset["pixels"]))["logits"])
    assert errors(logits, np.load(keras_hub_preset["ours_logits"]))[1] <= TOLERANCE
    code, _, err = cli("convert", str(keras_hub_preset["hf"]), str(keras_hub_preset["preset"]),
                       "--format", "keras-hub")
    assert code == 1
    assert err.strip() == (f"levit-tf convert: error: {keras_hub_preset['preset']} exists and "
                           "is not an empty folder")


def test_backbone_only_preset(tmp_path):
    """A LevitModel (no heads) saves a backbone preset with LeViT's preprocessor; keras-hub
    builds a classifier on it with a new head; levit-tf reads it back as a LevitModel."""
    import keras_hub

    from levit_tf import LevitConfig, LevitModel
    from levit_tf.keras_hub import LevitBackbone, LevitImageClassifier, save_preset
    from levit_tf.keras_hub.presets import load_preset_model
    from levit_tf.testing.models import TINY, randomize

    model = randomize(LevitModel(LevitConfig(**{**TINY, "image_size": 64})), seed=6)
    saved = save_preset(model, tmp_path / "backbone")
    assert isinstance(saved, LevitBackbone)
    assert not (tmp_path / "backbone" / "task.json").exists()
    pixels = np.random.default_rng(7).normal(size=(2, 64, 64, 3)).astype(np.float32)
    expected = np.asarray(model(pixels)["last_hidden_state"])
    backbone = keras_hub.models.Backbone.from_preset(str(tmp_path / "backbone"))
    grid = np.asarray(backbone(pixels))
    assert grid.shape == (2, 2, 2, 24)
    assert errors(grid.reshape(2, 4, 24), expected)[1] <= TOLERANCE
    task = keras_hub.models.ImageClassifier.from_preset(str(tmp_path / "backbone"),
                                                        num_classes=5)
    assert isinstance(task, LevitImageClassifier) and task.preprocessor is not None
    back = load_preset_model(tmp_path / "backbone")
    assert isinstance(back, LevitModel)
    assert errors(back(pixels)["last_hidden_state"], expected)[1] <= TOLERANCE
