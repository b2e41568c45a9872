"""scikit-learn's handwritten digits (8x8 gray, 1797 images, 10 classes) as a LeViT dataset.

The 0..16 intensities become uint8 0..255 images that go through ``levit_tf.data``'s pipeline:
gray -> RGB, PIL-exact bicubic upscale to the model's size (shortest edge int(256/224 * S),
centre crop S; ``levit_tf.data.eval_config`` for (H, W)), ImageNet mean/std. The held-out
split is stratified and fixed by a seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from levit_tf.data import array_dataset
from levit_tf.training.splits import stratified_split
from levit_tf.utils.image_size import ImageSize, image_hw

CLASS_NAMES = tuple(str(i) for i in range(10))
#: Train-time shift of the upscaled digits: up to 1/16 of the side (half a source pixel).
SHIFT_FRACTION = 0.0625


@dataclasses.dataclass(frozen=True)
class DigitsSplit:
    """uint8 images (N, 8, 8) and int labels (N,) of the train and held-out parts."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray


def load_digits_split(val_fraction: float = 0.2, seed: int = 0) -> DigitsSplit:
    """The digits, split per class (stratified) with ``np.random.default_rng(seed)``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    labels = digits.target.astype(np.int32)
    train, val = stratified_split(labels, val_fraction, seed)
    return DigitsSplit(images[train], labels[train], images[val], labels[val])


def preprocess_digits(images: np.ndarray, labels: np.ndarray, image_size: ImageSize
                      ) -> np.ndarray:
    """(N, 8, 8) uint8 -> (N, H, W, 3) float32 through the LeViT eval transform (``image_size``
    S or (H, W))."""
    ds = array_dataset(images, labels, image_size=image_size, batch_size=256)
    return np.concatenate([batch.numpy() for batch, _ in ds]) if len(images) else np.zeros(
        (0, *image_hw(image_size), 3), np.float32)


def random_shift(pixels: tf.Tensor, seed: tf.Tensor, max_shift: int) -> tf.Tensor:
    """(H, W, C) -> (H, W, C) translated by up to ``max_shift`` pixels each way (stateless
    ``seed`` (2,) int); the border is filled with the image's corner value (the background)."""
    padded = tf.pad(pixels - pixels[0, 0], [[max_shift] * 2, [max_shift] * 2, [0, 0]])
    crop = tf.image.stateless_random_crop(padded, tf.shape(pixels), seed)
    return tf.ensure_shape(crop + pixels[0, 0], pixels.shape)


def digits_datasets(image_size: ImageSize = 32, batch_size: int = 64, seed: int = 0,
                    val_fraction: float = 0.2, augment: bool = True
                    ) -> tuple[tf.data.Dataset, tf.data.Dataset, DigitsSplit]:
    """(train, held-out, split): batches of (float32 (B, H, W, 3), int32 (B,)).

    Every image goes through the LeViT eval transform once; the train set is reshuffled each
    epoch (seeded) and, with ``augment``, randomly shifted by up to ``SHIFT_FRACTION`` of the
    shorter side (seeded per element and epoch).
    """
    split = load_digits_split(val_fraction, seed)
    val_pixels = preprocess_digits(split.val_images, split.val_labels, image_size)
    val = tf.data.Dataset.from_tensor_slices((val_pixels, split.val_labels)).batch(batch_size)
    pixels = preprocess_digits(split.train_images, split.train_labels, image_size)
    train = tf.data.Dataset.from_tensor_slices((pixels, split.train_labels)).shuffle(
        len(pixels), seed=seed, reshuffle_each_iteration=True)
    if augment:
        max_shift = max(1, round(min(image_hw(image_size)) * SHIFT_FRACTION))
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        train = tf.data.Dataset.zip((train, seeds)).map(
            lambda element, s: (random_shift(element[0], s, max_shift), element[1]),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    train = train.batch(batch_size)
    return train.prefetch(tf.data.AUTOTUNE), val.prefetch(tf.data.AUTOTUNE), split


__all__ = ["CLASS_NAMES", "SHIFT_FRACTION", "DigitsSplit", "digits_datasets",
           "load_digits_split", "preprocess_digits", "random_shift"]
