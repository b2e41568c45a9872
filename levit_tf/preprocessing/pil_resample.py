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
* two passes, each accumulating in int32 from ``1 << 21`` and clipping
  ``acc >> 22`` to ``[0, 255]`` (the uint8 intermediate is what the second pass
  reads). The horizontal pass runs first, except in Pillow >= 13 which runs the
  vertical pass first when both axes change and the height shrinks by more than
  twice the width reduction (python-pillow/Pillow#9549, read off the compiled
  ``ImagingResampleInner``); both rules are implemented.

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
    # divide_no_nan: a true division that grappler cannot turn into x * (1 / const).
    scale = tf.math.divide_no_nan(in_f, out_f)
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
    w = tf.where(ww != 0.0, tf.math.divide_no_nan(w, ww), w)
    scaled = w * float(1 << PRECISION_BITS)
    fixed = tf.cast(tf.where(w < 0.0, scaled - 0.5, scaled + 0.5), tf.int32)
    fixed = tf.where(valid[:, tf.newaxis], fixed, tf.zeros_like(fixed))
    return xmin, fixed


#: Longest filter the exact split-float32 matmul handles (see ``_exact_matmul``).
MAX_TAPS = 258
#: Output pixels per block of the banded matmul.
BLOCK = 8


def _exact_matmul(m: tf.Tensor, x: tf.Tensor, taps: tf.Tensor) -> tf.Tensor:
    """Exact int32 ``m @ x`` for int32 coefficients ``m`` and integer-valued float32 ``x``.

    For filters of at most ``MAX_TAPS`` non-zero taps per row of ``m``, the coefficients
    are split as ``hi * 256 + lo`` with ``lo`` in [0, 256): every partial sum of
    ``pixel * lo`` (<= 255 * 255 * MAX_TAPS) and of ``pixel * hi`` (< 255 * 1.3 * 2**14)
    is an integer below 2**24, so two float32 matmuls are exact in any summation order.
    Longer filters use one float64 matmul (exact below 2**53).
    """

    def split_f32() -> tf.Tensor:
        hi = tf.math.floordiv(m, 256)
        lo = m - hi * 256
        a = tf.matmul(tf.cast(hi, tf.float32), x)
        b = tf.matmul(tf.cast(lo, tf.float32), x)
        return tf.cast(a, tf.int32) * 256 + tf.cast(b, tf.int32)

    def direct_f64() -> tf.Tensor:
        return tf.cast(tf.matmul(tf.cast(m, tf.float64), tf.cast(x, tf.float64)), tf.int32)

    return tf.cond(taps <= MAX_TAPS, split_f32, direct_f64)


def _banded_pass(x: tf.Tensor, starts: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """One Pillow pass along axis 0: float32 (in_size, M) -> float32 (n, M) in [0, 255].

    Output pixels are processed in blocks of ``BLOCK``; each block reads one contiguous
    span of input rows (a fast row gather), so the work is a batched matmul over the
    band instead of a dense one. Values are rounded and clipped like Pillow's uint8
    intermediate.
    """
    in_size = tf.shape(x)[0]
    n = tf.shape(weights)[0]
    k = tf.shape(weights)[1]
    nb = (n + BLOCK - 1) // BLOCK
    pad = nb * BLOCK - n
    starts = tf.concat([starts, tf.fill([pad], starts[-1])], 0)
    weights = tf.pad(weights, [[0, pad], [0, 0]])
    block_starts = tf.reshape(starts, [nb, BLOCK])
    span0 = block_starts[:, 0]
    span = tf.reduce_max(block_starts[:, -1] - span0) + k
    # Per-block coefficient matrices (nb, BLOCK, span).
    cols = (block_starts - span0[:, tf.newaxis])[:, :, tf.newaxis] + tf.range(k)
    blocks = tf.broadcast_to(tf.range(nb)[:, tf.newaxis, tf.newaxis], tf.shape(cols))
    rows = tf.broadcast_to(tf.range(BLOCK)[tf.newaxis, :, tf.newaxis], tf.shape(cols))
    index = tf.stack([tf.reshape(t, [-1]) for t in (blocks, rows, cols)], axis=1)
    mats = tf.scatter_nd(index, tf.reshape(weights, [-1]), tf.stack([nb, BLOCK, span]))
    # Input spans (nb, span, M); rows past the image end have zero weight.
    idx = tf.minimum(span0[:, tf.newaxis] + tf.range(span), in_size - 1)
    acc = _exact_matmul(mats, tf.gather(x, idx), k) + (1 << (PRECISION_BITS - 1))
    out = tf.clip_by_value(tf.bitwise.right_shift(acc, PRECISION_BITS), 0, 255)
    return tf.cast(tf.reshape(out, tf.stack([nb * BLOCK, -1]))[:n], tf.float32)


def _pillow_vertical_first_rule() -> bool:
    """Whether the installed Pillow (>= 13, python-pillow/Pillow#9549) may go vertical-first."""
    try:
        import PIL
    except ImportError:  # pragma: no cover - pillow is a dependency
        return True
    return int(PIL.__version__.split(".")[0]) >= 13


def _vertical_first(in_hw, out_hw, rule: bool) -> tf.Tensor:
    """Pillow >= 13 pass order: vertical first iff both axes change and
    ``in_h - out_h > 0`` and ``in_h - out_h > 2 * (in_w - out_w)``; older Pillow: never."""
    if not rule:
        return tf.constant(False)
    (in_h, in_w), (out_h, out_w) = in_hw, out_hw
    dy = in_h - out_h
    return (in_w != out_w) & (dy > 0) & (dy > 2 * (in_w - out_w))


def pil_resize_crop(
    image: tf.Tensor,
    resized_hw: tuple[tf.Tensor, tf.Tensor],
    crop_hw: tuple[int | tf.Tensor, int | tf.Tensor] | None = None,
    resample: int = BICUBIC,
    pillow13_pass_order: bool | None = None,
) -> tf.Tensor:
    """PIL-exact resize to ``resized_hw`` followed by a centre crop (HF semantics).

    Only the output pixels inside the crop are computed (each output pixel of a
    Pillow pass depends on its own taps only, so this is exact). A crop larger than
    the resized image is zero padded as in ``transformers.image_transforms.center_crop``
    (offset ``(resized - crop) // 2`` with floor division).

    Args:
        image: (H, W, C) uint8 tensor (int32 in [0, 255] also accepted).
        resized_hw: target (height, width) of the resize, scalar ints.
        crop_hw: (height, width) of the centre crop; ``None`` keeps the full resize.
        resample: PIL resample code (BICUBIC or BILINEAR).
        pillow13_pass_order: reproduce Pillow >= 13's choice of running the vertical
            pass first for strong height reductions; ``None`` follows the installed Pillow.

    Returns:
        (crop_h, crop_w, C) uint8 tensor.
    """
    image = tf.convert_to_tensor(image)
    if image.dtype not in (tf.uint8, tf.int32):
        raise TypeError(
            f"pil_resize_crop expects a uint8 image tensor, got dtype {image.dtype.name}"
        )
    if image.shape.rank is not None and image.shape.rank != 3:
        raise ValueError(f"pil_resize_crop expects an (H, W, C) image, got shape {image.shape}")
    if pillow13_pass_order is None:
        pillow13_pass_order = _pillow_vertical_first_rule()
    out_h = tf.cast(resized_hw[0], tf.int32)
    out_w = tf.cast(resized_hw[1], tf.int32)
    checks = [
        tf.debugging.assert_positive(out_h, message="resize height must be > 0"),
        tf.debugging.assert_positive(out_w, message="resize width must be > 0"),
        tf.debugging.assert_positive(tf.size(image), message="image must not be empty"),
    ]
    with tf.control_dependencies(checks):
        in_h = tf.shape(image)[0]
        in_w = tf.shape(image)[1]
    crop_h, crop_w = (out_h, out_w) if crop_hw is None else crop_hw
    crop_h = tf.cast(crop_h, tf.int32)
    crop_w = tf.cast(crop_w, tf.int32)

    rows = tf.range(crop_h) + tf.math.floordiv(out_h - crop_h, 2)
    cols = tf.range(crop_w) + tf.math.floordiv(out_w - crop_w, 2)
    y0, wy = resample_coefficients(in_h, out_h, rows, resample)
    x0, wx = resample_coefficients(in_w, out_w, cols, resample)
    # Vertical-first == horizontal-first on the transposed image. Work on
    # X = (B, A', C) where the first pass runs along B (axis 0) and the second along A;
    # A' = the source rows/columns the second pass reads.
    vfirst = _vertical_first((in_h, in_w), (out_h, out_w), pillow13_pass_order)

    def read_range(starts: tf.Tensor, weights: tf.Tensor, size: tf.Tensor):
        first = tf.reduce_min(starts)
        return first, tf.minimum(tf.reduce_max(starts) + tf.shape(weights)[1], size)

    y_first, y_last = read_range(y0, wy, in_h)
    x_first, x_last = read_range(x0, wx, in_w)
    x, a0, wa, b0, wb = tf.cond(
        vfirst,
        lambda: (tf.cast(image[:, x_first:x_last], tf.float32), x0 - x_first, wx, y0, wy),
        lambda: (
            tf.transpose(tf.cast(image[y_first:y_last], tf.float32), [1, 0, 2]),
            y0 - y_first,
            wy,
            x0,
            wx,
        ),
    )
    span_a = tf.shape(x)[1]
    channels = tf.shape(x)[2]
    tmp = _banded_pass(tf.reshape(x, tf.stack([tf.shape(x)[0], -1])), b0, wb)
    tmp = tf.transpose(tf.reshape(tmp, tf.stack([-1, span_a, channels])), [1, 0, 2])
    out = _banded_pass(tf.reshape(tmp, tf.stack([span_a, -1])), a0, wa)
    out = tf.reshape(out, tf.stack([tf.size(a0), tf.size(b0), channels]))  # (nA, nB, C)
    out = tf.cond(vfirst, lambda: tf.transpose(out, [1, 0, 2]), lambda: out)
    if crop_hw is not None and all(isinstance(v, int) for v in crop_hw):
        out = tf.ensure_shape(out, [crop_hw[0], crop_hw[1], image.shape[-1]])
    return tf.cast(out, tf.uint8)


def pil_resize(image: tf.Tensor, size_hw: tuple[tf.Tensor, tf.Tensor], resample: int = BICUBIC):
    """PIL-exact ``Image.resize((w, h), resample)`` of an (H, W, C) uint8 tensor."""
    return pil_resize_crop(image, size_hw, None, resample)
