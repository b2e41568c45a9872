"""Fine-tuning LeViT with ``model.fit``: optimizer recipe, distillation objectives, tf.distribute,
mixed precision, run directories with resume, and the ``levit-tf finetune`` command.

This package only consumes the models: what their ``compile`` / ``compute_loss`` / ``train_step``
need lives beside them (``levit_tf.distillation``, ``levit_tf.losses``,
``levit_tf.batch_norm_sync``) and is re-exported here. Names are imported lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Distillation": "objectives",
    "split_targets": "objectives",
    "adamw": "optimizers",
    "no_weight_decay": "optimizers",
    "warmup_cosine": "optimizers",
    "weight_decay_split": "optimizers",
    "make_strategy": "distribute",
    "sync_batch_norm_statistics": "distribute",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'levit_tf.training' has no attribute {name!r}")
    return getattr(importlib.import_module(f"levit_tf.training.{_EXPORTS[name]}"), name)


__all__ = sorted(_EXPORTS)
