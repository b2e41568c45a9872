"""Datasets from in-memory numpy images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from levit_tf.data.pipeline import build_pipeline
from levit_tf.preprocessing.inputs import array_to_uint8


def array_dataset(
    images: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray | Sequence[int],
    *,
    image_size: int | tuple[int, int] = 224,
    training: bool = False,
    batch_size: int | None = 32,
    seed: int | None = None,
    shuffle: bool | None = None,
    **pipeline_kwargs: Any,
) -> tf.data.Dataset:
    """(float32 (S, S, 3), int32 label) pipeline from uint8 images ((H, W, 3) for an
    ``image_size`` (H, W)).

    ``images`` is a (N, H, W[, C]) array or a list of (H, W[, C]) arrays of any sizes
    (uint8, uint16 or bool; C in 1..4). ``labels`` has N integer entries.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be a 1-D integer array, got shape {labels.shape} {labels.dtype}"
        )
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if isinstance(images, np.ndarray) and images.ndim in (3, 4):
        batch = array_to_uint8(images[0]) if len(images) else None
        del batch  # validates dtype / channels of the first image
        arr = (
            np.stack([array_to_uint8(im) for im in images]) if images.dtype != np.uint8 else images
        )
        source = tf.data.Dataset.from_tensor_slices((arr, labels))
    else:
        converted = [array_to_uint8(np.asarray(im)) for im in images]
        ranks = {im.ndim for im in converted}
        if len(ranks) > 1:
            converted = [im if im.ndim == 3 else im[:, :, None] for im in converted]
        rank = converted[0].ndim if converted else 3

        def gen():
            yield from zip(converted, labels.tolist(), strict=True)

        source = tf.data.Dataset.from_generator(
            gen,
            output_signature=(
                tf.TensorSpec([None] * rank, tf.uint8),
                tf.TensorSpec([], tf.int64),
            ),
        )
    shuffle = training if shuffle is None else shuffle
    return build_pipeline(
        source,
        None,
        image_size=image_size,
        training=training,
        batch_size=batch_size,
        seed=seed,
        shuffle_buffer=len(labels) if shuffle else None,
        **pipeline_kwargs,
    )
