"""The Keras backend in use, and the one error of the TensorFlow-only entry points.

The models (``modeling_levit``) run and train on every Keras 3 backend: TensorFlow, JAX and
PyTorch. A few features are TensorFlow programs by nature (a SavedModel, the TFLite converter,
``tf.distribute``); under another backend they raise ``TensorFlowBackendRequired`` before any
work, with one message naming the feature and the fix. Their input, a ``.keras`` file, is
backend-neutral, so the fix is to run that step with ``KERAS_BACKEND=tensorflow``.
"""

from __future__ import annotations

#: The features that need the TensorFlow backend (docs/guides/backends.md lists the same).
TENSORFLOW_ONLY = (
    "SavedModel export (levit-tf export-savedmodel, levit_tf.export.saved_model)",
    "TFLite export (levit-tf export-tflite, levit_tf.tflite.export)",
    "levit-tf finetune (runs under a tf.distribute strategy)",
    "tf.distribute strategies (levit_tf.training.make_strategy)",
)


class TensorFlowBackendRequired(RuntimeError):
    """A TensorFlow-only feature was called while Keras runs on another backend."""


def keras_backend() -> str:
    """'tensorflow', 'jax', 'torch' or 'numpy' (fixed when keras is first imported)."""
    import keras

    return keras.backend.backend()


def require_tensorflow_backend(feature: str) -> None:
    """Raises TensorFlowBackendRequired unless Keras runs on TensorFlow."""
    backend = keras_backend()
    if backend != "tensorflow":
        raise TensorFlowBackendRequired(
            f"{feature} needs the TensorFlow backend, but Keras runs on {backend!r}: run this "
            "step with KERAS_BACKEND=tensorflow (the .keras file loads there unchanged)")


__all__ = ["TENSORFLOW_ONLY", "TensorFlowBackendRequired", "keras_backend",
           "require_tensorflow_backend"]
