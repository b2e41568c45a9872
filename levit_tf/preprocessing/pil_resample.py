"""Pillow-exact separable resampling (BICUBIC / BILINEAR) as pure TensorFlow ops.

Reproduces ``PIL.Image.resize`` for 8-bit images bit for bit, following
Pillow's ``libImaging/Resample.c``:

* per output pixel ``xx``: ``center = (xx + 0.5) * scale`` with ``scale = in / out``;
  when downsampling the filter support is stretched by ``scale``;
* taps ``[xmin, xmin + xmax)`` with ``xmin = int(center - support + 0.5)``
  (clamped to 0) and ``xmax = min(in, int(center + support + 0.5)) - xmin``;
* weights ``filter((x + xmin - center + 0.5) / filterscale)`` summed in order,
  normalised by that sum, then converted to fixed point with
  ``PRECISION_BITS = 22`` (round half away from zero);
* horizontal pass first, vertical pass second, each accumulating in int32
  from ``1 << 21`` and clipping ``acc >> 22`` to ``[0, 255]``.

All coefficient arithmetic runs in float64 with the same operation order as
the C code, so the fixed-point coefficients are identical; the integer
accumulation is exact. Output pixels outside the resized image (when a crop
is larger than the resized image) are 0, like Hugging Face's zero padding.
"""

from __future__ import annotations

import tensorflow as tf

PRECISION_BITS = 22

#: PIL resample codes that are implemented here (``PIL.Image.Resampling``).
BILINEAR = 2
BICUBIC = 3


def _bicubic(x: tf.Tensor) -> tf.Tensor:
    """Pillow's ``bicubic_filter`` (a = -0.5) on float64 ``x``."""
    x = tf.abs(x)
    near = ((1.5 * x - 2.5) * x) * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * -0.5
    zero = tf.zeros_like(x)
    return tf.where(x < 1.0, near, tf.where(x < 2.0, far, zero))


def _bilinear(x: tf.Tensor) -> tf.Tensor:
    """Pillow's ``bilinear_filter`` (triangle) on float64 ``x``."""
    x = tf.abs(x)
    return tf.where(x < 1.0, 1.0 - x, tf.zeros_like(x))


_FILTERS = {BICUBIC: (_bicubic, 2.0), BILINEAR: (_bilinear, 1.0)}


def check_resample(resample: int) -> int:
    """Validates a PIL resample code and returns it as ``int``."""
    if int(resample) not in _FILTERS:
        raise ValueError(
            f"resample={resample!r} is not supported; PIL-exact resampling is implemented for "
            f"BICUBIC ({BICUBIC}) and BILINEAR ({BILINEAR})."
        )
    return int(resample)


def _ordered_row_sum(w: tf.Tensor) -> tf.Tensor:
    """Sums ``w`` (n, k) over k strictly left to right, like Pillow's ``ww += w``."""
    k = tf.shape(w)[1]

    def body(j: tf.Tensor, acc: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return j + 1, acc + w[:, j]

    _, total = tf.while_loop(
        lambda j, _: j < k, body, (tf.constant(0), tf.zeros_like(w[:, 0])), parallel_iterations=1
    )
    return total


def resample_coefficients(
    in_size: tf.Tensor, out_size: tf.Tensor, positions: tf.Tensor, resample: int = BICUBIC
) -> tuple[tf.Tensor, tf.Tensor]:
    """Fixed-point filter taps for selected output pixels of a 1-D resize.

    Args:
        in_size: scalar int, input length.
        out_size: scalar int, resized length.
        positions: (n,) int32 output indices to compute; indices outside
            ``[0, out_size)`` get all-zero weights (they become padding).
        resample: PIL resample code (BICUBIC or BILINEAR).

    Returns:
        ``starts`` (n,) int32 first input index of each output pixel and
        ``weights`` (n, ksize) int32 coefficients scaled by ``2**22``.
    """
    filt, base_support = _FILTERS[check_resample(resample)]
    in_i = tf.cast(in_size, tf.int32)
    in_f = tf.cast(in_size, tf.float64)
    out_f = tf.cast(out_size, tf.float64)
    scale = in_f / out_f
    filterscale = tf.maximum(scale, 1.0)
    support = base_support * filterscale
    ksize = tf.cast(tf.math.ceil(support), tf.int32) * 2 + 1
    inv = 1.0 / filterscale

    valid = (positions >= 0) & (positions < tf.cast(out_size, tf.int32))
    pos = tf.clip_by_value(positions, 0, tf.cast(out_size, tf.int32) - 1)
    center = (tf.cast(pos, tf.float64) + 0.5) * scale
    # C casts truncate toward zero; negatives are clamped to 0 right after.
    xmin = tf.maximum(tf.cast(center - support + 0.5, tf.int32), 0)
    xmax = tf.minimum(tf.cast(center + support + 0.5, tf.int32), in_i) - xmin

    taps = tf.range(ksize)[tf.newaxis, :]
    used = taps < xmax[:, tf.newaxis]
    src = tf.cast(taps + xmin[:, tf.newaxis], tf.float64)
    w = filt(((src - center[:, tf.newaxis]) + 0.5) * inv)
    w = tf.where(used, w, tf.zeros_like(w))
    ww = _ordered_row_sum(w)[:, tf.newaxis]
    w = tf.where(ww != 0.0, w / tf.where(ww != 0.0, ww, tf.ones_like(ww)), w)
    scaled = w * float(1 << PRECISION_BITS)
    fixed = tf.cast(tf.where(w < 0.0, scaled - 0.5, scaled + 0.5), tf.int32)
    fixed = tf.where(valid[:, tf.newaxis], fixed, tf.zeros_like(fixed))
    return xmin, fixed


def _apply_pass(
    image: tf.Tensor, starts: tf.Tensor, weights: tf.Tensor, limit: tf.Tensor, axis: int
) -> tf.Tensor:
    """One Pillow pass along ``axis`` of int32 ``image`` (H, W, C); returns int32 in [0, 255].

    ``limit`` is the image length along ``axis``; taps past it carry zero weight.
    """
    ksize = tf.shape(weights)[1]
    wshape = [-1, 1] if axis == 0 else [1, -1, 1]
    if axis == 0:
        out_shape = tf.stack([tf.size(starts), tf.shape(image)[1], tf.shape(image)[2]])
    else:
        out_shape = tf.stack([tf.shape(image)[0], tf.size(starts), tf.shape(image)[2]])
    acc0 = tf.fill(out_shape, tf.constant(1 << (PRECISION_BITS - 1), tf.int32))

    def body(j: tf.Tensor, acc: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        idx = tf.minimum(starts + j, limit - 1)
        coef = tf.reshape(weights[:, j], wshape + ([1] if axis == 0 else []))
        return j + 1, acc + tf.gather(image, idx, axis=axis) * coef

    _, acc = tf.while_loop(lambda j, _: j < ksize, body, (tf.constant(0), acc0))
    return tf.clip_by_value(tf.bitwise.right_shift(acc, PRECISION_BITS), 0, 255)


def pil_resize_crop(
    image: tf.Tensor,
    resized_hw: tuple[tf.Tensor, tf.Tensor],
    crop_hw: tuple[int | tf.Tensor, int | tf.Tensor] | None = None,
    resample: int = BICUBIC,
) -> tf.Tensor:
    """PIL-exact resize to ``resized_hw`` followed by a centre crop (HF semantics).

    Only the output pixels inside the crop are computed. A crop larger than the
    resized image is zero padded as in ``transformers.image_transforms.center_crop``
    (offset ``(resized - crop) // 2``, floor division).

    Args:
        image: (H, W, C) uint8 (or int32 in [0, 255]) tensor.
        resized_hw: target (height, width) of the resize, scalar int tensors.
        crop_hw: (height, width) of the centre crop; ``None`` keeps the full resize.
        resample: PIL resample code (BICUBIC or BILINEAR).

    Returns:
        (crop_h, crop_w, C) uint8 tensor.
    """
    image = tf.convert_to_tensor(image)
    if image.dtype not in (tf.uint8, tf.int32):
        raise TypeError(f"pil_resize_crop expects a uint8 image tensor, got dtype {image.dtype.name}")
    out_h = tf.cast(resized_hw[0], tf.int32)
    out_w = tf.cast(resized_hw[1], tf.int32)
    tf.debugging.assert_positive(out_h, message="resize height must be > 0")
    tf.debugging.assert_positive(out_w, message="resize width must be > 0")
    crop_h, crop_w = (out_h, out_w) if crop_hw is None else crop_hw
    crop_h = tf.cast(crop_h, tf.int32)
    crop_w = tf.cast(crop_w, tf.int32)
    in_h = tf.shape(image)[0]
    in_w = tf.shape(image)[1]

    rows = tf.range(crop_h) + tf.math.floordiv(out_h - crop_h, 2)
    cols = tf.range(crop_w) + tf.math.floordiv(out_w - crop_w, 2)
    y0, wy = resample_coefficients(in_h, out_h, rows, resample)
    x0, wx = resample_coefficients(in_w, out_w, cols, resample)

    # Horizontal pass only over the source rows the vertical pass reads.
    first = tf.reduce_min(y0)
    last = tf.minimum(tf.reduce_max(y0) + tf.shape(wy)[1], in_h)
    pixels = tf.cast(image[first:last], tf.int32)
    pixels = _apply_pass(pixels, x0, wx, in_w, axis=1)
    pixels = _apply_pass(pixels, y0 - first, wy, last - first, axis=0)
    return tf.cast(pixels, tf.uint8)


def pil_resize(image: tf.Tensor, size_hw: tuple[tf.Tensor, tf.Tensor], resample: int = BICUBIC):
    """PIL-exact ``Image.resize((w, h), resample)`` of an (H, W, C) uint8 tensor."""
    return pil_resize_crop(image, size_hw, None, resample)
