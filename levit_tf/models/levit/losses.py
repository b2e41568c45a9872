"""Losses beyond Keras' own: the models' distillation objective and the fine-tuning recipe use
``SparseCrossEntropy`` (registered as ``levit_tf>SparseCrossEntropy`` for ``.keras`` files)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="levit_tf")
class SparseCrossEntropy(keras.losses.Loss):
    """Cross-entropy of logits (B, K) against int labels (B,), with optional label smoothing
    (timm's ``LabelSmoothingCrossEntropy``: (1 - e) * CE + e * mean_k(-log p_k)), which Keras'
    ``SparseCategoricalCrossentropy`` lacks. Mean over the batch."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "sparse_cross_entropy",
                 **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        nll = -ops.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
        if not self.label_smoothing:
            return nll
        return (1.0 - self.label_smoothing) * nll - self.label_smoothing * ops.mean(
            log_probs, axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


__all__ = ["SparseCrossEntropy"]
