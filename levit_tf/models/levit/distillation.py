"""What the classification models' ``compute_loss`` / ``compute_metrics`` see: targets, logits,
and the two-head (class + distillation) objectives of ``LevitForImageClassificationWithTeacher``.

Part of the model layer (``modeling_levit`` uses it); ``levit_tf.models.levit.distillation``
re-exports it.

Targets are either labels (B,) / one-hot (B, K), or a dict ``{"labels": ..., "teacher_labels":
...}`` where ``teacher_labels`` (B,) int are a teacher's hard predictions precomputed offline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import keras
from keras import ops

from levit_tf.models.levit.configuration_levit import DISTILLATION_MODES
from levit_tf.models.levit.losses import SparseCrossEntropy

LABELS_KEY = "labels"
TEACHER_LABELS_KEY = "teacher_labels"


def split_targets(y: Any) -> tuple[Any, Any | None]:
    """``y`` -> (labels, teacher_labels or None); a dict must hold ``labels``."""
    if not isinstance(y, Mapping):
        return y, None
    unknown = sorted(set(y) - {LABELS_KEY, TEACHER_LABELS_KEY})
    if LABELS_KEY not in y or unknown:
        raise ValueError(
            f"dict targets must have the key {LABELS_KEY!r} and optionally "
            f"{TEACHER_LABELS_KEY!r}; got keys {sorted(y)}")
    return y[LABELS_KEY], y.get(TEACHER_LABELS_KEY)


def float32_logits(logits: Any) -> Any:
    """Logits in float32 (they are bfloat16 under a mixed policy; losses need float32)."""
    return ops.cast(logits, "float32")


def model_logits(outputs: Any) -> Any:
    """A model's output (a LeViT dict or a plain tensor) -> float32 logits (B, K)."""
    if isinstance(outputs, Mapping):
        if "logits" not in outputs:
            raise ValueError(f"model outputs have no 'logits' (keys: {sorted(outputs)})")
        outputs = outputs["logits"]
    return float32_logits(outputs)


def added_loss(loss: Any) -> Any:
    """One entry of ``Model.losses`` (``add_loss``, regularizers) as ``keras.Model.compute_loss``
    adds it to the compiled loss: summed, and cast to floatx when not a float."""
    if not keras.backend.is_float_dtype(loss.dtype):
        loss = ops.cast(loss, keras.backend.floatx())
    return ops.sum(loss)


def is_structured(spec: Any) -> bool:
    """True for per-output loss/metric specs (a dict keyed by output name), which are passed the
    whole output dict; anything else applies to the logits."""
    return isinstance(spec, Mapping)


@dataclasses.dataclass(frozen=True, eq=False)
class Distillation:
    """How ``LevitForImageClassificationWithTeacher`` trains its two heads.

    ``mode="none"`` (classic): both heads learn the labels,
    ``loss = (L(cls_logits, y) + L(distillation_logits, y)) / 2``.
    ``mode="hard"`` (DeiT hard distillation):
    ``loss = L(cls_logits, y) / 2 + CE(distillation_logits, argmax teacher(x)) / 2``, with the
    teacher's labels from ``teacher`` (any Keras model: logits (B, K) or a dict with ``logits``,
    run in inference mode on the same inputs) or, without one, from ``teacher_labels`` in the
    targets. ``L`` is the compiled loss; CE is sparse categorical cross-entropy on logits.

    A plain frozen dataclass, so Keras does not track the teacher's weights as the student's.
    """

    mode: str = "none"
    teacher: keras.Model | None = None

    def __post_init__(self) -> None:
        if self.mode not in DISTILLATION_MODES:
            raise ValueError(
                f"distillation must be one of {DISTILLATION_MODES}, got {self.mode!r}")
        if self.teacher is not None and self.mode != "hard":
            raise ValueError("a teacher model is only used with distillation='hard'")
        if self.teacher is not None and not callable(self.teacher):
            raise TypeError(f"teacher must be a Keras model, got {type(self.teacher).__name__}")

    def teacher_labels(self, x: Any, data_labels: Any | None) -> Any:
        """(B,) int hard labels: the data's ``teacher_labels`` if given, else argmax teacher(x)."""
        if data_labels is not None:
            return data_labels
        if self.teacher is None:
            raise ValueError(
                "hard distillation needs teacher labels: compile(..., teacher=<keras model>) or "
                f"targets {{{LABELS_KEY!r}: y, {TEACHER_LABELS_KEY!r}: t}} in the dataset")
        logits = model_logits(self.teacher(x, training=False))
        return ops.stop_gradient(ops.argmax(logits, axis=-1))


_hard_ce = SparseCrossEntropy(name="distillation_ce")  # (importing it registers it for loading)


def two_head_loss(base_loss: Any, distillation: Distillation, x: Any, labels: Any,
                  teacher_labels: Any | None, cls_logits: Any, distill_logits: Any,
                  sample_weight: Any = None) -> Any:
    """The training loss of the two heads (see ``Distillation``). Logits (B, K) float32.

    ``base_loss(y_true, y_pred, sample_weight)`` is the compiled loss; the result is a scalar
    (already divided by the replica count under tf.distribute, as Keras losses are).
    """
    cls_term = base_loss(labels, cls_logits, sample_weight)
    if distillation.mode == "none":
        return (cls_term + base_loss(labels, distill_logits, sample_weight)) / 2
    targets = distillation.teacher_labels(x, teacher_labels)
    return cls_term / 2 + _hard_ce(targets, distill_logits, sample_weight) / 2


__all__ = [
    "DISTILLATION_MODES",
    "LABELS_KEY",
    "TEACHER_LABELS_KEY",
    "Distillation",
    "added_loss",
    "float32_logits",
    "is_structured",
    "model_logits",
    "split_targets",
    "two_head_loss",
]
