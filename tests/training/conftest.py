"""Shared fixtures: a tiny LeViT config and a learnable synthetic image task."""

from __future__ import annotations

import numpy as np
import pytest

from levit_tf import LevitConfig

# Two stages on a 64 px input: token grids 4x4 then 2x2; a training step takes milliseconds.
TINY = dict(hidden_sizes=[32, 48], num_attention_heads=[2, 3], depths=[1, 1], key_dim=[8, 8],
            mlp_ratio=[2, 2], attention_ratio=[2, 2], image_size=64, num_labels=4)
NUM_CLASSES = TINY["num_labels"]


def make_tiny_config(**overrides) -> LevitConfig:
    return LevitConfig(**{**TINY, **overrides})


@pytest.fixture(scope="session")
def tiny_config():
    """Factory: ``tiny_config(**overrides)`` -> LevitConfig."""
    return make_tiny_config


def synthetic_task(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 64, 64, 3) float32 noise with a bright square in the quadrant named by the label."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % NUM_CLASSES
    rng.shuffle(labels)
    pixels = rng.normal(0, 0.5, (n, 64, 64, 3)).astype(np.float32)
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        pixels[i, 32 * row + 8: 32 * row + 24, 32 * col + 8: 32 * col + 24] += 2.0
    return pixels, labels.astype(np.int32)


@pytest.fixture(scope="session")
def task() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_task(128)
