"""Running a LeViT at another input resolution: resized attention-bias tables.

Each attention layer learns one bias per head and absolute key-grid offset (|dy|, |dx|), a
(heads, H*W) table for its (H, W) key grid (see ``attention_bias``). At a new input size the
grids change, so every table is resampled as an (H, W) image per head to the new grid
(``resize_bias_table``: PyTorch ``F.interpolate`` bicubic or bilinear math in numpy). Nothing
else in LeViT depends on the resolution: the other weights are copied unchanged.

- ``change_resolution(model, image_size)``: a Keras LeViT at another size.
- ``load_pretrained(..., image_size=...)`` / ``levit-tf convert ... --image-size`` resize while
  loading a PyTorch checkpoint (``levit_tf.converters``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from levit_tf.models.levit.attention_bias import INTERPOLATION_MODES, resize_bias_table
from levit_tf.models.levit.block_plan import block_plan
from levit_tf.models.levit.configuration_levit import LevitConfig
from levit_tf.models.levit.layers import _BiasedAttention, model_blocks
from levit_tf.models.levit.modeling_levit import LevitPreTrainedModel, rebuild
from levit_tf.utils.image_size import (
    ImageSize,
    format_hw,
    format_size,
    image_hw,
    image_size_argument,
    parse_image_size,
)

logger = logging.getLogger("levit_tf.models.levit.resolution")

def check_mode(mode: str) -> str:
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"bias interpolation must be one of {INTERPOLATION_MODES}, got {mode!r}")
    return mode


@dataclass(frozen=True)
class GridChange:
    """What resizing from one config to another does to the bias tables."""

    from_size: tuple[int, int]
    to_size: tuple[int, int]
    from_grids: tuple[tuple[int, int], ...]  # key grid of each stage (H, W)
    to_grids: tuple[tuple[int, int], ...]
    mode: str

    @classmethod
    def between(cls, source: LevitConfig, target: LevitConfig, mode: str) -> GridChange:
        if source.num_stages != target.num_stages:
            raise ValueError(f"configs have {source.num_stages} and {target.num_stages} stages")
        return cls(source.image_hw, target.image_hw, tuple(source.stage_grids()),
                   tuple(target.stage_grids()), check_mode(mode))

    @property
    def changes(self) -> bool:
        return self.from_grids != self.to_grids

    def message(self, tables: int) -> str:
        """The one log line that a resize emits (``tables``: how many changed grid)."""
        grids = ", ".join(f"{format_hw(a)}->{format_hw(b)}" for a, b in zip(
            self.from_grids, self.to_grids, strict=True))
        return (f"resized {tables} attention-bias tables from {format_hw(self.from_size)} to "
                f"{format_hw(self.to_size)} input ({self.mode}; stage key grids {grids}); "
                "fine-tune at the new size for best accuracy")


# ----------------------------------------------------------------------------- Keras models


def attention_layers(model: Any) -> list[Any]:
    """Every attention layer of a LeViT model with a bias table, in model order."""
    return [ref.module for ref in model_blocks(model.levit.stages)
            if isinstance(ref.module, _BiasedAttention)]


def change_resolution(model: Any, image_size: int | Sequence[int],
                      mode: str = "bicubic") -> Any:
    """The same LeViT (class, weights, dtype policy) built for ``image_size`` (int or (H, W)).

    Every attention-bias table (heads, H*W) is resized to its layer's new key grid with
    ``resize_bias_table``; all other weights are copied unchanged. Returns ``model`` itself when
    the grids do not change. Logs one warning listing the sizes.
    """
    if not isinstance(model, LevitPreTrainedModel):
        raise TypeError(f"expected a LeViT model, got {type(model).__name__}")
    size = parse_image_size(image_size)
    config = LevitConfig.from_dict(model.config.to_dict(), image_size=size)
    change = GridChange.between(model.config, config, mode)
    if not change.changes:
        return model
    new_grids = {spec.key: spec.grid for spec in block_plan(config) if spec.is_attention}
    grids = {id(ref.module.attention_biases): (ref.module.grid, new_grids[ref.key])
             for ref in model_blocks(model.levit.stages)
             if isinstance(ref.module, _BiasedAttention)}  # bias table -> (old, new) key grid
    tables = 0

    def resize(old: Any, new: Any) -> np.ndarray:
        nonlocal tables
        old_grid, new_grid = grids.get(id(old), (None, None))
        if old_grid == new_grid:
            return np.asarray(old)
        tables += 1
        return resize_bias_table(np.asarray(old), old_grid, new_grid, mode)

    resized = rebuild(model, config, transform=resize)
    logger.warning(change.message(tables))
    return resized


__all__ = ["GridChange", "ImageSize", "attention_layers", "change_resolution", "format_size",
           "image_hw", "image_size_argument", "parse_image_size"]
