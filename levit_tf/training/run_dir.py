"""A fine-tuning run's output directory: checkpoints, CSV log, curve, and the state to resume.

Layout of ``OUT``::

    last.keras   the model (and optimizer state) after the latest finished epoch
    best.keras   the model at the best value of the monitored metric so far
    log.csv      one row per epoch: epoch, loss, accuracy, val_loss, val_accuracy, ...
    curve.png    the curves of log.csv
    state.json   {"epochs_done", "best", "best_epoch", "monitor", "settings"}

After each epoch the files are written in that order, each atomically (temporary file, then
rename), so an interruption at any point leaves a consistent run: ``state.json`` names the
epochs that ``last.keras`` holds, and rows of later epochs in ``log.csv`` are dropped on resume.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import keras

from levit_tf.training.curves import plot_curves
from levit_tf.utils.files import check_writable_dir
from levit_tf.utils.optional import install_hint, is_available

STATE_FILE = "state.json"
LAST_MODEL = "last.keras"
BEST_MODEL = "best.keras"
LOG_FILE = "log.csv"
CURVE_FILE = "curve.png"


@dataclasses.dataclass
class RunState:
    """Progress of a run: finished epochs, best monitored value, and the run's settings."""

    epochs_done: int = 0
    best: float | None = None
    best_epoch: int | None = None
    monitor: str = "val_accuracy"
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)


class RunDirectory:
    """The files of one run under ``root`` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.state_path = self.root / STATE_FILE
        self.last = self.root / LAST_MODEL
        self.best = self.root / BEST_MODEL
        self.log = self.root / LOG_FILE
        self.curve = self.root / CURVE_FILE

    def load_state(self) -> RunState | None:
        """The saved state, or None for a new run. Raises ValueError for a damaged one."""
        if not self.state_path.is_file():
            return None
        try:
            state = RunState(**json.loads(self.state_path.read_text()))
        except (ValueError, TypeError) as err:
            raise ValueError(f"{self.state_path}: not a valid run state ({err})") from None
        if state.epochs_done > 0 and not self.last.is_file():
            raise ValueError(f"{self.state_path} says {state.epochs_done} epochs are done but "
                             f"{self.last} is missing")
        return state

    def prepare(self) -> None:
        """Creates ``root``; refuses a non-empty directory that holds no run."""
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"{self.root} exists and is not a directory")
        if self.root.is_dir() and any(self.root.iterdir()) and not self.state_path.is_file():
            raise ValueError(f"{self.root} is not empty and holds no run ({STATE_FILE}); "
                             "choose a new or empty output directory")
        self.root.mkdir(parents=True, exist_ok=True)
        check_writable_dir(self.root, "--out")  # now, not after the first epoch

    def save_state(self, state: RunState) -> None:
        _atomic_write_text(self.state_path, json.dumps(dataclasses.asdict(state), indent=2))

    def save_model(self, model: keras.Model, path: Path) -> None:
        temporary = path.with_name(f".{path.stem}.tmp.keras")
        try:
            model.save(temporary)
            os.replace(temporary, path)
        finally:  # interrupted (Ctrl-C) or failed: no half-written file left behind
            if temporary.exists():
                temporary.unlink()

    def remove_if_empty(self) -> None:
        """Removes ``root`` when it holds nothing (a run that failed before its first epoch
        was saved), so that no empty output folder is left behind."""
        if self.root.is_dir() and not any(self.root.iterdir()):
            self.root.rmdir()

    def trim_log(self, epochs_done: int) -> None:
        """Drops log rows of epochs after ``epochs_done`` (written before an interruption)."""
        if not self.log.is_file():
            return
        with open(self.log, newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            return
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) < epochs_done]
        _atomic_write_rows(self.log, kept)

    def append_log(self, epoch: int, logs: dict[str, float]) -> None:
        columns = ["epoch", *sorted(logs)]
        rows: list[list[str]] = []
        if self.log.is_file():
            with open(self.log, newline="") as handle:
                rows = list(csv.reader(handle))
        if rows and rows[0] != columns:  # a metric appeared or vanished: widen the header
            old = rows[0]
            columns = ["epoch", *sorted(set(old[1:]) | set(columns[1:]))]
            rows = [columns] + [[dict(zip(old, r, strict=False)).get(c, "") for c in columns]
                                for r in rows[1:]]
        if not rows:
            rows = [columns]
        values = {"epoch": str(epoch), **{k: f"{float(v):.6g}" for k, v in logs.items()}}
        rows.append([values.get(c, "") for c in columns])
        _atomic_write_rows(self.log, rows)


class RunCheckpoint(keras.callbacks.Callback):
    """After each epoch: log row, ``last.keras``, ``best.keras`` if improved, state, curve.

    ``monitor`` is maximized if it contains "acc", else minimized. Also measures training
    throughput: ``epoch_seconds`` holds each epoch's training time (validation excluded).
    """

    def __init__(self, run: RunDirectory, state: RunState, title: str = "") -> None:
        super().__init__()
        self.run, self.state, self.title = run, state, title
        self.epoch_seconds: list[float] = []
        self._start = 0.0
        self._train_seconds: float | None = None
        self._told_no_plots = False

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.state.best is None:
            return True
        maximize = "acc" in self.state.monitor
        return value > self.state.best if maximize else value < self.state.best

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()
        self._train_seconds = None

    def on_test_begin(self, logs: dict | None = None) -> None:
        if self._train_seconds is None:
            self._train_seconds = time.perf_counter() - self._start

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        self.epoch_seconds.append(self._train_seconds if self._train_seconds is not None
                                  else time.perf_counter() - self._start)
        self.run.append_log(epoch, logs)
        self.run.save_model(self.model, self.run.last)
        value = logs.get(self.state.monitor)
        if value is not None and self.improved(float(value)):
            self.state.best, self.state.best_epoch = float(value), epoch + 1
            self.run.save_model(self.model, self.run.best)
        self.state.epochs_done = epoch + 1
        self.run.save_state(self.state)
        if is_available("matplotlib"):
            plot_curves(self.run.log, self.run.curve, self.title)
        elif not self._told_no_plots:
            self._told_no_plots = True
            print(f"levit-tf: {self.run.curve.name} not drawn: it needs "
                  f"{install_hint('matplotlib')}", file=sys.stderr)


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _atomic_write_rows(path: Path, rows: list[list[str]]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "w", newline="") as handle:
            csv.writer(handle).writerows(rows)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


__all__ = ["RunCheckpoint", "RunDirectory", "RunState"]
