"""The LeViT / DeiT training recipe's optimizer: AdamW without decay on biases, BN parameters and
attention biases, and a linear-warmup cosine learning-rate schedule."""

from __future__ import annotations

import keras

NO_DECAY_NAMES = ("attention_biases",)  # LeViT's ``no_weight_decay()`` (2-D, so named here)


def no_weight_decay(variable: keras.Variable) -> bool:
    """timm's ``param_groups_weight_decay`` rule: no decay for 1-D tensors (biases, BN gamma and
    beta) and for the attention-bias tables; conv / dense kernels decay."""
    return len(variable.shape) <= 1 or variable.name in NO_DECAY_NAMES


def weight_decay_split(model: keras.Model) -> tuple[list[keras.Variable], list[keras.Variable]]:
    """(decayed, excluded) among ``model``'s trainable weights."""
    weights = model.trainable_weights
    return ([w for w in weights if not no_weight_decay(w)],
            [w for w in weights if no_weight_decay(w)])


def adamw(model: keras.Model, learning_rate: float | keras.optimizers.schedules.LearningRateSchedule
          = 5e-4, weight_decay: float = 0.025, **kwargs) -> keras.optimizers.AdamW:
    """``keras.optimizers.AdamW`` with the recipe's exclusions registered for ``model``.

    Defaults are LeViT's (lr 5e-4 at batch 512, weight decay 0.025). Decay is decoupled and
    scaled by the learning rate, as in ``torch.optim.AdamW``. Build the optimizer for the same
    model (the exclusions are the model's variables, including currently frozen ones, so
    unfreezing later keeps them right). Keras does not serialize the exclusions: after loading
    a ``.keras`` file, compile with a fresh ``adamw(model, ...)``.
    """
    optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay,
                                       **kwargs)
    # all weights, frozen ones too (BN statistics are never updated by an optimizer anyway)
    optimizer.exclude_from_weight_decay(var_list=[w for w in model.weights if no_weight_decay(w)])
    return optimizer


def warmup_cosine(base_lr: float, total_steps: int, warmup_steps: int = 0,
                  final_lr: float = 0.0) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warmup from 0 to ``base_lr`` over ``warmup_steps``, then cosine decay to
    ``final_lr`` at ``total_steps`` (steps = optimizer iterations)."""
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps={total_steps} must exceed warmup_steps={warmup_steps}")
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(
            base_lr, total_steps, alpha=final_lr / base_lr if base_lr else 0.0)
    return keras.optimizers.schedules.CosineDecay(
        0.0, total_steps - warmup_steps, alpha=final_lr / base_lr if base_lr else 0.0,
        warmup_target=base_lr, warmup_steps=warmup_steps)


__all__ = ["NO_DECAY_NAMES", "adamw", "no_weight_decay", "warmup_cosine", "weight_decay_split"]
