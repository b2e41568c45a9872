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


def _window_plan(starts: tf.Tensor, weights: tf.Tensor) -> dict[str, tf.Tensor]:
    """Layout of the windowed band matmul for one pass (shapes for n outputs, K taps).

    The input axis is cut into tiles of ``S = K`` rows; output pixel ``i`` belongs to
    window ``t = starts[i] // S``, which covers tiles ``t`` and ``t + 1``, so all its taps
    lie in it. ``slot`` numbers the outputs of a window (starts are non-decreasing).
    """
    n = tf.shape(weights)[0]
    k = tf.shape(weights)[1]
    rel = starts - starts[0]
    tile = rel // k
    slot = tf.range(n) - tf.searchsorted(tile, tile, side="left")
    return {"k": k, "tile": tile, "off": rel - tile * k, "slot": slot,
            "tiles": tile[-1] + 2, "per": tf.reduce_max(slot) + 1}  # fmt: skip


#: Longest filter the split-float32 matmul is exact for (``255 * 255 * K < 2**24``).
MAX_TAPS = 258


def _band_matrices(plan: dict[str, tf.Tensor], parts: list[tf.Tensor], dtype) -> tf.Tensor:
    """(tiles, 2 * P * per, K) band matrices for ``P = len(parts)`` weight parts (n, K).

    Tile ``t`` holds, for each part, the taps of window ``t`` in its first tile (rows
    ``[p * per, (p + 1) * per)``) and then those of window ``t - 1`` in its second tile
    (rows ``[(P + p) * per, ...)``); ``slot`` picks the row within a block.
    """
    k, per = plan["k"], plan["per"]
    col = plan["off"][:, tf.newaxis] + tf.range(k)  # (n, K) in [0, 2K - 1)
    second = col // k
    tile = plan["tile"][:, tf.newaxis] + second
    row = plan["slot"][:, tf.newaxis] + len(parts) * per * second
    col = col - k * second
    index = tf.concat([tf.stack([tile, row + p * per, col], axis=-1) for p in range(len(parts))], 0)
    values = tf.cast(tf.concat(parts, 0), dtype)
    shape = tf.stack([plan["tiles"], 2 * len(parts) * per, k])
    return tf.scatter_nd(index, values, shape)


def _band_sums(plan, parts: list[tf.Tensor], x: tf.Tensor, dtype) -> tf.Tensor:
    """(P, n, M) sums ``sum_k part[i, k] * x[start_i + k]`` for each weight part.

    ``x`` (tiles * K, M) is cut into tiles without copying; one batched matmul gives
    every window's partial sums and a gather adds its two tiles' halves (exact: the
    halves are integers and so is their sum, below 2**24 / 2**53).
    """
    k, per, nparts = plan["k"], plan["per"], len(parts)
    m = tf.shape(x)[1]
    tiles = tf.reshape(tf.cast(x, dtype), tf.stack([plan["tiles"], k, m]))
    q = tf.matmul(_band_matrices(plan, parts, dtype), tiles)
    q = tf.reshape(q, tf.stack([-1, m]))
    first = plan["tile"] * (2 * nparts * per) + plan["slot"]
    second = first + 2 * nparts * per + nparts * per
    index = tf.stack([tf.stack([first + p * per, second + p * per]) for p in range(nparts)])
    sums = tf.gather(q, index)  # (P, 2, n, M): the two tiles' halves
    sums.set_shape([nparts, 2, plan["slot"].shape[0], x.shape[1]])
    return sums


def _split_levels(sums: tf.Tensor) -> tf.Tensor:
    """(2, 2, n, M) float32 halves of ``a = sum p * hi`` and ``b = sum p * lo`` -> levels.

    Pillow's ``clip((256 a + b + 2**21) >> 22, 0, 255)`` computed exactly in float32 as
    ``floor((a + floor(b / 256) + 2**13) / 2**14)`` (all values are integers < 2**24).
    """
    a, b = tf.unstack(tf.reduce_sum(sums, axis=1))
    acc = a + tf.floor(b * (1.0 / 256.0)) + float(1 << 13)
    return _clip_levels(tf.floor(acc * (1.0 / (1 << 14))))


_XLA: dict = {}


def fused(fn, *args: tf.Tensor) -> tf.Tensor:
    """``fn(*args)``, compiled with XLA into one fused kernel when all shapes are static.

    Used for element-wise tails (exact operations only: adds, floors, power-of-two
    scalings, clipping, table gathers), which TF would otherwise run as one pass over
    memory per op. With dynamic shapes XLA would recompile per shape, so ``fn`` then
    runs as ordinary ops.
    """
    if not all(a.shape.is_fully_defined() for a in args):
        return fn(*args)
    if fn not in _XLA:
        _XLA[fn] = tf.function(fn, jit_compile=True, reduce_retracing=False)
    return _XLA[fn](*args)


def _clip_levels(x: tf.Tensor) -> tf.Tensor:
    """Clips to [0, 255] with one op (``tf.clip_by_value`` emits two)."""
    return tf.raw_ops.ClipByValue(
        t=x, clip_value_min=tf.constant(0, x.dtype), clip_value_max=tf.constant(255, x.dtype)
    )


def _window_pass(x: tf.Tensor, starts: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """One exact Pillow pass along axis 0: (L, M) pixels -> float32 (n, M) in [0, 255].

    ``x`` (uint8 or integer-valued float32) holds the input rows from ``starts[0]`` on;
    ``starts`` (n,) and ``weights`` (n, K) come from :func:`_coefficients`.

    Up to ``MAX_TAPS`` taps, each weight is split as ``hi * 256 + lo``; the float32 band
    matmuls then only see integer partial sums below ``2**24`` and are exact in any
    summation order, and Pillow's ``clip((acc + 2**21) >> 22)`` is evaluated as
    ``floor((a + floor(b / 256) + 2**13) / 2**14)`` with ``a = sum p * hi`` and
    ``b = sum p * lo`` (an exact identity). Longer filters use float64 (exact below 2**53).
    """
    plan = _window_plan(starts, weights)
    rows = plan["tiles"] * plan["k"] - tf.shape(x)[0]
    x = tf.pad(x, tf.stack([tf.stack([0, rows]), [0, 0]]))

    def split_f32() -> tf.Tensor:
        hi = tf.math.floordiv(weights, 256)
        sums = _band_sums(plan, [hi, weights - 256 * hi], x, tf.float32)
        return fused(_split_levels, sums)

    def direct_f64() -> tf.Tensor:
        acc = tf.reduce_sum(_band_sums(plan, [weights], x, tf.float64)[0], 0) + float(1 << 21)
        return tf.cast(_clip_levels(tf.floor(acc * (1.0 / (1 << PRECISION_BITS)))), tf.float32)

    return tf.cond(plan["k"] <= MAX_TAPS, split_f32, direct_f64)


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
    return tf.cast(resize_crop_levels(image, resized_hw, crop_hw, resample, pillow13_pass_order),
                   tf.uint8)  # fmt: skip


def resize_crop_levels(
    image: tf.Tensor,
    resized_hw: tuple[tf.Tensor, tf.Tensor],
    crop_hw: tuple[int | tf.Tensor, int | tf.Tensor] | None = None,
    resample: int = BICUBIC,
    pillow13_pass_order: bool | None = None,
) -> tf.Tensor:
    """:func:`pil_resize_crop` as float32 (crop_h, crop_w, C) holding the levels 0..255."""
    image = _check_image(image)
    if pillow13_pass_order is None:
        pillow13_pass_order = _pillow_vertical_first_rule()
    return _resize_crop_float(image, resized_hw, crop_hw, resample, pillow13_pass_order)


def _check_image(image: tf.Tensor) -> tf.Tensor:
    """Static dtype / rank checks of a (H, W, C) uint8 (or int32) image."""
    image = tf.convert_to_tensor(image)
    if image.dtype not in (tf.uint8, tf.int32):
        raise TypeError(
            f"pil_resize_crop expects a uint8 image tensor, got dtype {image.dtype.name}"
        )
    if image.shape.rank is not None and image.shape.rank != 3:
        raise ValueError(f"pil_resize_crop expects an (H, W, C) image, got shape {image.shape}")
    return image


def _crop_taps(in_hw, out_hw, crop_hw, resample: int, static_crop: list[int] | None):
    """Taps of the output rows and columns inside the centre crop, computed in one batch.

    Returns ``((y0, wy), (x0, wx))``: starts (crop_h,) / (crop_w,) and weights
    (crop_h, K) / (crop_w, K) with a common K (the larger of the two filter lengths).
    """
    (in_h, in_w), (out_h, out_w), (crop_h, crop_w) = in_hw, out_hw, crop_hw
    rows = tf.range(crop_h) + tf.math.floordiv(out_h - crop_h, 2)
    cols = tf.range(crop_w) + tf.math.floordiv(out_w - crop_w, 2)
    sizes_in = tf.stack([in_h, in_w])
    sizes_out = tf.stack([out_h, out_w])
    ksize = tf.reduce_max(_axis_params(sizes_in, sizes_out, resample)[3])
    axis = tf.concat([tf.zeros_like(rows), tf.ones_like(cols)], 0)
    starts, weights = _coefficients(
        tf.gather(sizes_in, axis),
        tf.gather(sizes_out, axis),
        tf.concat([rows, cols], 0),
        ksize,
        resample,
    )
    sizes = static_crop or tf.stack([crop_h, crop_w])
    y0, x0 = tf.split(starts, sizes)
    wy, wx = tf.split(weights, sizes)
    return (y0, wy), (x0, wx)


def _read_range(starts: tf.Tensor, weights: tf.Tensor, size: tf.Tensor):
    """[first, last) input indices read by a pass (starts are non-decreasing)."""
    return starts[0], tf.minimum(starts[-1] + tf.shape(weights)[1], size)


def _resize_crop_float(image, resized_hw, crop_hw, resample: int, pillow13: bool) -> tf.Tensor:
    """``pil_resize_crop`` as float32 (crop_h, crop_w, C) with integer values 0..255."""
    out_h = tf.cast(resized_hw[0], tf.int32)
    out_w = tf.cast(resized_hw[1], tf.int32)
    checks = [
        tf.debugging.assert_positive(out_h, message="resize height must be > 0"),
        tf.debugging.assert_positive(out_w, message="resize width must be > 0"),
        tf.debugging.assert_positive(tf.size(image), message="image must not be empty"),
    ]
    with tf.control_dependencies(checks):
        shape = tf.shape(image)
    in_h, in_w, channels = shape[0], shape[1], shape[2]
    crop_h, crop_w = (out_h, out_w) if crop_hw is None else crop_hw
    crop_h = tf.cast(crop_h, tf.int32)
    crop_w = tf.cast(crop_w, tf.int32)
    static = [v if isinstance(v, int) else None for v in (crop_hw or (None, None))]
    static_crop = static if None not in static else None
    (y0, wy), (x0, wx) = _crop_taps(
        (in_h, in_w), (out_h, out_w), (crop_h, crop_w), resample, static_crop
    )
    # Row length of the second pass' input: crop size * C, static when both are.
    c_static = image.shape[-1]
    row_w = -1 if static[1] is None or c_static is None else static[1] * c_static
    row_h = -1 if static[0] is None or c_static is None else static[0] * c_static
    y_first, y_last = _read_range(y0, wy, in_h)
    x_first, x_last = _read_range(x0, wx, in_w)
    # Whichever pass runs first, only these input rows / columns are ever read.
    image = image[y_first:y_last, x_first:x_last]
    span_h, span_w = y_last - y_first, x_last - x_first
    ty = (y0 - y_first, wy)
    tx = (x0 - x_first, wx)

    def vertical_first() -> tf.Tensor:
        tmp = _window_pass(tf.reshape(image, tf.stack([span_h, -1])), *ty)
        tmp = tf.transpose(tf.reshape(tmp, tf.stack([crop_h, span_w, channels])), [1, 0, 2])
        out = _window_pass(tf.reshape(tmp, tf.stack([span_w, row_h])), *tx)
        return tf.transpose(tf.reshape(out, tf.stack([crop_w, crop_h, channels])), [1, 0, 2])

    def horizontal_first() -> tf.Tensor:
        tmp = tf.reshape(tf.transpose(image, [1, 0, 2]), tf.stack([span_w, -1]))
        tmp = tf.reshape(_window_pass(tmp, *tx), tf.stack([crop_w, span_h, channels]))
        tmp = tf.reshape(tf.transpose(tmp, [1, 0, 2]), tf.stack([span_h, row_w]))
        return tf.reshape(_window_pass(tmp, *ty), tf.stack([crop_h, crop_w, channels]))

    vfirst = _vertical_first((in_h, in_w), (out_h, out_w), pillow13)
    out = tf.cond(vfirst, vertical_first, horizontal_first)
    out.set_shape([*static, image.shape[-1]])
    return out


def pil_resize(image: tf.Tensor, size_hw: tuple[tf.Tensor, tf.Tensor], resample: int = BICUBIC):
    """PIL-exact ``Image.resize((w, h), resample)`` of an (H, W, C) uint8 tensor."""
    return pil_resize_crop(image, size_hw, None, resample)
