"""What ``evaluate`` reads, named and checked without TensorFlow (fast CLI errors).

A data source is ``DIR`` (``DIR/<class>/<image>``; with ``DIR/train`` and ``DIR/val`` (or
``validation``), the layout ``finetune`` also reads, the held-out ``DIR/val``), ``tfds:NAME`` or
``tfds:NAME:SPLIT`` (default: the validation split, else test, else the last 20% of train, as
``finetune`` holds out), or ``digits`` (the 20% of scikit-learn's digits ``finetune --data digits``
holds out, seed 0). A model is a ``.tflite`` file, a SavedModel folder (``saved_model.pb``
inside) or anything ``levit-tf convert`` reads (a ``.keras`` file above all).
"""

from __future__ import annotations

import os
from pathlib import Path

from levit_tf.utils.optional import require

TFDS_PREFIX = "tfds:"
DIGITS = "digits"
#: Held-out folder names beside ``train/`` (as ``finetune`` reads them).
VAL_FOLDERS = ("val", "validation")
#: Fraction of the data ``finetune`` holds out by default (and its seed): ``digits`` and a
#: TFDS dataset without a validation / test split are evaluated on that part.
HELD_OUT_FRACTION = 0.2
HELD_OUT_SEED = 0

KERAS, SAVEDMODEL, TFLITE = "keras", "savedmodel", "tflite"
ACCELERATORS = ("cpu", "gpu")


class EvaluationError(ValueError):
    """A problem with what ``evaluate`` was given (one line naming the file, folder or class)."""


def check_options(accelerator: str, num_threads: int, limit: int | None) -> None:
    """Raises EvaluationError for an option out of range (before any work)."""
    if accelerator not in ACCELERATORS:
        raise EvaluationError(f"accelerator must be one of {', '.join(ACCELERATORS)}, got "
                              f"{accelerator!r}")
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise EvaluationError(f"--threads must be an integer >= 1, got {num_threads!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise EvaluationError(f"--limit must be an integer >= 1, got {limit!r}")


def model_kind(path: str | os.PathLike) -> str:
    """'tflite' (a .tflite file), 'savedmodel' (a folder with saved_model.pb) or 'keras'
    (anything else: .keras, a checkpoint, an HF folder or hub id, loaded as a Keras model)."""
    path = Path(path)
    if path.suffix == ".tflite":
        return TFLITE
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return SAVEDMODEL
    return KERAS


def check_model(path: str | os.PathLike) -> None:
    """Raises EvaluationError for a local model that cannot be one: a missing .tflite or .keras
    file, a folder that is neither a SavedModel nor an HF model folder."""
    path = Path(path)
    if path.suffix in (".tflite", ".keras") and not path.is_file():
        what = "is a folder" if path.is_dir() else "no such file"
        raise EvaluationError(f"{path}: {what}")
    if path.is_dir() and model_kind(path) == KERAS and not (path / "config.json").is_file():
        raise EvaluationError(f"{path}: a folder with neither saved_model.pb (a SavedModel) nor "
                              "config.json (an HF model folder)")


def class_folder_root(root: Path) -> Path:
    """The folder whose subfolders are the classes: ``root``, or its held-out ``val`` /
    ``validation`` folder when it holds ``train/`` beside one."""
    if (root / "train").is_dir():
        for name in VAL_FOLDERS:
            if (root / name).is_dir():
                return root / name
    return root


def class_folders(root: Path) -> list[Path]:
    """The class subfolders (hidden ones skipped), sorted by name as ``finetune`` numbers them."""
    return sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
                  key=lambda d: d.name)


def check_data(spec: str) -> None:
    """Raises EvaluationError (or MissingDependency) for a source that cannot give labelled
    images: a missing folder, one without class subfolders, an empty class folder, a missing
    optional package. Reads no image (the loader checks those)."""
    if spec == DIGITS:
        require("sklearn", "--data digits")
        return
    if spec.startswith(TFDS_PREFIX):
        require("tensorflow_datasets", f"--data {spec}")
        if not spec[len(TFDS_PREFIX):].split(":")[0]:
            raise EvaluationError(f"--data {spec}: expected tfds:NAME or tfds:NAME:SPLIT")
        return
    root = Path(spec)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "no such folder"
        raise EvaluationError(f"--data {spec}: {what} (expected DIR/<class>/<image>, "
                              f"tfds:NAME[:SPLIT] or {DIGITS})")
    root = class_folder_root(root)
    folders = class_folders(root)
    if not folders:
        raise EvaluationError(f"--data {spec}: no class subfolders in {root} (expected "
                              "DIR/<class>/<image>)")
    for folder in folders:
        if not any(p.is_file() and not any(part.startswith(".") for part in
                                           p.relative_to(folder).parts)
                   for p in folder.rglob("*")):
            raise EvaluationError(f"--data {spec}: class folder {folder} holds no files")


__all__ = ["ACCELERATORS", "DIGITS", "HELD_OUT_FRACTION", "HELD_OUT_SEED", "KERAS",
           "SAVEDMODEL", "TFDS_PREFIX", "TFLITE", "VAL_FOLDERS", "EvaluationError", "check_data",
           "check_model", "check_options", "class_folder_root", "class_folders", "model_kind"]
