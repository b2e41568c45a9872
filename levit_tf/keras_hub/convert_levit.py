"""timm LeViT -> keras-hub, in the shape of keras-hub's timm converters
(``keras_hub/src/utils/timm/convert_<family>.py``), so the family can be offered upstream.

keras-hub's ``TimmPresetLoader`` calls, for a timm ``config.json`` whose ``architecture`` it maps
to this module: ``convert_backbone_config(timm_config)`` -> backbone kwargs,
``convert_weights(backbone, loader, timm_config)`` and ``convert_head(task, loader,
timm_config)``, where ``loader.port_weight(keras_variable, hf_weight_key, hook_fn)`` reads one
tensor of ``model.safetensors`` (keras-hub's ``SafetensorLoader``). Names are timm's:
``stem.conv{1..4}``, ``stages.{s}.blocks.{b}.{attn,mlp}``, the shrinking attention at the start
of stage s as ``stages.{s}.downsample`` (it ends stage s - 1 in the Keras model, HF's order),
heads ``head`` / ``head_dist``. ``levit_conv_*`` checkpoints store 1x1 convolutions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from levit_tf.keras_hub.backbone import LevitBackbone
from levit_tf.keras_hub.image_classifier import LevitImageClassifier
from levit_tf.models.levit.layers import LevitAttention, LevitAttentionSubsample, LevitMLP

backbone_cls = LevitBackbone

#: timm architecture -> LevitBackbone kwargs (the five released LeViTs, paper Table 1).
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "levit_128s": dict(hidden_sizes=[128, 256, 384], num_attention_heads=[4, 6, 8],
                       depths=[2, 3, 4], key_dim=[16, 16, 16]),
    "levit_128": dict(hidden_sizes=[128, 256, 384], num_attention_heads=[4, 8, 12],
                      depths=[4, 4, 4], key_dim=[16, 16, 16]),
    "levit_192": dict(hidden_sizes=[192, 288, 384], num_attention_heads=[3, 5, 6],
                      depths=[4, 4, 4], key_dim=[32, 32, 32]),
    "levit_256": dict(hidden_sizes=[256, 384, 512], num_attention_heads=[4, 6, 8],
                      depths=[4, 4, 4], key_dim=[32, 32, 32]),
    "levit_384": dict(hidden_sizes=[384, 512, 768], num_attention_heads=[6, 9, 12],
                      depths=[4, 4, 4], key_dim=[32, 32, 32]),
}


def _architecture(timm_config: dict[str, Any]) -> str:
    name = timm_config["architecture"].split(".", 1)[0].replace("levit_conv_", "levit_")
    if name not in ARCHITECTURES:
        raise ValueError(f"no LeViT converter for timm architecture "
                         f"{timm_config['architecture']!r}; known: {sorted(ARCHITECTURES)}")
    return name


def convert_backbone_config(timm_config: dict[str, Any]) -> dict[str, Any]:
    """``LevitBackbone`` kwargs of a timm config (input size from ``pretrained_cfg``)."""
    channels, height, width = (timm_config.get("pretrained_cfg") or {}).get(
        "input_size", (3, 224, 224))
    return dict(**ARCHITECTURES[_architecture(timm_config)],
                image_shape=(int(height), int(width), int(channels)))


def _linear(x: np.ndarray, _shape: Any) -> np.ndarray:
    """timm (out, in) or levit_conv_* (out, in, 1, 1) -> Keras Dense (in, out)."""
    return np.transpose(x.reshape(x.shape[0], x.shape[1]))


def _conv(x: np.ndarray, _shape: Any) -> np.ndarray:
    """timm (out, in, kh, kw) -> Keras Conv2D (kh, kw, in, out)."""
    return np.transpose(x, (2, 3, 1, 0))


def port_batch_norm(loader: Any, batch_norm: Any, prefix: str) -> None:
    for variable, field in ((batch_norm.gamma, "weight"), (batch_norm.beta, "bias"),
                            (batch_norm.moving_mean, "running_mean"),
                            (batch_norm.moving_variance, "running_var")):
        loader.port_weight(variable, f"{prefix}.{field}")


def port_linear_bn(loader: Any, layer: Any, prefix: str) -> None:
    """A DenseBN (``linear`` + ``batch_norm``) from timm's ``{prefix}.linear`` / ``.bn``."""
    loader.port_weight(layer.linear.kernel, f"{prefix}.linear.weight", hook_fn=_linear)
    port_batch_norm(loader, layer.batch_norm, f"{prefix}.bn")


def port_block(loader: Any, module: Any, prefix: str) -> None:
    """One attention / shrinking attention / MLP (residual wrapper removed)."""
    if isinstance(module, LevitMLP):
        port_linear_bn(loader, module.linear_up, f"{prefix}.ln1")
        port_linear_bn(loader, module.linear_down, f"{prefix}.ln2")
        return
    if isinstance(module, LevitAttention):
        port_linear_bn(loader, module.queries_keys_values, f"{prefix}.qkv")
    elif isinstance(module, LevitAttentionSubsample):
        port_linear_bn(loader, module.keys_values, f"{prefix}.kv")
        port_linear_bn(loader, module.queries, f"{prefix}.q.ln")
    else:
        raise TypeError(f"unknown LeViT block {type(module).__name__} for {prefix}")
    port_linear_bn(loader, module.projection, f"{prefix}.proj.ln")
    loader.port_weight(module.attention_biases, f"{prefix}.attention_biases")


def timm_block_prefix(stage: int, index: int, depth: int, module: Any) -> str:
    """timm's name of block ``index`` of Keras stage ``stage`` (``depth`` attention + MLP
    pairs, then the shrinking attention and its MLP that timm starts stage + 1 with)."""
    if index < 2 * depth:
        kind = "attn" if index % 2 == 0 else "mlp"
        return f"stages.{stage}.blocks.{index // 2}.{kind}"
    kind = "attn_downsample" if isinstance(module, LevitAttentionSubsample) else "mlp"
    return f"stages.{stage + 1}.downsample.{kind}"


def convert_weights(backbone: LevitBackbone, loader: Any, timm_config: dict[str, Any]) -> None:
    """Every backbone variable from the timm checkpoint (stem, then stages in order)."""
    levit = backbone.levit
    for k, layer in enumerate(levit.patch_embeddings.embedding_layers, start=1):
        loader.port_weight(layer.convolution.kernel, f"stem.conv{k}.linear.weight",
                           hook_fn=_conv)
        port_batch_norm(loader, layer.batch_norm, f"stem.conv{k}.bn")
    for s, stage in enumerate(levit.stages):
        for index, block in enumerate(stage.blocks):
            module = getattr(block, "module", block)
            port_block(loader, module, timm_block_prefix(s, index, stage.depth, module))


def convert_head(task: LevitImageClassifier, loader: Any, timm_config: dict[str, Any]) -> None:
    """The class head (``head``) and, with ``distillation_head``, ``head_dist``."""
    heads = [(task.classifier, "head")]
    if task.classifier_distill is not None:
        heads.append((task.classifier_distill, "head_dist"))
    for head, prefix in heads:
        port_batch_norm(loader, head.batch_norm, f"{prefix}.bn")
        loader.port_weight(head.linear.kernel, f"{prefix}.linear.weight", hook_fn=_linear)
        loader.port_weight(head.linear.bias, f"{prefix}.linear.bias")


__all__ = ["ARCHITECTURES", "backbone_cls", "convert_backbone_config", "convert_head",
           "convert_weights"]
