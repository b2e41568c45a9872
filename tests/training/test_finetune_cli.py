"""``levit-tf finetune`` end to end on the digits (subprocess), resume, and bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from levit_tf import LevitForImageClassification


def finetune(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "levit_tf.cli", "finetune", *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, tiny_config) -> Path:
    """A tiny converted model with 4 labels: finetune gives it new heads for the 10 digits."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.keras"
    LevitForImageClassification(tiny_config()).save(path)
    return path


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_finetune_digits_then_resume(tiny_checkpoint, tmp_path):
    out = tmp_path / "run"
    common = ["--model", str(tiny_checkpoint), "--data", "digits", "--out", str(out),
              "--batch-size", "64", "--lr", "3e-3", "--seed", "1"]
    first = finetune(*common, "--epochs", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "done: 2 epochs" in first.stdout
    assert "1438 train / 359 held-out images at 32px" in first.stdout
    for name in ("last.keras", "best.keras", "log.csv", "curve.png", "state.json"):
        assert (out / name).is_file(), name
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = json.loads((out / "state.json").read_text())
    assert state["epochs_done"] == 2 and state["monitor"] == "val_accuracy"
    before = LevitForImageClassification.from_pretrained(out / "last.keras")
    assert before.config.num_labels == 10 and before.config.id2label[7] == "7"
    assert int(before.optimizer.iterations) == 2 * 23

    # simulate an interruption after epoch 2 of 3: the same command with --epochs 3 is a new
    # setting, so refuse; resuming needs identical settings
    changed = finetune(*common, "--epochs", "3")
    assert changed.returncode == 1
    assert "different settings (epochs)" in changed.stderr
    # rewind the state to "1 epoch done" (as if killed during epoch 2) and resume
    state["epochs_done"] = 1
    (out / "state.json").write_text(json.dumps(state))
    resumed = finetune(*common, "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed at epoch 2" in resumed.stdout
    rows = read_log(out / "log.csv")
    assert [row["epoch"] for row in rows] == ["0", "1"]  # the stale epoch-2 row was replaced
    after = LevitForImageClassification.from_pretrained(out / "last.keras")
    # the optimizer state came back (iterations continue from epoch 1, not from 0)
    assert int(after.optimizer.iterations) == 2 * 23
    # the fast CI version of benchmarks/train_digits.py: it learns
    accuracy = [float(row["val_accuracy"]) for row in rows]
    losses = [float(row["loss"]) for row in rows]
    assert max(accuracy) > 0.3  # 10 classes: chance is 0.1
    assert np.isfinite(losses).all() and losses[1] < losses[0]


@pytest.mark.parametrize("args, message", [
    (["--model", "./missing.keras", "--data", "digits"], "missing.keras: no such file"),
    (["--model", "levit-128S", "--data", "nowhere/"], "--data nowhere: no such directory"),
    (["--model", "levit-128S", "--data", "digits", "--image-size", "50"],
     "image size must be a positive multiple of 16"),
    (["--model", "levit-128S", "--data", "digits", "--distillation", "hard"],
     "hard distillation needs a teacher model"),
])
def test_bad_input_is_one_line_exit_1(args, message, tmp_path):
    done = finetune(*args, "--epochs", "1", "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("levit-tf finetune: error:") and message in lines[0]
    assert "Traceback" not in done.stderr
