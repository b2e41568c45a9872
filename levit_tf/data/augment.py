"""Train-time augmentation in TF: random resized crop (PIL-exact bicubic), flip, RandAugment, MixUp.

Randomness is stateless: every element carries its own seed (from
``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)``), so a pipeline
with a fixed seed yields the same crops/flips on every run, with parallel map, and
different ones each epoch. Keras' RandAugment / MixUp layers are seeded but keep an
internal seed state, so their draws depend on execution order (documented caveat).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from levit_tf.preprocessing.pil_resample import BICUBIC, pil_resize_crop


def _seed_pair(seed: tf.Tensor, salt: int) -> tf.Tensor:
    """A shape-(2,) int64 stateless seed derived from an element seed and a salt."""
    return tf.stack([tf.cast(seed, tf.int64), tf.constant(salt, tf.int64)])


def random_resized_crop_box(
    height: tf.Tensor,
    width: tf.Tensor,
    seed: tf.Tensor,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """torchvision ``RandomResizedCrop.get_params`` with stateless draws -> (top, left, h, w).

    Tries ``attempts`` (area, log-aspect) samples and takes the first that fits; falls
    back to a centre crop with the ratio clamped to ``ratio``.
    """
    h = tf.cast(height, tf.float64)
    w = tf.cast(width, tf.float64)
    area = h * w
    u = tf.random.stateless_uniform([4, attempts], _seed_pair(seed, 1), dtype=tf.float64)
    target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = tf.exp(log_lo + (log_hi - log_lo) * u[1])
    cw = tf.round(tf.sqrt(target * aspect))
    ch = tf.round(tf.sqrt(target / aspect))
    ok = (cw > 0) & (ch > 0) & (cw <= w) & (ch <= h)
    top = tf.floor(u[2] * (h - ch + 1))
    left = tf.floor(u[3] * (w - cw + 1))
    # fallback: whole image clamped to the ratio range, centred
    in_ratio = w / h
    fw = tf.where(in_ratio < ratio[0], w, tf.where(in_ratio > ratio[1], tf.round(h * ratio[1]), w))
    fh = tf.where(in_ratio < ratio[0], tf.round(w / ratio[0]), h)
    fallback = tf.stack([tf.floor((h - fh) / 2), tf.floor((w - fw) / 2), fh, fw])
    candidates = tf.stack([top, left, ch, cw], axis=1)
    first = tf.argmax(tf.cast(ok, tf.int32))
    box = tf.where(tf.reduce_any(ok), candidates[first], fallback)
    box = tf.cast(box, tf.int32)
    return box[0], box[1], box[2], box[3]


def random_resized_crop(
    image: tf.Tensor,
    size: tuple[int, int],
    seed: tf.Tensor,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    resample: int = BICUBIC,
) -> tf.Tensor:
    """(H, W, 3) uint8 -> (size[0], size[1], 3) uint8: random crop + PIL-exact resize."""
    top, left, ch, cw = random_resized_crop_box(
        tf.shape(image)[0], tf.shape(image)[1], seed, scale, ratio
    )
    crop = image[top : top + ch, left : left + cw]
    return pil_resize_crop(crop, size, None, resample)


def random_flip(image: tf.Tensor, seed: tf.Tensor, probability: float = 0.5) -> tf.Tensor:
    """Horizontal flip of (H, W, C) with the given probability (stateless)."""
    flip = tf.random.stateless_uniform([], _seed_pair(seed, 2)) < probability
    return tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)


def make_rand_augment(
    num_ops: int = 2, factor: float = 0.5, seed: int | None = None
) -> keras.layers.RandAugment:
    """A Keras RandAugment layer for uint8-valued images in [0, 255]."""
    return keras.layers.RandAugment(value_range=(0, 255), num_ops=num_ops, factor=factor, seed=seed)


def make_mixup(alpha: float = 0.2, seed: int | None = None) -> keras.layers.MixUp:
    """A Keras MixUp layer (apply to batches of normalized images with one-hot labels)."""
    return keras.layers.MixUp(alpha=alpha, seed=seed)
