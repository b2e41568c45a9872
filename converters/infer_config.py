"""Working out a LevitConfig from canonical weights alone (timm / facebookresearch files)."""

from __future__ import annotations

import math
import re

from levit_tf.converters.errors import ConversionError
from levit_tf.converters.layouts import CanonicalState

from levit_tf.configuration_levit import PRESETS, LevitConfig

_LAYER = re.compile(r"^levit\.encoder\.stages\.(\d+)\.layers\.(\d+)\.module\.queries_keys_values"
                    r"\.linear\.weight$")


def _shape(state: CanonicalState, name: str) -> tuple[int, ...]:
    if name not in state:
        raise ConversionError(f"cannot infer the architecture: checkpoint lacks {name}")
    return tuple(state[name][0].shape)


def infer_config(state: CanonicalState) -> LevitConfig:
    """Architecture from weight shapes: widths, heads (bias tables), key dims, depths, ratios.

    The input size comes from stage 0's bias table (H*W offsets for an H x W grid; square
    assumed). ImageNet labels are attached when the head has 1000 outputs.
    """
    stem = "levit.patch_embeddings.embedding_layer_{}.convolution.weight"
    num_channels = _shape(state, stem.format(1))[1]
    attention_layers: dict[int, list[int]] = {}
    for name in state:
        if match := _LAYER.match(name):
            attention_layers.setdefault(int(match.group(1)), []).append(int(match.group(2)))
    if not attention_layers or sorted(attention_layers) != list(range(len(attention_layers))):
        raise ConversionError(
            f"cannot infer the architecture: attention stages found {sorted(attention_layers)}")

    hidden_sizes, heads, depths, key_dims, attention_ratios, mlp_ratios = [], [], [], [], [], []
    for stage in sorted(attention_layers):
        first = f"levit.encoder.stages.{stage}.layers.{min(attention_layers[stage])}.module."
        qkv_out, width = _shape(state, first + "queries_keys_values.linear.weight")[:2]
        num_heads = _shape(state, first + "attention_biases")[0]
        proj_in = _shape(state, first + "projection.linear.weight")[1]
        value_dim = proj_in // num_heads
        key_dim = (qkv_out // num_heads - value_dim) // 2
        mlp = f"levit.encoder.stages.{stage}.layers.{min(attention_layers[stage]) + 1}.module."
        mlp_hidden = _shape(state, mlp + "linear_up.linear.weight")[0]
        if key_dim <= 0 or value_dim % key_dim or mlp_hidden % width:
            raise ConversionError(
                f"stage {stage}: inconsistent shapes (qkv {qkv_out}, proj in {proj_in}, heads "
                f"{num_heads}, mlp {mlp_hidden}, width {width})")
        hidden_sizes.append(width)
        heads.append(num_heads)
        depths.append(len(attention_layers[stage]))
        key_dims.append(key_dim)
        attention_ratios.append(value_dim // key_dim)
        mlp_ratios.append(mlp_hidden // width)

    offsets = _shape(state, "levit.encoder.stages.0.layers.0.module.attention_biases")[1]
    side = math.isqrt(offsets)
    if side * side != offsets:
        raise ConversionError(
            f"stage 0 bias table has {offsets} offsets, not a square grid: pass image_size=(H, W)")
    fields = dict(hidden_sizes=hidden_sizes, num_attention_heads=heads, depths=depths,
                  key_dim=key_dims, attention_ratio=attention_ratios, mlp_ratio=mlp_ratios,
                  num_channels=num_channels, image_size=side * 16)
    head = "classifier.linear.weight"
    num_labels = state[head][0].shape[0] if head in state else 0
    try:
        config = LevitConfig(num_labels=num_labels, **fields)
    except ValueError as err:
        raise ConversionError(f"weights describe an unsupported LeViT: {err}") from None
    preset = config.preset_name()
    if preset is not None:
        config.drop_path_rate = PRESETS[preset].get("drop_path_rate", 0.0)
    if num_labels == 1000:
        config = config.with_imagenet_labels()
    return config
