"""Each artefact a user might ship, loaded with its labels and run the way it is deployed.

- Keras (``.keras`` or any ``levit-tf convert`` source): normalized float32 pixel_values from the
  exact eval transform, one image per call through a ``tf.function`` at batch 1 -> logits.
- SavedModel (``levit-tf export-savedmodel``): the encoded image bytes through its
  ``serve_images`` signature, so its own in-graph decode and eval transform are what runs ->
  probabilities. Labels: its ``assets.extra/labels.txt`` (older exports: the label table that
  signature carries).
- .tflite (every ``export-tflite`` mode): LiteRT's CompiledModel on the CPU (XNNPACK) or the GPU,
  batch 1, fed what the file was exported for (normalized float32, or raw RGB uint8 for
  ``--uint8-input`` files: ``to_input_domain``) -> dequantized logits. Labels: the file's
  metadata, else its ``<name>.labels.txt``.

``run`` takes one image (pixels (H, W, 3) or encoded bytes) and returns its scores (L,).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from levit_tf.evaluation.sources import (
    KERAS,
    SAVEDMODEL,
    TFLITE,
    EvaluationError,
    check_model,
    model_kind,
)
from levit_tf.utils.labels import ordered_labels

#: Where ``levit-tf export-savedmodel`` writes the class names (TF Serving's folder for files
#: beside the graph).
LABELS_FILE = "assets.extra/labels.txt"


def size_on_disk(path: Path) -> int | None:
    """Bytes of a file, or of every file under a folder; None when nothing is there (a hub
    id)."""
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return None


class Artefact:
    """One model file: ``labels`` (L,) names, ``image_size`` (H, W) of the pixels it takes
    (None: it takes encoded bytes), ``run(one image) -> scores (L,)``."""

    kind: str
    variant: str  # float32, int8, ... (a .tflite's mode; a Keras model's dtype policy)
    input: str  # what one call takes
    device: str  # what runs it
    labels: list[str]
    image_size: tuple[int, int] | None

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        self.size_bytes = size_on_disk(Path(path))

    def inputs(self, encoded: Sequence[bytes], pixels: np.ndarray | None) -> Sequence[Any]:
        """What ``run`` takes for each image: from the encoded bytes, or their eval-transform
        pixels (N, H, W, 3) at ``image_size``."""
        return pixels

    def run(self, image: Any) -> np.ndarray:
        raise NotImplementedError


class KerasArtefact(Artefact):
    kind = KERAS
    input = "float32 pixels"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        from levit_tf.converters import ConversionError, load_pretrained
        from levit_tf.models.levit.modeling_levit import LevitForImageClassification

        try:
            model = load_pretrained(path)
        except (ConversionError, FileNotFoundError) as err:
            raise EvaluationError(str(err)) from None
        if not isinstance(model, LevitForImageClassification) or not model.heads():
            raise EvaluationError(f"{path}: holds a {type(model).__name__}, not a classifier")
        config = model.config
        self.labels = _labels(config.id2label, config.num_labels, self.path)
        self.image_size = tuple(config.image_hw)
        self.variant = model.dtype_policy.name
        self.device = "TensorFlow " + ("GPU" if tf.config.list_logical_devices("GPU") else "CPU")
        spec = tf.TensorSpec((1, *self.image_size, config.num_channels), tf.float32)
        self._logits = tf.function(lambda x: model(x, training=False)["logits"],
                                   input_signature=[spec])

    def run(self, image: np.ndarray) -> np.ndarray:
        return np.asarray(self._logits(image[None]), np.float32)[0]


class SavedModelArtefact(Artefact):
    kind = SAVEDMODEL
    input = "encoded image"
    variant = "serve_images"
    image_size = None

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        try:
            loaded = tf.saved_model.load(self.path)
        except (OSError, ValueError, tf.errors.OpError) as err:
            raise EvaluationError(f"{path}: not a loadable SavedModel "
                                  f"({str(err).splitlines()[0]})") from None
        if "serve_images" not in loaded.signatures:
            raise EvaluationError(f"{path}: a SavedModel without the serve_images signature "
                                  f"(has {', '.join(loaded.signatures) or 'none'}); export it "
                                  "with levit-tf export-savedmodel")
        self._loaded = loaded  # keeps the variables alive
        self._serve = loaded.signatures["serve_images"]
        outputs = self._serve.structured_outputs
        if "probabilities" not in outputs:
            raise EvaluationError(f"{path}: its serve_images signature has no 'probabilities' "
                                  f"output (has {', '.join(outputs)})")
        self.labels = savedmodel_labels(Path(self.path), loaded, self._serve)
        self.device = "TensorFlow " + ("GPU" if tf.config.list_logical_devices("GPU") else "CPU")

    def inputs(self, encoded: Sequence[bytes], pixels: np.ndarray | None) -> Sequence[bytes]:
        return encoded

    def run(self, image: bytes) -> np.ndarray:
        return self._serve(images=tf.constant([image]))["probabilities"].numpy()[0]


def read_label_lines(path: Path) -> list[str]:
    """A labels file as the exporters write it: UTF-8, one label per line, each ended by \\n."""
    text = path.read_text(encoding="utf-8")
    return text.removesuffix("\n").split("\n") if text else []


def savedmodel_labels(path: Path, loaded: Any, serve: Any) -> list[str]:
    """The class names of a levit-tf SavedModel: its ``assets.extra/labels.txt`` (one per line),
    or for an export made before that file existed, the one string table of the number of
    classes that ``serve_images`` captures (its ``top_k_labels`` come from it)."""
    labels_file = Path(path) / LABELS_FILE
    if labels_file.is_file():
        return read_label_lines(labels_file)
    classes = serve.structured_outputs["probabilities"].shape[-1]
    tables = [t for t in serve.captured_inputs
              if t.dtype == tf.string and t.shape.rank == 1 and t.shape[0] == classes]
    if len(tables) != 1:
        raise EvaluationError(f"{path}: no labels (no {LABELS_FILE}, and no single "
                              "label table in serve_images); re-export it with levit-tf "
                              "export-savedmodel")
    return [label.decode() for label in tables[0].numpy()]


class TFLiteArtefact(Artefact):
    kind = TFLITE

    def __init__(self, path: str | os.PathLike, accelerator: str = "cpu",
                 num_threads: int = 1) -> None:
        super().__init__(path)
        from levit_tf.tflite import TFLiteModel, labels_sidecar
        from levit_tf.utils.native_logs import capture_native_stderr, capture_native_stdout

        try:  # LiteRT's INFO / WARNING lines of a GPU set-up; failures raise with the reason
            with capture_native_stdout(), capture_native_stderr():
                self.model = TFLiteModel(path, num_threads=num_threads, accelerator=accelerator)
        except (ValueError, FileNotFoundError) as err:
            raise EvaluationError(str(err)) from None
        metadata = self.model.metadata
        outputs = int(self.model.output["shape"][-1])
        sidecar = labels_sidecar(path)
        if metadata.get("id2label"):
            self.labels = _labels(self.model.id2label, None, self.path)
        elif sidecar.is_file():
            self.labels = read_label_lines(sidecar)
        else:
            raise EvaluationError(f"{path}: no labels (no levit_tf metadata in the file and no "
                                  f"{sidecar.name} beside it)")
        if len(self.labels) != outputs:
            raise EvaluationError(f"{path}: {outputs} outputs but {len(self.labels)} labels")
        self.image_size = tuple(self.model.input_shape[1:3])
        self.variant = metadata.get("quantization", "unknown")
        if metadata.get("weight_rounding") == "gptq":
            self.variant += " gptq"
        dtype = np.dtype(self.model.input["dtype"]).name
        self.input = f"{dtype} {'pixels' if self.model.input_mode == 'normalized' else 'RGB'}"
        threads = f"{num_threads} thread{'s' if num_threads > 1 else ''}"
        status = self.model.gpu_status
        if status is None:
            self.device = f"LiteRT CPU, {threads}"
        elif status.fully_accelerated:
            self.device = "LiteRT GPU"
        else:
            self.device = f"LiteRT GPU + CPU ({', '.join(status.fallback_ops) or 'some ops'})"

    def inputs(self, encoded: Sequence[bytes], pixels: np.ndarray | None) -> np.ndarray:
        from levit_tf.tflite.calibration import to_input_domain

        return to_input_domain(pixels, self.model.input_mode)

    def run(self, image: np.ndarray) -> np.ndarray:
        return self.model(image[None])[0]


def _labels(id2label: dict, num_labels: int | None, path: str) -> list[str]:
    try:
        return ordered_labels(id2label, num_labels)
    except ValueError as err:
        raise EvaluationError(f"{path}: {err}") from None


def load_artefact(path: str | os.PathLike, accelerator: str = "cpu",
                  num_threads: int = 1) -> Artefact:
    """The artefact at ``path`` (kind from ``sources.model_kind``). ``accelerator`` and
    ``num_threads`` apply to .tflite files (LiteRT); TensorFlow runs the others on its own
    device. Raises EvaluationError (or GpuUnavailable) in one line."""
    check_model(path)
    kind = model_kind(path)
    if kind == TFLITE:
        return TFLiteArtefact(path, accelerator, num_threads)
    if kind == SAVEDMODEL:
        return SavedModelArtefact(path)
    return KerasArtefact(path)


__all__ = ["LABELS_FILE", "Artefact", "KerasArtefact", "SavedModelArtefact", "TFLiteArtefact",
           "load_artefact", "savedmodel_labels", "size_on_disk"]
