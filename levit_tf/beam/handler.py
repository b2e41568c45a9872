"""A RunInference ``ModelHandler`` for the SavedModel of ``levit-tf export-savedmodel``.

Beam's own ``TFModelHandlerTensor`` calls ``tf.keras.models.load_model`` (which Keras 3 refuses
for a SavedModel directory) and imports ``tensorflow_hub``; this handler loads the directory
with ``tf.saved_model.load`` and runs its ``serve_images`` signature (``ServedModel``).

Elements are ``(path, encoded bytes)``; each result is a dict: ``path``, ``labels``,
``probabilities`` and ``indices`` (top-k, best first), or ``path`` and ``error`` for an image
that does not decode (a batch that fails is retried image by image, so one bad file costs
only itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from apache_beam.ml.inference.base import ModelHandler

from levit_tf.beam.served import COMMON_SIZES, ServedModel

Example = tuple[str, bytes]


class SavedModelImageHandler(ModelHandler[Example, dict, ServedModel]):
    """``model_dir``: a SavedModel directory (local or any filesystem TensorFlow reads, e.g.
    ``gs://``). ``top_k``: keep the best ``top_k`` of the model's (None: all it gives).
    ``warm_sizes``: (H, W) warmed at load. ``max_batch_size``: images per call.
    ``model_copies``: None = one model per worker process (Beam loads it once per process and
    shares it between the process's threads); N = N copies per machine shared by all its
    worker processes (``share_model_across_processes``), for memory-bound workers."""

    def __init__(self, model_dir: str, *, top_k: int | None = None,
                 warm_sizes: Sequence[tuple[int, int]] = COMMON_SIZES,
                 max_batch_size: int = 16, model_copies: int | None = None) -> None:
        super().__init__()
        self.model_dir = model_dir
        self.top_k = top_k
        self.warm_sizes = tuple(tuple(size) for size in warm_sizes)
        self.max_batch_size = max_batch_size
        self._model_copies = model_copies

    def load_model(self) -> ServedModel:
        return ServedModel(self.model_dir, self.warm_sizes)

    def run_inference(self, batch: Sequence[Example], model: ServedModel,
                      inference_args: dict[str, Any] | None = None) -> Iterable[dict]:
        try:
            outputs = model.predict([data for _, data in batch])
        except Exception:  # which image? ask each one (errors are reported)
            return [self._one(example, model) for example in batch]
        return [self._record(path, outputs, i) for i, (path, _) in enumerate(batch)]

    def _one(self, example: Example, model: ServedModel) -> dict:
        path, data = example
        try:
            return self._record(path, model.predict([data]), 0)
        except Exception as err:  # a bad image goes to the dead letter
            return {"path": path, "error": _first_line(err)}

    def _record(self, path: str, outputs: dict, i: int) -> dict:
        k = self.top_k or outputs["top_k_indices"].shape[1]
        return {"path": path,
                "labels": [str(label) for label in outputs["top_k_labels"][i, :k]],
                "probabilities": [float(p) for p in outputs["top_k_probabilities"][i, :k]],
                "indices": [int(j) for j in outputs["top_k_indices"][i, :k]]}

    def batch_elements_kwargs(self) -> dict[str, Any]:
        return {"min_batch_size": 1, "max_batch_size": self.max_batch_size}

    def share_model_across_processes(self) -> bool:
        return self._model_copies is not None

    def model_copies(self) -> int:
        return self._model_copies or 1


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


__all__ = ["SavedModelImageHandler"]
