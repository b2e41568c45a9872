"""Fine-tuning LeViT with ``model.fit``: optimizer recipe, distillation objectives, tf.distribute,
mixed precision, run directories with resume, and the ``levit-tf finetune`` command.

This package only consumes the models: what their ``compile`` / ``compute_loss`` / ``train_step``
need lives beside them in ``levit_tf.models.levit`` (``distillation``, ``losses``,
``batch_norm_sync``); the lazy names below point there. Names are imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from levit_tf.utils.lazy import lazy_exports

_EXPORTS = {
    "Distillation": "levit_tf.models.levit.distillation",
    "split_targets": "levit_tf.models.levit.distillation",
    "adamw": ".optimizers",
    "no_weight_decay": ".optimizers",
    "warmup_cosine": ".optimizers",
    "weight_decay_split": ".optimizers",
    "make_strategy": ".distribute",
    "sync_batch_norm_statistics": "levit_tf.models.levit.batch_norm_sync",
}


if TYPE_CHECKING:  # what static tools (IDEs, the docs' API reference) see
    from levit_tf.models.levit.batch_norm_sync import sync_batch_norm_statistics
    from levit_tf.models.levit.distillation import Distillation, split_targets
    from levit_tf.training.distribute import make_strategy
    from levit_tf.training.optimizers import (
        adamw,
        no_weight_decay,
        warmup_cosine,
        weight_decay_split,
    )

__getattr__, __dir__ = lazy_exports("levit_tf.training", globals(), _EXPORTS)


__all__ = [
    "Distillation",
    "adamw",
    "make_strategy",
    "no_weight_decay",
    "split_targets",
    "sync_batch_norm_statistics",
    "warmup_cosine",
    "weight_decay_split",
]
