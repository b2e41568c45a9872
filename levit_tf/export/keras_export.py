"""Keras' own ``model.export(path, format=...)`` on LeViT models: the input signature, the
formats each backend can write, and an atomic write.

Keras exports a subclassed model from the input shapes its first call recorded; a LeViT model
knows its input from its config, (batch, H, W, 3) float32 ``pixel_values``, so it exports right
after construction, ``from_pretrained`` or ``load_model``. Every format is written beside the
target and renamed into place (OpenVINO's .xml and its .bin together), so a failed export leaves
nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from levit_tf.utils.files import publish_mode

#: What Keras' exporters write for a LeViT model on each backend (tests/export/
#: test_keras_export.py checks each one and each refusal). On JAX, Keras' LiteRT and ONNX
#: exporters need TensorFlow's or other packages' converters and its OpenVINO export meets an
#: XlaCallModule op OpenVINO cannot convert; on PyTorch, torch.export and the ONNX / OpenVINO
#: tracers fail on the model's dict outputs and ops.
BACKEND_FORMATS: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tf_saved_model", "litert", "onnx", "openvino"),
    "jax": ("tf_saved_model",),
    "torch": (),
}
#: The formats handled here; others (Keras' ``torch``, unknown names) go to Keras as they are.
KERAS_FORMATS = BACKEND_FORMATS["tensorflow"]
SUFFIXES = {"litert": ".tflite", "onnx": ".onnx", "openvino": ".xml"}


def pixel_values_signature(image_hw: tuple[int, int], channels: int = 3) -> list[Any]:
    """``[InputSpec((None, H, W, C), float32)]``: the one positional input of a LeViT model."""
    return [keras.InputSpec(shape=(None, *image_hw, channels), dtype="float32",
                            name="pixel_values")]


def check_format(format: str, backend: str | None = None) -> None:
    """ValueError (one line) when ``backend`` (default: Keras' current one) cannot export a
    LeViT model as ``format``; formats Keras does not know are left to Keras' own message."""
    backend = backend or keras.backend.backend()
    if format not in KERAS_FORMATS or format in BACKEND_FORMATS.get(backend, ()):
        return
    usable = BACKEND_FORMATS.get(backend, ())
    there = f"only {', '.join(map(repr, usable))} works there" if usable else "none works there"
    raise ValueError(
        f"format={format!r} does not export a LeViT model on the {backend} backend ({there}); "
        f"load the model under KERAS_BACKEND=tensorflow, which exports "
        f"{', '.join(map(repr, KERAS_FORMATS))}")


def _produced(path: Path, format: str) -> list[Path]:
    """The files Keras writes for ``path`` (OpenVINO: the .xml and its .bin)."""
    return [path, path.with_suffix(".bin")] if format == "openvino" else [path]


def export_atomically(export: Callable[..., Any], filepath: str | os.PathLike, format: str,
                      verbose: bool | None = None, **kwargs: Any) -> None:
    """Runs ``export(path, format=format, **kwargs)`` (Keras' ``Model.export``) into a staging
    folder beside ``filepath``, then publishes the result there (umask modes, rename). A
    SavedModel target must be a new or empty folder, a file target not a folder, with the
    format's suffix: ValueError / FileExistsError before any work."""
    check_format(format)
    if format not in KERAS_FORMATS:  # Keras' own "Unrecognized format" message
        export(filepath, format=format, verbose=verbose, **kwargs)
        return
    target = Path(filepath)
    folder = format == "tf_saved_model"
    if folder and target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} exists and is not an empty folder")
    suffix = SUFFIXES.get(format)
    if suffix and target.suffix != suffix:
        raise ValueError(f"{target}: a {format} export's file name must end in {suffix}")
    if not folder and target.is_dir():
        raise IsADirectoryError(f"{target} is a folder, expected a file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        staged = staging / target.name
        export(str(staged), format=format, verbose=False, **kwargs)
        for produced in _produced(staged, format):
            publish_mode(produced)
        if folder and target.exists():
            target.rmdir()
        for produced in _produced(staged, format):
            os.replace(produced, target.parent / produced.name)
        if verbose is not False:  # Keras' line, naming the published path
            print(f"Saved artifact at '{target}'.")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


__all__ = ["BACKEND_FORMATS", "KERAS_FORMATS", "check_format", "export_atomically",
           "pixel_values_signature"]
