"""Fine-tuning LeViT with ``model.fit``: optimizer recipe, distillation objectives, tf.distribute,
mixed precision, run directories with resume, and the ``levit-tf finetune`` command.

This package only consumes the models: what their ``compile`` / ``compute_loss`` / ``train_step``
need lives beside them (``levit_tf.distillation``, ``levit_tf.losses``,
``levit_tf.batch_norm_sync``) and is re-exported here. Names are imported lazily.
"""

from __future__ import annotations

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


__getattr__, __dir__ = lazy_exports("levit_tf.training", globals(), _EXPORTS)


__all__ = sorted(_EXPORTS)
