"""Bias-table resizing math: numpy float64 vs PyTorch's F.interpolate (align_corners=False)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from levit_tf.models.levit.attention_bias import interpolation_matrix, resize_bias_table

SIZES = [((14, 14), (16, 16)), ((14, 14), (10, 10)), ((14, 14), (18, 18)), ((7, 7), (5, 5)),
         ((4, 4), (3, 3)), ((4, 4), (5, 5)), ((14, 14), (12, 16)), ((12, 16), (14, 14)),
         ((1, 1), (3, 2)), ((3, 5), (11, 2)), ((2, 2), (1, 1))]


@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
@pytest.mark.parametrize("grid,new_grid", SIZES)
def test_matches_torch_interpolate(grid, new_grid, mode):
    table = np.random.default_rng(0).normal(size=(3, grid[0] * grid[1]))
    expected = F.interpolate(torch.from_numpy(table).reshape(1, 3, *grid), size=new_grid,
                             mode=mode, align_corners=False).reshape(3, -1).numpy()
    resized = resize_bias_table(table, grid, new_grid, mode)
    assert resized.shape == (3, new_grid[0] * new_grid[1])
    np.testing.assert_allclose(resized, expected, rtol=0, atol=1e-12)


def test_float32_tables_stay_float32_and_match_torch():
    table = np.random.default_rng(1).normal(size=(4, 196)).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(table).reshape(1, 4, 14, 14), size=(9, 9),
                             mode="bicubic", align_corners=False).reshape(4, -1).numpy()
    resized = resize_bias_table(table, (14, 14), (9, 9))
    assert resized.dtype == np.float32
    # torch computes in float32 (its error ~1e-6 of the table scale); ours in float64
    np.testing.assert_allclose(resized, expected, rtol=0, atol=1e-5 * np.abs(table).max())


@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
def test_same_size_is_the_identity(mode):
    np.testing.assert_array_equal(interpolation_matrix(7, 7, mode), np.eye(7))


def test_rows_are_a_partition_of_unity():
    for size in (1, 3, 10, 18):
        assert np.allclose(interpolation_matrix(14, size).sum(axis=1), 1.0)


def test_offset_table_layout_is_dy_times_width_plus_dx():
    # a table that depends on dx only must stay dx-only after a non-square resize
    grid = (6, 4)
    table = np.tile(np.arange(4.0), 6)[None]  # entry dy * 4 + dx = dx
    resized = resize_bias_table(table, grid, (3, 8)).reshape(3, 8)
    np.testing.assert_allclose(resized, np.broadcast_to(resized[0], (3, 8)), atol=1e-12)
    assert not np.allclose(resized[0], resized[0, 0])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="'nearest'"):
        interpolation_matrix(4, 5, "nearest")
    with pytest.raises(ValueError, match=r"\(2, 15\).*5x4"):
        resize_bias_table(np.zeros((2, 15)), (5, 4), (6, 6))
    with pytest.raises(ValueError, match="out_size=0"):
        interpolation_matrix(4, 0)
