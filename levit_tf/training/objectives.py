"""The classification models' targets, logits and two-head objectives, defined beside the models
in ``levit_tf.distillation`` (the models' ``compile`` / ``compute_loss`` use them) and re-exported
here under their training names."""

from levit_tf.distillation import (
    DISTILLATION_MODES,
    LABELS_KEY,
    TEACHER_LABELS_KEY,
    Distillation,
    float32_logits,
    is_structured,
    model_logits,
    split_targets,
    two_head_loss,
)

__all__ = [
    "DISTILLATION_MODES",
    "LABELS_KEY",
    "TEACHER_LABELS_KEY",
    "Distillation",
    "float32_logits",
    "is_structured",
    "model_logits",
    "split_targets",
    "two_head_loss",
]
