"""Every Keras weight of a LeViT model under its canonical (HF PyTorch) name.

Walks the model by attribute (``levit.patch_embeddings.embedding_layers``, ``levit.stages[s]
.blocks[l]``, ``classifier``), never by weight order. Each target says how a PyTorch tensor maps
onto the Keras variable: ``linear`` (out, in) -> (in, out), ``conv`` (O, I, kh, kw) ->
(kh, kw, I, O), ``copy``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from levit_tf.models.levit.layers import (
    ConvBN,
    DenseBN,
    LevitAttention,
    LevitAttentionSubsample,
    LevitClassificationHead,
    LevitMLP,
    model_blocks,
)
from levit_tf.models.levit.modeling_levit import LevitPreTrainedModel


@dataclass
class Target:
    variable: object  # keras.Variable
    kind: str  # 'linear' | 'conv' | 'copy'


@dataclass
class IndexCheck:
    """A PyTorch ``attention_bias_idxs`` buffer must equal the index the layer builds."""

    expected: np.ndarray


def _batch_norm(prefix: str, bn) -> dict[str, Target]:
    return {
        prefix + "weight": Target(bn.gamma, "copy"),
        prefix + "bias": Target(bn.beta, "copy"),
        prefix + "running_mean": Target(bn.moving_mean, "copy"),
        prefix + "running_var": Target(bn.moving_variance, "copy"),
    }


def _dense_bn(prefix: str, layer: DenseBN) -> dict[str, Target]:
    return {prefix + "linear.weight": Target(layer.linear.kernel, "linear"),
            **_batch_norm(prefix + "batch_norm.", layer.batch_norm)}


def _conv_bn(prefix: str, layer: ConvBN) -> dict[str, Target]:
    return {prefix + "convolution.weight": Target(layer.convolution.kernel, "conv"),
            **_batch_norm(prefix + "batch_norm.", layer.batch_norm)}


def _head(prefix: str, layer: LevitClassificationHead) -> dict[str, Target]:
    return {**_batch_norm(prefix + "batch_norm.", layer.batch_norm),
            prefix + "linear.weight": Target(layer.linear.kernel, "linear"),
            prefix + "linear.bias": Target(layer.linear.bias, "copy")}


def _block(prefix: str, block) -> tuple[dict[str, Target], dict[str, IndexCheck]]:
    """Targets of one attention / MLP (residual wrappers already unwrapped)."""
    targets: dict[str, Target] = {}
    if isinstance(block, LevitMLP):
        targets.update(_dense_bn(prefix + "linear_up.", block.linear_up))
        targets.update(_dense_bn(prefix + "linear_down.", block.linear_down))
        return targets, {}
    if isinstance(block, LevitAttention):
        parts = {"queries_keys_values": block.queries_keys_values,
                 "projection": block.projection}
    elif isinstance(block, LevitAttentionSubsample):
        parts = {"keys_values": block.keys_values, "queries": block.queries,
                 "projection": block.projection}
    else:
        raise TypeError(f"unknown LeViT block {type(block).__name__} at {prefix}")
    for name, layer in parts.items():
        targets.update(_dense_bn(f"{prefix}{name}.", layer))
    targets[prefix + "attention_biases"] = Target(block.attention_biases, "copy")
    return targets, {prefix + "attention_bias_idxs": IndexCheck(block.bias_index)}


def canonical_targets(model: LevitPreTrainedModel) -> tuple[dict[str, Target],
                                                            dict[str, IndexCheck]]:
    """(weight targets, index buffers to verify), keyed by canonical HF PyTorch names."""
    targets: dict[str, Target] = {}
    checks: dict[str, IndexCheck] = {}
    for k, layer in enumerate(model.levit.patch_embeddings.embedding_layers, start=1):
        targets.update(_conv_bn(f"levit.patch_embeddings.embedding_layer_{k}.", layer))
    for ref in model_blocks(model.levit.stages):
        prefix = f"levit.encoder.stages.{ref.stage}.layers.{ref.index}."
        block_targets, block_checks = _block(prefix + ("module." if ref.residual else ""),
                                             ref.module)
        targets.update(block_targets)
        checks.update(block_checks)
    for name in getattr(model, "head_names", ()):
        head = getattr(model, name)
        if head is not None:
            targets.update(_head(f"{name}.", head))
    return targets, checks
