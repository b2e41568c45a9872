"""From (uint8 image, label) elements to batched model input: transforms, batching, prefetch."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import tensorflow as tf

from levit_tf.data.augment import make_mixup, make_rand_augment, random_flip, random_resized_crop
from levit_tf.preprocessing.config import LevitProcessorConfig
from levit_tf.preprocessing.transforms import preprocess_image, rescale_normalize, to_rgb_uint8

AUTOTUNE = tf.data.AUTOTUNE


def eval_config(
    image_size: int | tuple[int, int] = 224, base: LevitProcessorConfig | None = None
) -> LevitProcessorConfig:
    """The LeViT eval transform for ``image_size``: shortest edge int(256/224 * size), crop size.

    ``image_size`` (H, W) with H != W (a non-square model): the shortest edge goes to
    int(256/224 * max(H, W)), so that the resized image covers the H x W centre crop at any
    aspect ratio, with LeViT's 224/256 margin on the crop's longer side.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    base = base or LevitProcessorConfig()
    return dataclasses.replace(
        base,
        size={"shortest_edge": max(height, width)},
        crop_size={"height": height, "width": width},
    )


@dataclasses.dataclass(frozen=True)
class TrainAugment:
    """Train-time options. ``rand_augment``: (num_ops, factor) or None; ``mixup_alpha``: 0 = off."""

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    rand_augment: tuple[int, float] | None = None
    mixup_alpha: float = 0.0


def eval_transform(config: LevitProcessorConfig) -> Callable[[tf.Tensor], tf.Tensor]:
    """uint8 (H, W[, C]) -> float32 (S, S, 3): the PIL-exact LeViT eval transform."""
    return lambda image: preprocess_image(image, config)


def train_transform(
    image_size: int | tuple[int, int],
    config: LevitProcessorConfig,
    augment: TrainAugment,
    seed: int | None,
) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """(uint8 image, element seed) -> float32 (S, S, 3): random resized crop, flip, RandAugment."""
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    rand_aug = None
    if augment.rand_augment is not None:
        rand_aug = make_rand_augment(*augment.rand_augment, seed=seed)

    def apply(image: tf.Tensor, element_seed: tf.Tensor) -> tf.Tensor:
        image = to_rgb_uint8(image)
        image = random_resized_crop(
            image,
            size,
            element_seed,
            augment.scale,
            augment.ratio,
            config.resample,
        )
        if augment.hflip > 0:
            image = random_flip(image, element_seed, augment.hflip)
        if rand_aug is not None:
            image = tf.cast(
                tf.clip_by_value(rand_aug(tf.cast(image, tf.float32)), 0, 255), tf.uint8
            )
        out = rescale_normalize(image, config)
        return tf.ensure_shape(out, [*size, 3])

    return apply


def build_pipeline(
    source: tf.data.Dataset,
    decode: Callable[..., tf.Tensor] | None,
    *,
    image_size: int | tuple[int, int] = 224,
    training: bool = False,
    batch_size: int | None = 32,
    seed: int | None = None,
    shuffle_buffer: int | None = None,
    cache: bool | str = False,
    augment: TrainAugment | None = None,
    num_classes: int | None = None,
    config: LevitProcessorConfig | None = None,
    drop_remainder: bool = False,
    ignore_errors: bool = False,
) -> tf.data.Dataset:
    """Source of (raw, label) -> (float32 image (S, S, 3) or batch, int32 label) pipeline.

    Args:
        source: elements ``(raw, label)``; ``raw`` is whatever ``decode`` takes.
        decode: raw -> uint8 (H, W[, C]) image, or None if ``raw`` is already an image.
        image_size: model input size S or (H, W) (eval: resize shortest edge to
            int(256/224*S), crop S; see ``eval_config`` for (H, W)).
        training: random resized crop + flip (+ RandAugment / MixUp per ``augment``)
            instead of the eval transform; shuffles when ``shuffle_buffer`` is set.
        batch_size: None for unbatched elements.
        seed: makes shuffling and augmentation deterministic.
        cache: True caches raw elements in memory, a string caches them to that file.
        num_classes: required for MixUp (labels become one-hot float32).
        config: base processor config (mean/std/resample); sizes come from ``image_size``.
        ignore_errors: drop elements whose decoding fails in TF (last-resort safety net).
    """
    config = eval_config(image_size, config)
    augment = augment or TrainAugment()
    ds = source
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if training and shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    def load(raw: tf.Tensor) -> tf.Tensor:
        return decode(raw) if decode is not None else raw

    if training:
        transform = train_transform(image_size, config, augment, seed)
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, seeds))
        ds = ds.map(
            lambda element, s: (transform(load(element[0]), s), tf.cast(element[1], tf.int32)),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
    else:
        transform_eval = eval_transform(config)
        ds = ds.map(
            lambda raw, label: (transform_eval(load(raw)), tf.cast(label, tf.int32)),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
    if ignore_errors:
        ds = ds.ignore_errors(log_warning=True)
    if batch_size:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
        if training and augment.mixup_alpha > 0:
            if not num_classes:
                raise ValueError("MixUp needs num_classes (labels are mixed as one-hot vectors)")
            mixup = make_mixup(augment.mixup_alpha, seed)

            def mix(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                out = mixup({"images": images, "labels": tf.one_hot(labels, num_classes)})
                return out["images"], out["labels"]

            ds = ds.map(mix, num_parallel_calls=AUTOTUNE, deterministic=True)
    elif training and augment.mixup_alpha > 0:
        raise ValueError("MixUp mixes within a batch; set batch_size")
    return ds.prefetch(AUTOTUNE)
