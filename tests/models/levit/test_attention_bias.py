"""The bias index equals facebookresearch/HF's first-appearance construction."""

import numpy as np
import pytest

from levit_tf.models.levit.attention_bias import attention_bias_index, num_bias_offsets, query_grid


def first_appearance_index(grid: tuple[int, int], stride: int) -> tuple[np.ndarray, int]:
    """Brute force, as facebookresearch's levit.py numbers offsets (generalized to H x W)."""
    keys = [(y, x) for y in range(grid[0]) for x in range(grid[1])]
    queries = [(y, x) for y in range(0, grid[0], stride) for x in range(0, grid[1], stride)]
    offsets: dict[tuple[int, int], int] = {}
    index = []
    for qy, qx in queries:
        for ky, kx in keys:
            offsets.setdefault((abs(qy - ky), abs(qx - kx)), len(offsets))
            index.append(offsets[(abs(qy - ky), abs(qx - kx))])
    return np.array(index).reshape(len(queries), len(keys)), len(offsets)


@pytest.mark.parametrize("grid", [(14, 14), (7, 7), (4, 4), (1, 1), (10, 6), (3, 9)])
@pytest.mark.parametrize("stride", [1, 2])
def test_index_matches_first_appearance_order(grid, stride):
    expected, offsets = first_appearance_index(grid, stride)
    index = attention_bias_index(grid, stride)
    assert index.dtype == np.int32
    np.testing.assert_array_equal(index, expected)
    assert num_bias_offsets(grid) == offsets
    assert index.shape[0] == query_grid(grid, stride)[0] * query_grid(grid, stride)[1]


def test_query_grid_is_ceil():
    assert query_grid((14, 14), 2) == (7, 7)
    assert query_grid((7, 7), 2) == (4, 4)
    assert query_grid((9, 4), 2) == (5, 2)
