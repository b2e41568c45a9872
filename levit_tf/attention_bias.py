"""Relative-position index of LeViT's learned attention biases.

Each attention layer learns a table ``attention_biases`` of shape (heads, H*W): one scalar per head
for every absolute grid offset (|dy|, |dx|) between a query and a key. Entry ``dy * W + dx`` holds
offset (dy, dx); this is the first-appearance order in which facebookresearch and HF enumerate the
offsets, and timm's analytic ``|dy| * W + |dx|``. The index maps every (query, key) pair to its
table entry, so ``take(attention_biases, index, axis=1)`` is the (heads, N_q, N_k) bias.
"""

from __future__ import annotations

import numpy as np


def query_grid(key_grid: tuple[int, int], stride: int) -> tuple[int, int]:
    """Grid of the queries that a stride-``stride`` subsample keeps: ceil(side / stride)."""
    return tuple((side - 1) // stride + 1 for side in key_grid)  # type: ignore[return-value]


def attention_bias_index(key_grid: tuple[int, int], stride: int = 1) -> np.ndarray:
    """(N_q, N_k) int32 table index for queries at every ``stride``-th key grid position.

    Args:
        key_grid: (height, width) of the key grid; N_k = height * width.
        stride: 1 for self-attention, 2 for the shrinking attention.
    """
    height, width = key_grid
    key_y, key_x = (a.reshape(-1) for a in np.meshgrid(
        np.arange(height), np.arange(width), indexing="ij"))
    query_y, query_x = (a.reshape(-1) for a in np.meshgrid(
        np.arange(0, height, stride), np.arange(0, width, stride), indexing="ij"))
    dy = np.abs(query_y[:, None] - key_y[None, :])
    dx = np.abs(query_x[:, None] - key_x[None, :])
    return (dy * width + dx).astype(np.int32)


def num_bias_offsets(key_grid: tuple[int, int]) -> int:
    """Length of the bias table for a key grid: every (|dy|, |dx|) occurs."""
    return key_grid[0] * key_grid[1]
