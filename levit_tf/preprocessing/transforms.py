"""The LeViT eval transform as a pure TensorFlow graph (no py_function, no numpy).

``preprocess_image`` reproduces Hugging Face's PIL-backed ``LevitImageProcessor``
(``LevitImageProcessorPil`` in transformers 5) bit for bit on uint8 RGB input:
PIL-exact bicubic resize (``pil_resample``), HF centre crop with zero padding,
``float32(float64(x) * rescale_factor)`` and ``(x - mean) / std`` in float32.
Usable inside ``tf.function``, ``tf.data.Dataset.map`` and SavedModel signatures.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from levit_tf.preprocessing.config import LevitProcessorConfig
from levit_tf.preprocessing.pil_resample import lookup_levels, resize_crop_lookup
from levit_tf.preprocessing.sizing import resize_output_size_tf

# Source channel for each RGB output channel, indexed by (input channels - 1):
# L -> LLL, LA -> LLL (alpha dropped), RGB -> RGB, RGBA -> RGB (alpha dropped),
# the same as PIL's ``Image.convert("RGB")`` that HF applies with do_convert_rgb=True.
_RGB_SOURCE = ((0, 0, 0), (0, 0, 0), (0, 1, 2), (0, 1, 2))


def to_rgb_uint8(image: tf.Tensor) -> tf.Tensor:
    """(H, W) or (H, W, C) with C in {1, 2, 3, 4} -> (H, W, 3) uint8.

    Gray is replicated, alpha is dropped (no compositing, as ``PIL.Image.convert("RGB")``).
    uint16 input is scaled with ``x >> 8`` (what PIL does for 16-bit RGB PNGs and
    ``tf.image.convert_image_dtype`` does); other dtypes are rejected.
    """
    image = tf.convert_to_tensor(image)
    if image.dtype == tf.uint16:
        image = tf.cast(tf.bitwise.right_shift(image, 8), tf.uint8)
    if image.dtype != tf.uint8:
        raise TypeError(
            f"expected a uint8 image (values 0..255), got dtype {image.dtype.name}; "
            "convert floats with tf.image.convert_image_dtype(image, tf.uint8, saturate=True)"
        )
    rank = image.shape.rank
    if rank == 2:
        image = image[:, :, tf.newaxis]
    elif rank != 3:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    channels = image.shape[-1]
    if channels == 3:
        return image
    if channels is not None and channels not in (1, 2, 3, 4):
        raise ValueError(f"expected 1, 2, 3 or 4 channels, got {channels} (shape {image.shape})")
    c = tf.shape(image)[-1]
    check = tf.debugging.assert_less_equal(
        c, 4, message="image must have 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) channels"
    )
    with tf.control_dependencies([check]):
        source = tf.gather(tf.constant(_RGB_SOURCE, tf.int32), c - 1)
    out = tf.gather(image, source, axis=2)
    out.set_shape([image.shape[0], image.shape[1], 3])
    return out


def center_crop(image: tf.Tensor, crop_h: int, crop_w: int) -> tf.Tensor:
    """HF ``center_crop`` of (H, W, C): offset ``(H - crop_h) // 2``, zero padding if too small."""
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    rows = tf.range(crop_h) + tf.math.floordiv(h - crop_h, 2)
    cols = tf.range(crop_w) + tf.math.floordiv(w - crop_w, 2)
    out = tf.gather(
        tf.gather(image, tf.clip_by_value(rows, 0, h - 1)), tf.clip_by_value(cols, 0, w - 1), axis=1
    )
    mask = ((rows >= 0) & (rows < h))[:, tf.newaxis] & ((cols >= 0) & (cols < w))[tf.newaxis, :]
    return tf.where(mask[:, :, tf.newaxis], out, tf.zeros_like(out))


def normalize_table(config: LevitProcessorConfig) -> np.ndarray:
    """(256, 3) float32: the rescaled + normalized value of every uint8 level per channel.

    Computed with numpy's IEEE arithmetic in HF's order and precision
    (``float32(float64(x) * rescale_factor)``, then ``(x - mean) / std`` in float32), so a
    lookup equals the arithmetic bit for bit.
    """
    levels = np.arange(256, dtype=np.float64)[:, np.newaxis] * np.ones(3)
    if config.do_rescale:
        x = (levels * config.rescale_factor).astype(np.float32)
    else:
        x = levels.astype(np.float32)
    if config.do_normalize:
        mean = np.asarray(config.image_mean, np.float32)
        x = (x - mean) / np.asarray(config.image_std, np.float32)
    return x.astype(np.float32)


def _rescale_normalize_arith(pixels: tf.Tensor, config: LevitProcessorConfig) -> tf.Tensor:
    """The rescale / normalize arithmetic itself, for any real-valued pixels."""
    if config.do_rescale:
        x = tf.cast(tf.cast(pixels, tf.float64) * config.rescale_factor, tf.float32)
    else:
        x = tf.cast(pixels, tf.float32)
    if config.do_normalize:
        # divide_no_nan (std is never 0) is a true IEEE division: grappler's constant
        # folding rewrites ``x / const`` into ``x * (1 / const)``, which is 1 ulp off.
        mean = tf.constant(config.image_mean, tf.float32)
        x = tf.math.divide_no_nan(x - mean, tf.constant(config.image_std, tf.float32))
    return x


def rescale_normalize(pixels: tf.Tensor, config: LevitProcessorConfig) -> tf.Tensor:
    """(..., 3) pixels -> float32 as HF computes it (rescale in float64, normalize in float32).

    uint8 pixels go through one gather in :func:`normalize_table` (identical values,
    ~4 element-wise float64/float32 passes saved); other dtypes through the arithmetic.
    """
    pixels = tf.convert_to_tensor(pixels)
    if pixels.dtype != tf.uint8:
        return _rescale_normalize_arith(pixels, config)
    return _lookup_normalize(pixels, config)


def _flat_normalize_table(config: LevitProcessorConfig) -> tf.Tensor:
    """:func:`normalize_table` as the flat (768,) float32 constant ``lookup_levels`` takes."""
    return tf.constant(normalize_table(config).reshape(-1))


def _lookup_normalize(levels: tf.Tensor, config: LevitProcessorConfig) -> tf.Tensor:
    """(..., 3) uint8 levels -> float32 via :func:`normalize_table`."""
    return lookup_levels(levels, _flat_normalize_table(config))


def preprocess_image(
    image: tf.Tensor, config: LevitProcessorConfig, pillow13_pass_order: bool | None = None
) -> tf.Tensor:
    """One image, uint8 (H, W[, C]) -> float32 (out_h, out_w, 3) per ``config`` (HWC).

    The output size comes from ``config.crop_size`` (or ``config.size`` without a crop).
    """
    image = to_rgb_uint8(image)
    if config.do_resize:
        new_h, new_w = resize_output_size_tf(tf.shape(image)[0], tf.shape(image)[1], config.size)
        crop = (
            (config.crop_size["height"], config.crop_size["width"])
            if config.do_center_crop
            else None
        )
        out = resize_crop_lookup(image, (new_h, new_w), crop, config.resample,
                                 pillow13_pass_order, _flat_normalize_table(config))
    elif config.do_center_crop:
        crop = center_crop(image, config.crop_size["height"], config.crop_size["width"])
        out = rescale_normalize(crop, config)
    else:
        out = rescale_normalize(image, config)
    hw = config.output_hw
    if hw is not None:
        out = tf.ensure_shape(out, [hw[0], hw[1], 3])
    return out
