"""Working out a LevitConfig from canonical weights alone (timm / facebookresearch files)."""

from __future__ import annotations

import re

from levit_tf.converters.errors import ConversionError
from levit_tf.converters.layouts import CanonicalState
from levit_tf.models.levit.configuration_levit import PRESETS, LevitConfig

_LAYER = re.compile(r"^levit\.encoder\.stages\.(\d+)\.layers\.(\d+)\.module\.queries_keys_values"
                    r"\.linear\.weight$")


def _shape(state: CanonicalState, name: str) -> tuple[int, ...]:
    if name not in state:
        raise ConversionError(f"cannot infer the architecture: checkpoint lacks {name}")
    return tuple(state[name][0].shape)


def infer_config(state: CanonicalState,
                 source_image_size: tuple[int, int] | None = None) -> LevitConfig:
    """Architecture from weight shapes: widths, heads (bias tables), key dims, depths, ratios.

    The input size comes from the bias tables (``infer_grid``); ``source_image_size`` (H, W)
    settles it when the tables fit several grids. ImageNet labels are attached when the head
    has 1000 outputs.
    """
    source_grid = None
    if source_image_size is not None:
        source_grid = (source_image_size[0] // 16, source_image_size[1] // 16)
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

    grid = infer_grid(bias_table_sizes(state), source_grid)
    fields = dict(hidden_sizes=hidden_sizes, num_attention_heads=heads, depths=depths,
                  key_dim=key_dims, attention_ratio=attention_ratios, mlp_ratio=mlp_ratios,
                  num_channels=num_channels,
                  image_size=[grid[0] * 16, grid[1] * 16] if grid[0] != grid[1]
                  else grid[0] * 16)
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


_BIASES = re.compile(r"^levit\.encoder\.stages\.(\d+)\.layers\.\d+\.(module\.)?attention_biases$")


def bias_table_sizes(state: CanonicalState) -> list[int]:
    """Offsets per stage key grid (H*W), from each stage's bias tables (which must agree)."""
    sizes: dict[int, set[int]] = {}
    for name, (array, _) in state.items():
        if match := _BIASES.match(name):
            sizes.setdefault(int(match.group(1)), set()).add(int(array.shape[-1]))
    if not sizes or sorted(sizes) != list(range(len(sizes))):
        raise ConversionError(
            f"cannot infer the input size: bias tables for stages {sorted(sizes)}")
    for stage, found in sizes.items():
        if len(found) != 1:
            raise ConversionError(
                f"stage {stage}: bias tables of different sizes {sorted(found)} (one key grid "
                "per stage expected)")
    return [next(iter(sizes[stage])) for stage in sorted(sizes)]


def grid_candidates(table_sizes: list[int]) -> list[tuple[int, int]]:
    """Every stage-0 grid (H, W) whose stride-2 successors have the given table sizes."""
    found = []
    for height in range(1, table_sizes[0] + 1):
        if table_sizes[0] % height:
            continue
        grid = (height, table_sizes[0] // height)
        h, w = grid
        fits = True
        for size in table_sizes:
            fits = fits and h * w == size
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        if fits:
            found.append(grid)
    return found


def infer_grid(table_sizes: list[int],
               requested: tuple[int, int] | None = None) -> tuple[int, int]:
    """The stage-0 key grid (H, W) that the bias tables were learned on.

    A table only holds H*W, so the grid is the one whose stride-2 successors give every
    stage's size. When several grids fit (always H x W and W x H for non-square grids, and
    sometimes others), the square one is taken, as every released LeViT is square; without a
    square one, ``requested`` must name the grid.
    """
    candidates = grid_candidates(table_sizes)
    if requested is not None:
        if requested not in candidates:
            raise ConversionError(
                f"source image size {requested[0] * 16}x{requested[1] * 16} does not fit the "
                f"bias tables ({table_sizes} offsets per stage); grids that fit: "
                f"{_format(candidates)}")
        return requested
    squares = [grid for grid in candidates if grid[0] == grid[1]]
    if squares:
        return squares[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ConversionError(
            f"bias tables with {table_sizes} offsets per stage fit no LeViT grid")
    raise ConversionError(
        f"the bias tables ({table_sizes} offsets per stage) fit several input sizes "
        f"({_format(candidates)}); pass source_image_size=(H, W) to say which one the "
        "checkpoint was trained at")


def _format(grids: list[tuple[int, int]]) -> str:
    return ", ".join(f"{h * 16}x{w * 16}" for h, w in grids) or "none"
