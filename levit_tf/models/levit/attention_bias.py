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


# ----------------------------------------------------------------------------- resizing tables
#: How ``resize_bias_table`` interpolates: PyTorch ``F.interpolate`` with ``align_corners=False``
#: and no antialiasing (timm's resampling of position embeddings uses bicubic).
INTERPOLATION_MODES = ("bicubic", "bilinear")
#: PyTorch's cubic-convolution coefficient (Keys' kernel with a = -0.75, as OpenCV).
CUBIC_A = -0.75


def _cubic_weights(t: np.ndarray, a: float = CUBIC_A) -> np.ndarray:
    """(n,) fractional positions in [0, 1) -> (n, 4) weights of taps floor-1 .. floor+2.

    PyTorch's ``get_cubic_upsample_coefficients``: the kernel is
    ((a + 2)|x| - (a + 3))|x|^2 + 1 for |x| <= 1 and a(|x|^3 - 5|x|^2 + 8|x| - 4) for 1 < |x| < 2.
    """

    def near(x: np.ndarray) -> np.ndarray:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: np.ndarray) -> np.ndarray:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)


def interpolation_matrix(in_size: int, out_size: int, mode: str = "bicubic") -> np.ndarray:
    """(out_size, in_size) float64 matrix R with ``R @ x`` = 1-D ``F.interpolate(x, out_size,
    mode, align_corners=False)`` of a length-``in_size`` signal.

    Half-pixel centers: output i samples input position (i + 0.5) * in/out - 0.5. Bicubic uses
    four taps with indices clamped to [0, in_size) (edge replication); bilinear clamps the
    position to >= 0 and uses two taps. Equal sizes give the identity.
    """
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"interpolation mode must be one of {INTERPOLATION_MODES}, got {mode!r}")
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be positive, got in_size={in_size}, out_size={out_size}")
    position = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
    rows = np.arange(out_size)
    matrix = np.zeros((out_size, in_size))
    if mode == "bilinear":
        position = np.maximum(position, 0.0)
        low = np.minimum(np.floor(position).astype(np.int64), in_size - 1)
        fraction = np.clip(position - low, 0.0, 1.0)
        np.add.at(matrix, (rows, low), 1.0 - fraction)
        np.add.at(matrix, (rows, np.minimum(low + 1, in_size - 1)), fraction)
        return matrix
    low = np.floor(position).astype(np.int64)
    weights = _cubic_weights(position - low)
    for tap in range(4):
        np.add.at(matrix, (rows, np.clip(low - 1 + tap, 0, in_size - 1)), weights[:, tap])
    return matrix


def resize_bias_table(table: np.ndarray, from_grid: tuple[int, int], to_grid: tuple[int, int],
                      mode: str = "bicubic") -> np.ndarray:
    """Resizes one layer's bias table to another key grid.

    Args:
        table: (heads, H * W); entry dy * W + dx is offset (|dy|, |dx|), so each head's row is
            an (H, W) image of biases over the offsets.
        from_grid: (H, W), the key grid the table was learned on.
        to_grid: (H', W'), the new key grid.
        mode: 'bicubic' (default) or 'bilinear', computed in float64 as PyTorch's
            ``F.interpolate(table.reshape(1, heads, H, W), (H', W'), mode=mode,
            align_corners=False)`` does.

    Returns:
        (heads, H' * W') in ``table``'s dtype.
    """
    table = np.asarray(table)
    height, width = (int(s) for s in from_grid)
    if table.ndim != 2 or table.shape[1] != height * width:
        raise ValueError(f"bias table of shape {table.shape} does not hold a {height}x{width} "
                         f"grid's offsets (expected (heads, {height * width}))")
    new_height, new_width = (int(s) for s in to_grid)
    rows = interpolation_matrix(height, new_height, mode)
    cols = interpolation_matrix(width, new_width, mode)
    images = table.astype(np.float64).reshape(-1, height, width)
    resized = np.einsum("ph,nhw,qw->npq", rows, images, cols)
    return resized.reshape(table.shape[0], new_height * new_width).astype(table.dtype)
