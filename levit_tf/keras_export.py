"""Keras' own ``model.export(path, format=...)`` on LeViT models: the input signature and an
atomic write.

Keras exports a subclassed model from the input shapes its first call recorded; a LeViT model
knows its input from its config, (batch, H, W, 3) float32 ``pixel_values``, so it exports right
after construction, ``from_pretrained`` or ``load_model``. Single-file formats (``litert``,
``onnx``) and the ``tf_saved_model`` folder are written beside the target and renamed into
place, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from levit_tf.files import publish_mode

#: Formats written as one file / as one folder (staged, then renamed into place). Other
#: formats (``openvino`` writes an .xml and a .bin) go straight to Keras.
SINGLE_FILE_FORMATS = ("litert", "onnx")
FOLDER_FORMATS = ("tf_saved_model",)


def pixel_values_signature(image_hw: tuple[int, int], channels: int = 3) -> list[Any]:
    """``[InputSpec((None, H, W, C), float32)]``: the one positional input of a LeViT model."""
    return [keras.InputSpec(shape=(None, *image_hw, channels), dtype="float32",
                            name="pixel_values")]


def _staging_path(target: Path, folder: bool) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        staging.rmdir()  # Keras creates the folder itself
        return staging
    handle, name = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=target.suffix,
                                    dir=target.parent)
    os.close(handle)
    return Path(name)


def export_atomically(export: Callable[..., Any], filepath: str | os.PathLike, format: str,
                      verbose: bool | None = None, **kwargs: Any) -> None:
    """Runs ``export(path, format=format, **kwargs)`` (Keras' ``Model.export``) on a staging
    path beside ``filepath``, then publishes it there (umask modes, rename). A SavedModel target
    must be a new or empty folder: FileExistsError otherwise, before any work."""
    target = Path(filepath)
    folder = format in FOLDER_FORMATS
    if format not in SINGLE_FILE_FORMATS and not folder:
        export(filepath, format=format, verbose=verbose, **kwargs)
        return
    if folder and target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} exists and is not an empty folder")
    if format == "litert" and target.suffix != ".tflite":
        raise ValueError(f"{target}: a LiteRT export's file name must end in .tflite")
    if not folder and target.is_dir():
        raise IsADirectoryError(f"{target} is a folder, expected a file name")
    staging = _staging_path(target, folder)
    try:
        export(str(staging), format=format, verbose=False, **kwargs)
        publish_mode(staging)
        if folder and target.exists():
            target.rmdir()
        os.replace(staging, target)
        if verbose is not False:  # Keras' line, naming the published path
            print(f"Saved artifact at '{target}'.")
    finally:
        if staging.is_dir():
            shutil.rmtree(staging)
        elif staging.exists():
            staging.unlink()


__all__ = ["FOLDER_FORMATS", "SINGLE_FILE_FORMATS", "export_atomically",
           "pixel_values_signature"]
