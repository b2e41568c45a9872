"""Mixed precision: bfloat16 compute with float32 variables, BN statistics, logits and loss.

``TorchBatchNorm`` computes batch statistics in float32, the classification models cast logits to
float32 before the loss and metrics (and in ``predict``), so the only change is the policy::

    keras.mixed_precision.set_global_policy("mixed_bfloat16")   # before building the model
    model = LevitForImageClassification(config)

or, for a model already built in float32 (e.g. a converted checkpoint), ``with_dtype_policy``.
"""

from __future__ import annotations

import keras

from levit_tf.models.levit.modeling_levit import LevitPreTrainedModel, rebuild

MIXED_BFLOAT16 = "mixed_bfloat16"


def with_dtype_policy(model: LevitPreTrainedModel, policy: str = MIXED_BFLOAT16
                      ) -> LevitPreTrainedModel:
    """A copy of ``model`` (same class, config, name and weights) under a Keras dtype policy.

    Variables stay float32 under ``mixed_*`` policies, so the weights copy over exactly.
    """
    if not isinstance(model, LevitPreTrainedModel):
        raise TypeError(f"expected a LeViT model, got {type(model).__name__}")
    return rebuild(model, dtype=keras.dtype_policies.get(policy))


__all__ = ["MIXED_BFLOAT16", "with_dtype_policy"]
