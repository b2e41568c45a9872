"""The exactness arguments behind the fast resampling / normalization paths."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from levit_tf.preprocessing import LevitProcessorConfig, pil_resize
from levit_tf.preprocessing.pil_resample import _ordered_row_sum, resample_coefficients
from levit_tf.preprocessing.transforms import _rescale_normalize_arith, normalize_table


def test_ordered_row_sum_is_sequential():
    """cumsum's last column equals a strict left-to-right float64 sum (not a tree sum)."""
    rng = np.random.default_rng(1)
    # Mixed magnitudes make the float64 result depend on the summation order.
    w = rng.standard_normal((200, 37)) * 10.0 ** rng.integers(-8, 9, (200, 37))
    expected = np.zeros(200)
    for j in range(w.shape[1]):
        expected = expected + w[:, j]
    pairwise = np.sum(w, axis=1)
    assert not np.array_equal(pairwise, expected)  # the data does tell orders apart
    np.testing.assert_array_equal(_ordered_row_sum(tf.constant(w)).numpy(), expected)


@pytest.mark.parametrize(("in_w", "out_w"), [(3000, 40), (4000, 9)])
def test_long_filters_are_exact(in_w, out_w):
    """Hundreds of taps (downscale > 64x): the int32 accumulation stays exact (no overflow)."""
    _, weights = resample_coefficients(in_w, out_w, tf.range(out_w))
    assert weights.shape[1] > 258
    rng = np.random.default_rng(2)
    # Bright, smooth content maximises the partial sums.
    array = np.clip(200 + rng.integers(-55, 56, (6, in_w, 3)), 0, 255).astype(np.uint8)
    for resample in (PIL.Image.Resampling.BICUBIC, PIL.Image.Resampling.BILINEAR):
        expected = np.asarray(PIL.Image.fromarray(array).resize((out_w, 6), resample))
        got = pil_resize(tf.constant(array), (6, out_w), int(resample)).numpy()
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"do_normalize": False},
        {"do_rescale": False},
        {"image_mean": [0.5] * 3, "image_std": [0.3] * 3},
    ],
)
def test_normalize_table_equals_the_arithmetic(overrides):
    config = LevitProcessorConfig.from_dict(LevitProcessorConfig().to_dict(), **overrides)
    levels = tf.constant(np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1))
    arith = _rescale_normalize_arith(levels, config).numpy()
    np.testing.assert_array_equal(normalize_table(config), arith)
