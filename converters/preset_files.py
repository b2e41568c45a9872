"""The files of a LeViT keras-hub preset directory, checked without keras-hub.

``check_preset`` reads a directory's config.json and names the one file that makes it
unusable: another family's preset (or an HF / timm checkpoint), a layout saved by a newer
levit-tf, missing weights. ``levit_tf.converters`` uses it to read presets as checkpoints, and
our classes' ``from_preset`` run it on local directories first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from levit_tf.utils.files import check_writable_dir

#: The variable layout of this package's keras-hub presets (``LevitBackbone(layout_version=)``,
#: recorded in config.json). A preset with a larger number was saved by a newer levit-tf.
LAYOUT_VERSION = 1
REGISTERED_NAME = "levit_tf>LevitBackbone"
TASK_REGISTERED_NAME = "levit_tf>LevitImageClassifier"
CONFIG_FILE, WEIGHTS_FILE, SHARDED_WEIGHTS_FILE = ("config.json", "model.weights.h5",
                                                   "model.weights.json")
TASK_FILE, TASK_WEIGHTS_FILE = "task.json", "task.weights.h5"


class PresetError(ValueError):
    """A preset directory that this package cannot load; the message names the file."""


# ----------------------------------------------------------------------------- directories
def check_preset_target(directory: str | os.PathLike) -> Path:
    """Raises PresetError unless ``directory`` can become a preset: new or an empty folder,
    its parent an existing, writable folder (checked before the conversion work)."""
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PresetError(f"{target} exists and is not an empty folder")
    if not target.parent.is_dir():
        raise PresetError(f"{target}: directory {target.parent} does not exist")
    try:
        check_writable_dir(target.parent, "preset", target)
    except ValueError as err:
        raise PresetError(str(err)) from None
    return target


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PresetError(f"{path}: missing (not a keras-hub preset directory)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PresetError(f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(data, dict):
        raise PresetError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _check_layout(path: Path, config: dict[str, Any]) -> None:
    """PresetError unless the serialized LevitBackbone ``config`` has a layout we read."""
    layout = (config.get("config") or {}).get("layout_version", 1)
    if not isinstance(layout, int) or layout > LAYOUT_VERSION:
        raise PresetError(f"{path}: layout_version {layout!r} was saved by a newer levit-tf "
                          f"(this one reads layout {LAYOUT_VERSION}); upgrade levit-tf")


def check_preset(directory: str | os.PathLike, weights: bool = True) -> dict[str, Any]:
    """Checks a local preset directory of ours and returns its config.json. PresetError, naming
    the file, for: no such directory; no / unreadable config.json; another family's preset (or
    an HF / timm checkpoint); a layout saved by a newer levit-tf; missing weights."""
    root = Path(directory)
    if not root.is_dir():
        raise PresetError(f"{root}: no such preset directory")
    config_path = root / CONFIG_FILE
    config = _read_json(config_path)
    name = config.get("registered_name")
    if name != REGISTERED_NAME:
        if "model_type" in config or "architecture" in config:
            kind = "an HF" if "model_type" in config else "a timm"
            raise PresetError(
                f"{config_path}: {kind} checkpoint config, not a keras-hub preset; convert it "
                f"with: levit-tf convert {root} OUTDIR --format keras-hub")
        raise PresetError(f"{config_path}: a preset of {name or 'an unknown class'}, not a LeViT "
                          f"preset ({REGISTERED_NAME})")
    _check_layout(config_path, config)
    has_weights = (root / WEIGHTS_FILE).is_file() or (root / SHARDED_WEIGHTS_FILE).is_file()
    if weights and not has_weights:
        raise PresetError(f"{root / WEIGHTS_FILE}: missing (the backbone weights of "
                          f"{config_path.name})")
    if (root / TASK_FILE).is_file():
        task = _read_json(root / TASK_FILE)
        backbone = ((task.get("config") or {}).get("backbone")) or {}
        if isinstance(backbone, dict) and backbone.get("registered_name") == REGISTERED_NAME:
            _check_layout(root / TASK_FILE, backbone)
        if weights and task.get("registered_name") == TASK_REGISTERED_NAME and not (
                root / TASK_WEIGHTS_FILE).is_file():
            raise PresetError(f"{root / TASK_WEIGHTS_FILE}: missing (the head weights of "
                              f"{TASK_FILE})")
    return config


def is_preset(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a keras-hub preset (a config.json naming a registered
    class), of any family; ``check_preset`` says whether it is a usable LeViT one."""
    if not str(directory) or not Path(directory).is_dir():
        return False
    path = Path(directory) / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        return isinstance(data, dict) and "registered_name" in data
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False


def check_local_preset(preset: Any, weights: bool = True) -> None:
    """``check_preset`` when ``preset`` names a local directory (a path that exists or looks
    like one); built-in names and ``hf://`` / ``kaggle://`` handles are left to keras-hub."""
    if not isinstance(preset, (str, os.PathLike)) or "://" in str(preset):
        return
    text = str(preset)
    if os.path.exists(text) or os.sep in text or text.startswith("."):
        check_preset(text, weights=weights)


__all__ = ["CONFIG_FILE", "LAYOUT_VERSION", "REGISTERED_NAME", "TASK_FILE", "TASK_WEIGHTS_FILE",
           "WEIGHTS_FILE", "PresetError", "check_local_preset", "check_preset",
           "check_preset_target", "is_preset"]
