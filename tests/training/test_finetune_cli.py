"""``levit-tf finetune`` end to end on the digits (subprocess), resume, and bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from levit_tf import LevitForImageClassification
from levit_tf.training.options import FinetuneOptions


def finetune(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "levit_tf.cli", "finetune", *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, tiny_config) -> Path:
    """A tiny converted model with 4 labels: finetune gives it new heads for the 10 digits.
    Seeded: the runs below (seeded too) start from the same weights in every session."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.keras"
    keras.utils.set_random_seed(0)
    LevitForImageClassification(tiny_config()).save(path)
    return path


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_finetune_digits_interrupted_then_resumed(tiny_checkpoint, tmp_path):
    out = tmp_path / "run"
    args = ["--model", str(tiny_checkpoint), "--data", "digits", "--out", str(out),
            "--batch-size", "64", "--lr", "3e-3", "--seed", "1", "--epochs", "3"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    # a real interruption: kill the run once an epoch is recorded (files are written atomically)
    process = subprocess.Popen([sys.executable, "-m", "levit_tf.cli", "finetune", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if (out / "state.json").is_file():
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    done_before = json.loads((out / "state.json").read_text())["epochs_done"]
    assert done_before >= 1

    changed = finetune(*args[:-1], "4")  # other settings than the interrupted run: refused
    assert changed.returncode == 1 and "different settings (epochs)" in changed.stderr

    resumed = finetune(*args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "done: 3 epochs" in resumed.stdout
    assert "1438 train / 359 held-out images at 32px" in resumed.stdout
    if done_before < 3:
        assert f"resumed at epoch {done_before + 1}" in resumed.stdout
    for name in ("last.keras", "best.keras", "log.csv", "curve.png", "state.json"):
        assert (out / name).is_file(), name
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = read_log(out / "log.csv")
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]  # no duplicate rows
    model = LevitForImageClassification.from_pretrained(out / "last.keras")
    assert model.config.num_labels == 10 and model.config.id2label[7] == "7"
    # the optimizer state was restored: 3 epochs x 23 steps, not (3 - resumed) x 23
    assert int(model.optimizer.iterations) == 3 * 23
    # the fast CI version of benchmarks/train_digits.py: it learns
    accuracy = [float(row["val_accuracy"]) for row in rows]
    losses = [float(row["loss"]) for row in rows]
    assert max(accuracy) > 0.3  # 10 classes: chance is 0.1
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


@pytest.mark.slow
def test_finetune_at_a_non_square_size(tiny_checkpoint, tmp_path):
    """A 32x32 checkpoint fine-tuned at 32x48: tables resized, data and model at 32x48."""
    out = tmp_path / "wide"
    args = ["--model", str(tiny_checkpoint), "--data", "digits", "--out", str(out),
            "--image-size", "32x48", "--batch-size", "64", "--lr", "3e-3", "--epochs", "1"]
    done = finetune(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1438 train / 359 held-out images at 32x48px" in done.stdout
    assert "resized 3 attention-bias tables from 32x32 to 32x48 input" in done.stderr
    model = LevitForImageClassification.from_pretrained(out / "last.keras")
    assert model.config.image_hw == (32, 48)
    assert model(np.zeros((2, 32, 48, 3), np.float32))["logits"].shape == (2, 10)
    accuracy = [float(row["val_accuracy"]) for row in read_log(out / "log.csv")]
    assert accuracy[0] > 0.15  # it learns at the new size (chance: 0.1)

    again = finetune(*args)  # same settings (the size read back from state.json): nothing to do
    assert again.returncode == 0, again.stderr[-3000:]
    assert "all 1 epochs already done" in again.stdout


@pytest.mark.parametrize("args, message", [
    (["--model", "./missing.keras", "--data", "digits"], "missing.keras: no such file"),
    (["--model", "levit-128S", "--data", "nowhere/"], "--data nowhere: no such directory"),
])
@pytest.mark.parametrize("onednn", ["0", "1"])
def test_bad_input_is_one_line_exit_1(args, message, onednn, tmp_path):
    """One line on any CPU: with oneDNN on (the default on AVX-512 VNNI / AMX CPUs) TF's C++
    start-up writes to stderr before absl logging is set up; the CLI keeps that off the
    terminal. TF_CPP_MIN_LOG_LEVEL is left unset, as a user's shell has it."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-m", "levit_tf.cli", "finetune", *args, "--epochs", "1", "--out",
         str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
        env={**env, "TF_ENABLE_ONEDNN_OPTS": onednn})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("levit-tf finetune: error:") and message in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("changes, message", [
    ({"image_size": 50}, "image size must be a positive multiple of 16"),
    ({"image_size": (32, 50)}, "image size must be a positive multiple of 16"),
    ({"distillation": "hard"}, "hard distillation needs a teacher model"),
    ({"teacher": "t.keras"}, "a teacher is only used with hard distillation"),
    ({"epochs": 0}, "epochs must be >= 1"),
])
def test_bad_options_name_the_problem(changes, message):
    options = FinetuneOptions(**{"model": "levit-128S", "data": "digits", "epochs": 1,
                                 "out": "o", **changes})
    with pytest.raises(ValueError, match=message):
        options.validate()


def test_settings_read_back_from_json_compare_equal():
    options = FinetuneOptions(model="levit-128S", data="digits", epochs=1, out="o",
                              image_size=(192, 256))
    options.validate()
    settings = options.settings()
    assert settings["image_size"] == [192, 256]
    assert json.loads(json.dumps(settings)) == settings
