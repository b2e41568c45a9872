"""The block plan: every LeViT block a config describes, in order, with its kind and sizes.

Both models are built from it: ``stages_from_config`` (the training model's ``LevitStage`` list)
and ``LevitForInference`` (the folded deployment graph), and the folded model finds the block it
folds by its plan entry (stage, index), never by position.

A stage is ``depth`` x (residual attention, residual MLP) on one token grid; every stage but the
last ends with a shrinking ("subsample") attention and its residual MLP (HF's ``down_ops``: key
dim ``key_dim[0]``, ``hidden_sizes[s] // key_dim[0]`` heads, attention ratio 4, MLP ratio 2).
"""

from __future__ import annotations

import dataclasses
from typing import Any

ATTENTION = "attention"
MLP = "mlp"
SUBSAMPLE_ATTENTION = "subsample_attention"
SUBSAMPLE_MLP = "subsample_mlp"
BLOCK_KINDS = (ATTENTION, MLP, SUBSAMPLE_ATTENTION, SUBSAMPLE_MLP)

#: HF ``down_ops`` = ["Subsample", key_dim[0], hidden_sizes[s] // key_dim[0], 4, 2, 2]:
#: the shrinking attention's value/key ratio and its MLP's hidden/width ratio.
DOWNSAMPLE_ATTENTION_RATIO = 4
DOWNSAMPLE_MLP_RATIO = 2
DOWNSAMPLE_STRIDE = 2


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One block: ``stages[stage].blocks[index]`` of the training model (HF
    ``encoder.stages.{stage}.layers.{index}``).

    ``grid`` is the token grid the block reads; attentions have ``key_dim`` / ``num_heads`` /
    ``attention_ratio``, MLPs ``hidden_dim``. The subsample attention maps ``input_dim`` on
    ``grid`` to ``output_dim`` on the stride-2 grid and is the only block that is not residual.
    """

    stage: int
    index: int
    kind: str
    grid: tuple[int, int]
    input_dim: int
    output_dim: int
    key_dim: int = 0
    num_heads: int = 0
    attention_ratio: int = 0
    hidden_dim: int = 0

    def __post_init__(self) -> None:
        if self.kind not in BLOCK_KINDS:
            raise ValueError(f"block kind must be one of {BLOCK_KINDS}, got {self.kind!r}")

    @property
    def is_attention(self) -> bool:
        return self.kind in (ATTENTION, SUBSAMPLE_ATTENTION)

    @property
    def residual(self) -> bool:
        return self.kind != SUBSAMPLE_ATTENTION

    @property
    def stride(self) -> int:
        return DOWNSAMPLE_STRIDE if self.kind == SUBSAMPLE_ATTENTION else 1

    @property
    def key(self) -> tuple[int, int]:
        """(stage, index): how the two models' blocks are paired."""
        return self.stage, self.index


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """The arguments of one ``LevitStage``; ``blocks()`` lists its blocks."""

    hidden_size: int
    key_dim: int
    depth: int
    num_heads: int
    attention_ratio: int
    mlp_ratio: int
    grid: tuple[int, int]
    downsample_dim: int | None = None
    downsample_key_dim: int | None = None
    downsample_heads: int | None = None
    downsample_attention_ratio: int = DOWNSAMPLE_ATTENTION_RATIO
    downsample_mlp_ratio: int = DOWNSAMPLE_MLP_RATIO

    def blocks(self, stage: int = 0) -> list[BlockSpec]:
        """The stage's blocks in order (``stage``: the stage's index in the model)."""
        width, grid = self.hidden_size, tuple(self.grid)
        out: list[BlockSpec] = []

        def add(kind: str, **sizes: Any) -> None:
            out.append(BlockSpec(stage, len(out), kind, grid, **sizes))

        for _ in range(self.depth):
            add(ATTENTION, input_dim=width, output_dim=width, key_dim=self.key_dim,
                num_heads=self.num_heads, attention_ratio=self.attention_ratio)
            add(MLP, input_dim=width, output_dim=width, hidden_dim=width * self.mlp_ratio)
        if self.downsample_dim is not None:
            down = self.downsample_dim
            add(SUBSAMPLE_ATTENTION, input_dim=width, output_dim=down,
                key_dim=self.downsample_key_dim, num_heads=self.downsample_heads,
                attention_ratio=self.downsample_attention_ratio)
            grid = tuple((s - 1) // DOWNSAMPLE_STRIDE + 1 for s in grid)
            add(SUBSAMPLE_MLP, input_dim=down, output_dim=down,
                hidden_dim=down * self.downsample_mlp_ratio)
        return out


def stage_plan(config: Any) -> list[StageSpec]:
    """The ``StageSpec`` of each stage of a LevitConfig."""
    grids = config.stage_grids()
    stages = []
    for i in range(config.num_stages):
        last = i == config.num_stages - 1
        stages.append(StageSpec(
            hidden_size=config.hidden_sizes[i], key_dim=config.key_dim[i], depth=config.depths[i],
            num_heads=config.num_attention_heads[i], attention_ratio=config.attention_ratio[i],
            mlp_ratio=config.mlp_ratio[i], grid=tuple(grids[i]),
            downsample_dim=None if last else config.hidden_sizes[i + 1],
            downsample_key_dim=None if last else config.key_dim[0],
            downsample_heads=None if last else config.down_heads(i)))
    return stages


def block_plan(config: Any) -> list[BlockSpec]:
    """Every block of a LevitConfig, stage by stage."""
    return [block for s, stage in enumerate(stage_plan(config)) for block in stage.blocks(s)]


__all__ = [
    "ATTENTION", "BLOCK_KINDS", "DOWNSAMPLE_ATTENTION_RATIO", "DOWNSAMPLE_MLP_RATIO", "MLP",
    "SUBSAMPLE_ATTENTION", "SUBSAMPLE_MLP", "BlockSpec", "StageSpec", "block_plan", "stage_plan",
]
