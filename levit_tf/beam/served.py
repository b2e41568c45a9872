"""The SavedModel's ``serve_images`` signature as a plain Python object (no Beam needed).

``ServedModel.predict(images)`` takes encoded image bytes and returns numpy arrays, so it can
also sit behind Beam's cross-process proxy (``share_model_across_processes``), whose calls
pickle their arguments and results.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence

import numpy as np

SIGNATURE = "serve_images"
#: (height, width) of the photos most pipelines see; one warm-up image each compiles the
#: preprocessing kernels of its size buckets (``levit_tf.preprocessing.pil_resample``).
COMMON_SIZES: tuple[tuple[int, int], ...] = ((480, 640), (640, 480), (768, 1024), (1024, 768),
                                             (1080, 1920), (3024, 4032))


class ServedModel:
    """``serve_images`` of the SavedModel in ``directory``, loaded with ``tf.saved_model.load``.

    ``warm_sizes``: (H, W) images run once at load (``COMMON_SIZES`` by default; ``()`` none);
    ``warmup_seconds`` says what that cost and ``load_seconds`` what loading did.
    """

    def __init__(self, directory: str,
                 warm_sizes: Sequence[tuple[int, int]] = COMMON_SIZES) -> None:
        import tensorflow as tf

        start = time.perf_counter()
        self.directory = directory
        self._module = tf.saved_model.load(directory)
        if SIGNATURE not in self._module.signatures:
            raise ValueError(f"{directory}: the SavedModel has no {SIGNATURE!r} signature "
                             "(write it with levit-tf export-savedmodel)")
        self._serve = self._module.signatures[SIGNATURE]
        self.load_seconds = time.perf_counter() - start
        start = time.perf_counter()
        for height, width in warm_sizes:
            self.predict([blank_jpeg(height, width)])
        self.warmup_seconds = time.perf_counter() - start
        self.warm_sizes = tuple(warm_sizes)

    def predict(self, images: Sequence[bytes]) -> dict[str, np.ndarray]:
        """B encoded images -> ``probabilities`` (B, C) float32, ``top_k_indices`` (B, k) int32,
        ``top_k_labels`` (B, k) str, ``top_k_probabilities`` (B, k) float32 (best first).
        Raises ``tf.errors.InvalidArgumentError`` if any image cannot be decoded."""
        import tensorflow as tf

        outputs = self._serve(images=tf.constant(list(images), tf.string))
        result = {name: value.numpy() for name, value in outputs.items()}
        result["top_k_labels"] = result["top_k_labels"].astype(str)
        return result

    def stats(self) -> dict[str, float]:
        """Load and warm-up seconds (picklable: reachable through Beam's proxy too)."""
        return {"load_seconds": self.load_seconds, "warmup_seconds": self.warmup_seconds}


def blank_jpeg(height: int, width: int) -> bytes:
    """A mid-gray JPEG of ``height`` x ``width`` (decodes like any photo of that size)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


__all__ = ["COMMON_SIZES", "SIGNATURE", "ServedModel", "blank_jpeg"]
