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
the C code (ordinary TF ops), so the fixed-point coefficients are identical; the
passes accumulate in int32 exactly like the C loop, as XLA kernels (``_pass``) on the
input window padded to a :func:`shape_bucket` size, so XLA compiles a few kernels per
size range instead of one per image shape. Output pixels outside the resized
image (when a crop is larger than the resized image) are 0, like Hugging Face's
zero padding.
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
    """Sums float64 ``w`` (n, k) over k strictly left to right, like Pillow's ``ww += w``.

    ``tf.cumsum`` (Eigen's scan) accumulates each row sequentially in index order, so
    its last column is bit-identical to the C loop (one op instead of a while loop).
    """
    return tf.cumsum(w, axis=1)[:, -1]


def _axis_params(in_size: tf.Tensor, out_size: tf.Tensor, resample: int):
    """Per-axis scalars (any shape, elementwise): scale, support, 1 / filterscale, ksize."""
    base_support = _FILTERS[check_resample(resample)][1]
    in_f = tf.cast(in_size, tf.float64)
    out_f = tf.cast(out_size, tf.float64)
    # divide_no_nan: a true division that grappler cannot turn into x * (1 / const).
    scale = tf.math.divide_no_nan(in_f, out_f)
    filterscale = tf.maximum(scale, 1.0)
    support = base_support * filterscale
    ksize = tf.cast(tf.math.ceil(support), tf.int32) * 2 + 1
    return scale, support, 1.0 / filterscale, ksize


def _coefficients(
    in_size: tf.Tensor,
    out_size: tf.Tensor,
    positions: tf.Tensor,
    ksize: tf.Tensor,
    resample: int,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Fixed-point taps of output pixels ``positions`` (n,); sizes are scalars or (n,).

    Returns ``starts`` (n,) int32 (non-decreasing in ``positions``) and ``weights``
    (n, ksize) int32; ``ksize`` may exceed the axis' own filter length (the extra taps
    are 0), so both axes of an image can be computed in one batch.
    """
    filt = _FILTERS[check_resample(resample)][0]
    scale, support, inv, _ = _axis_params(in_size, out_size, resample)
    in_i = tf.cast(in_size, tf.int32)
    out_i = tf.cast(out_size, tf.int32)
    valid = (positions >= 0) & (positions < out_i)
    pos = tf.clip_by_value(positions, 0, out_i - 1)
    center = (tf.cast(pos, tf.float64) + 0.5) * scale
    # C casts truncate toward zero; negatives are clamped to 0 right after.
    xmin = tf.maximum(tf.cast(center - support + 0.5, tf.int32), 0)
    xmax = tf.minimum(tf.cast(center + support + 0.5, tf.int32), in_i) - xmin

    taps = tf.range(ksize)[tf.newaxis, :]
    src = tf.cast(taps + xmin[:, tf.newaxis], tf.float64)
    col = lambda t: t[:, tf.newaxis] if t.shape.rank == 1 else t  # noqa: E731
    w = filt(((src - center[:, tf.newaxis]) + 0.5) * col(inv))
    w = tf.where(taps < xmax[:, tf.newaxis], w, 0.0)
    ww = _ordered_row_sum(w)[:, tf.newaxis]
    w = tf.where(ww != 0.0, tf.math.divide_no_nan(w, ww), w)
    scaled = w * float(1 << PRECISION_BITS)
    fixed = tf.cast(tf.where(w < 0.0, scaled - 0.5, scaled + 0.5), tf.int32)
    return xmin, tf.where(valid[:, tf.newaxis], fixed, 0)


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
    ksize = _axis_params(in_size, out_size, resample)[3]
    return _coefficients(in_size, out_size, positions, ksize, resample)


#: Taps per step of the XLA accumulation loop; filters are zero-padded to a multiple.
TAP_CHUNK = 4


def _accumulate_rows(x: tf.Tensor, starts: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """One exact Pillow pass along axis 0: (L, A, C) uint8 -> (n, A, C) uint8.

    Pillow's C loop in int32: ``clip((2**21 + sum_k w[i, k] * x[starts[i] + k]) >> 22)``
    with ``starts`` (n,) and ``weights`` (n, K) from :func:`_coefficients`
    (``K % TAP_CHUNK == 0``). Rows past ``L`` are clamped; their weights are 0. Each step
    adds ``TAP_CHUNK`` taps, which XLA fuses into one loop over the (n, A, C) sums; the
    first step starts from the constant, so the sums are never filled separately.
    """
    last = tf.shape(x)[0] - 1

    def add_taps(first: tf.Tensor | int, acc: tf.Tensor) -> tf.Tensor:
        for k in range(TAP_CHUNK):
            rows = tf.gather(x, tf.minimum(starts + (first + k), last))
            acc += tf.cast(rows, tf.int32) * weights[:, first + k, tf.newaxis, tf.newaxis]
        return acc

    acc = add_taps(0, tf.constant(1 << (PRECISION_BITS - 1), tf.int32))
    _, acc = tf.while_loop(
        lambda tap, _: tap < tf.shape(weights)[1],
        lambda tap, acc: (tap + TAP_CHUNK, add_taps(tap, acc)),
        (TAP_CHUNK, acc),
    )
    return tf.cast(_clip_levels(tf.bitwise.right_shift(acc, PRECISION_BITS)), tf.uint8)


def _clip_levels(x: tf.Tensor) -> tf.Tensor:
    """Clips to [0, 255] with one op (``tf.clip_by_value`` emits two)."""
    return tf.raw_ops.ClipByValue(
        t=x, clip_value_min=tf.constant(0, x.dtype), clip_value_max=tf.constant(255, x.dtype)
    )


@tf.function(jit_compile=True)
def _transpose_hw(x: tf.Tensor) -> tf.Tensor:
    """(A, B, C) -> (B, A, C) as its own XLA kernel (fused into the gathers of a pass,
    the strided reads would be repeated for every tap)."""
    return tf.transpose(x, [1, 0, 2])


@tf.function(jit_compile=True)
def _pass(x: tf.Tensor, starts: tf.Tensor, weights: tf.Tensor, table: tf.Tensor | None):
    """XLA kernel of :func:`_accumulate_rows`: (L, A, C) uint8 -> (n, A, C).

    With ``table`` (256 * C,) float32 the levels are mapped to ``table[level * C + c]``
    (rescale + normalize) in the same kernel; otherwise the result is uint8.
    """
    out = _accumulate_rows(x, starts, weights)
    return out if table is None else lookup_levels(out, table)


def lookup_levels(levels: tf.Tensor, table: tf.Tensor) -> tf.Tensor:
    """(..., C) uint8 levels -> ``table[level * C + c]``, ``table`` (256 * C,) float32."""
    channels = tf.shape(levels)[-1]
    return tf.gather(table, tf.cast(levels, tf.int32) * channels + tf.range(channels))


def _bucket_table() -> list[int]:
    """Kernel sizes: multiples of 16 up to 128, then 8 steps per octave (< 2**20)."""
    sizes = list(range(16, 129, 16))
    for octave in range(7, 20):
        sizes += [(1 << octave) + j * (1 << (octave - 3)) for j in range(1, 9)]
    return sizes


_BUCKETS = _bucket_table()


def shape_bucket(sizes: tf.Tensor) -> tf.Tensor:
    """Rounds int32 ``sizes`` (any shape) up to a kernel size of :func:`_bucket_table`.

    XLA compiles one kernel per input shape; padding the image to these sizes keeps the
    number of compilations logarithmic in the image size, at most 12.5% padding above 128.
    """
    table = tf.constant(_BUCKETS, tf.int32)
    flat = tf.reshape(sizes, [-1])
    return tf.reshape(tf.gather(table, tf.searchsorted(table, flat)), tf.shape(sizes))


def _pillow_vertical_first_rule() -> bool:
    """Whether the installed Pillow (>= 13, python-pillow/Pillow#9549) may go vertical-first."""
    try:
        import PIL
    except ImportError:  # pragma: no cover - pillow is a dependency
        return True
    return int(PIL.__version__.split(".")[0]) >= 13


def _vertical_first(in_hw, out_hw) -> tf.Tensor:
    """Pillow >= 13 pass order: vertical first iff both axes change and
    ``in_h - out_h > 0`` and ``in_h - out_h > 2 * (in_w - out_w)``."""
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
    return _resize_crop(image, resized_hw, crop_hw, resample, pillow13_pass_order, None)


def resize_crop_lookup(
    image: tf.Tensor,
    resized_hw: tuple[tf.Tensor, tf.Tensor],
    crop_hw: tuple[int | tf.Tensor, int | tf.Tensor] | None,
    resample: int,
    pillow13_pass_order: bool | None,
    table: tf.Tensor,
) -> tf.Tensor:
    """:func:`pil_resize_crop` of an (H, W, C) image, each level then mapped per channel
    through ``table`` (256 * C,) float32 (``table[level * C + c]``, e.g. rescale +
    normalize) in the same XLA kernel. Returns float32 (crop_h, crop_w, C)."""
    return _resize_crop(image, resized_hw, crop_hw, resample, pillow13_pass_order, table)


def _check_image(image: tf.Tensor) -> tf.Tensor:
    """Static dtype / rank checks of a (H, W, C) uint8 (or int32) image; returns uint8."""
    image = tf.convert_to_tensor(image)
    if image.dtype not in (tf.uint8, tf.int32):
        raise TypeError(
            f"pil_resize_crop expects a uint8 image tensor, got dtype {image.dtype.name}"
        )
    if image.shape.rank is not None and image.shape.rank != 3:
        raise ValueError(f"pil_resize_crop expects an (H, W, C) image, got shape {image.shape}")
    return tf.cast(image, tf.uint8)


def _crop_taps(in_hw, out_hw, crop_hw, count_hw, resample: int):
    """Taps of the first ``count_hw`` rows / columns of the centre crop, in one batch.

    Returns ``(y0, wy), (x0, wx), ksize``: absolute starts (count_h,) / (count_w,),
    weights (count_h, K) / (count_w, K) with a common K (the larger filter length
    ``ksize`` rounded up to a multiple of ``TAP_CHUNK``). Entries past the crop
    (``count > crop``, kernel-size padding) get weights 0.
    """
    (in_h, in_w), (out_h, out_w), (crop_h, crop_w) = in_hw, out_hw, crop_hw
    rows = tf.range(count_hw[0])
    cols = tf.range(count_hw[1])
    positions = tf.concat([rows + (out_h - crop_h) // 2, cols + (out_w - crop_w) // 2], 0)
    if not all(isinstance(c, int) for c in count_hw):
        positions = tf.where(tf.concat([rows < crop_h, cols < crop_w], 0), positions, -1)
    sizes_in = tf.stack([in_h, in_w])
    sizes_out = tf.stack([out_h, out_w])
    ksize = tf.reduce_max(_axis_params(sizes_in, sizes_out, resample)[3])
    axis = tf.concat([tf.zeros_like(rows), tf.ones_like(cols)], 0)
    starts, weights = _coefficients(
        tf.gather(sizes_in, axis),
        tf.gather(sizes_out, axis),
        positions,
        (ksize + TAP_CHUNK - 1) // TAP_CHUNK * TAP_CHUNK,
        resample,
    )
    y0, x0 = tf.split(starts, count_hw)
    wy, wx = tf.split(weights, count_hw)
    return (y0, wy), (x0, wx), ksize


def _static_crop(resized_hw, crop_hw) -> list[int | None]:
    """The crop (height, width) where known in Python, else None per axis."""
    hw = resized_hw if crop_hw is None else crop_hw
    return [v if isinstance(v, int) else None for v in hw]


def _resize_crop(image, resized_hw, crop_hw, resample, pillow13, table) -> tf.Tensor:
    """The resize + centre crop: uint8 levels, or ``table`` lookups (see ``resize_crop_lookup``).

    The input rows / columns read by the crop are cut out and zero padded to a
    :func:`shape_bucket` size; the crop itself is padded to one unless it is a Python
    int. The passes then run as XLA kernels compiled per bucket (see ``_pass``).
    """
    image = _check_image(image)
    if pillow13 is None:
        pillow13 = _pillow_vertical_first_rule()
    out_h = tf.cast(resized_hw[0], tf.int32)
    out_w = tf.cast(resized_hw[1], tf.int32)
    checks = [
        tf.debugging.assert_positive(out_h, message="resize height must be > 0"),
        tf.debugging.assert_positive(out_w, message="resize width must be > 0"),
        tf.debugging.assert_positive(tf.size(image), message="image must not be empty"),
    ]
    with tf.control_dependencies(checks):
        shape = tf.shape(image)
    in_h, in_w = shape[0], shape[1]
    static = _static_crop(resized_hw, crop_hw)
    crop_h, crop_w = (out_h, out_w) if crop_hw is None else crop_hw
    crop = tf.cast(tf.stack([crop_h, crop_w]), tf.int32)
    count = static if None not in static else tf.unstack(shape_bucket(crop))
    (y0, wy), (x0, wx), ksize = _crop_taps(
        (in_h, in_w), (out_h, out_w), tf.unstack(crop), count, resample
    )
    first = tf.stack([y0[0], x0[0]])
    last = tf.stack([tf.gather(y0, crop[0] - 1), tf.gather(x0, crop[1] - 1)]) + ksize
    span = tf.minimum(last, shape[:2]) - first
    # Whichever pass runs first, only this window of the input is ever read.
    window = tf.slice(image, tf.concat([first, [0]], 0), tf.concat([span, [-1]], 0))
    pad = tf.stack([[0, 0], shape_bucket(span) - span], axis=1)
    x = tf.pad(window, tf.concat([pad, [[0, 0]]], 0))
    sy = tf.maximum(y0 - first[0], 0)
    sx = tf.maximum(x0 - first[1], 0)

    if pillow13:
        # Vertical first = the same two kernels on the transposed window with the taps
        # swapped, transposed back at the end (plain ops in the conds: a cond with kernel
        # calls in both branches doubles the function instantiation time of a tf.data map).
        vfirst = _vertical_first((in_h, in_w), (out_h, out_w))
        x, sx, wx, sy, wy = tf.cond(
            vfirst,
            lambda: (tf.transpose(x, [1, 0, 2]), sy, wy, sx, wx),
            lambda: (x, sx, wx, sy, wy),
        )
    tmp = _pass(_transpose_hw(x), sx, wx, None)  # (count_w, span_h, C), h / w swapped if vfirst
    out = _pass(_transpose_hw(tmp), sy, wy, table)  # (count_h, count_w, C)
    if pillow13:
        out = tf.cond(vfirst, lambda: tf.transpose(out, [1, 0, 2]), lambda: out)
    if None in static:
        out = out[: crop[0], : crop[1]]
    out.set_shape([*static, image.shape[-1]])
    return out


def pil_resize(image: tf.Tensor, size_hw: tuple[tf.Tensor, tf.Tensor], resample: int = BICUBIC):
    """PIL-exact ``Image.resize((w, h), resample)`` of an (H, W, C) uint8 tensor."""
    return pil_resize_crop(image, size_hw, None, resample)
