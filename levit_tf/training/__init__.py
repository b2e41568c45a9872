"""Fine-tuning LeViT with ``model.fit``: optimizer recipe, distillation objectives, tf.distribute,
mixed precision, run directories with resume, and the ``levit-tf finetune`` command.

This package only consumes the models: what their ``compile`` / ``compute_loss`` / ``train_step``
need lives beside them in ``levit_tf.models.levit`` (``distillation``, ``losses``,
``batch_norm_sync``); the lazy names below point there. Names are imported lazily.
"""

from __future__ import annotations

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


__getattr__, __dir__ = lazy_exports("levit_tf.training", globals(), _EXPORTS)


__all__ = sorted(_EXPORTS)
