"""Fine-tuning LeViT with ``model.fit``: optimizer recipe, distillation objectives, tf.distribute,
mixed precision, run directories with resume, and the ``levit-tf finetune`` command.

This package only consumes the models: what their ``compile`` / ``compute_loss`` / ``train_step``
need lives beside them (``levit_tf.distillation``, ``levit_tf.losses``,
``levit_tf.batch_norm_sync``) and is re-exported here. Names are imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from levit_tf.lazy import lazy_exports

_EXPORTS = {
    "Distillation": ".objectives",
    "split_targets": ".objectives",
    "adamw": ".optimizers",
    "no_weight_decay": ".optimizers",
    "warmup_cosine": ".optimizers",
    "weight_decay_split": ".optimizers",
    "make_strategy": ".distribute",
    "sync_batch_norm_statistics": ".distribute",
}


if TYPE_CHECKING:  # what static tools (IDEs, the docs' API reference) see
    from levit_tf.training.distribute import make_strategy, sync_batch_norm_statistics
    from levit_tf.training.objectives import Distillation, split_targets
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
