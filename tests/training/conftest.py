"""Shared fixtures: a tiny LeViT config and a learnable synthetic image task."""

from __future__ import annotations

import numpy as np
import pytest

from levit_tf import LevitConfig

# Two stages on a 32 px input (token grids 2x2 then 1x1): graphs trace in seconds.
TINY = dict(hidden_sizes=[16, 24], num_attention_heads=[2, 3], depths=[1, 1], key_dim=[8, 8],
            mlp_ratio=[2, 2], attention_ratio=[2, 2], image_size=32, num_labels=4)
SIZE = TINY["image_size"]
NUM_CLASSES = TINY["num_labels"]


def make_tiny_config(**overrides) -> LevitConfig:
    return LevitConfig(**{**TINY, **overrides})


@pytest.fixture(scope="session")
def tiny_config():
    """Factory: ``tiny_config(**overrides)`` -> LevitConfig."""
    return make_tiny_config


def synthetic_task(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, S, S, 3) float32 noise with a bright square in the quadrant named by the label."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % NUM_CLASSES
    rng.shuffle(labels)
    pixels = rng.normal(0, 0.5, (n, SIZE, SIZE, 3)).astype(np.float32)
    half, quarter = SIZE // 2, SIZE // 4
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        pixels[i, half * row + quarter // 2: half * row + half - quarter // 2,
               half * col + quarter // 2: half * col + half - quarter // 2] += 2.0
    return pixels, labels.astype(np.int32)


@pytest.fixture(scope="session")
def task() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_task(128)
