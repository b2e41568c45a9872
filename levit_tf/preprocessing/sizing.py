"""Hugging Face's LeViT resize-size arithmetic, in Python and as TF ops.

``LevitImageProcessor.resize`` with ``size={"shortest_edge": s}`` resizes the
shortest edge to ``int((256 / 224) * s)`` (256 for s = 224) and the long edge to
``int(new_short * long / short)`` (truncation, ``get_resize_output_image_size``
with ``default_to_square=False``). ``size={"height": h, "width": w}`` resizes to
exactly (h, w).
"""

from __future__ import annotations

import tensorflow as tf


def levit_shortest_edge(shortest_edge: int) -> int:
    """The edge length LeViT actually resizes to: ``int((256 / 224) * shortest_edge)``."""
    return int((256 / 224) * shortest_edge)


def resize_output_size(height: int, width: int, size: dict[str, int]) -> tuple[int, int]:
    """(new_height, new_width) HF's LeViT processor resizes an (height, width) image to."""
    if size.get("shortest_edge"):
        new_short = levit_shortest_edge(size["shortest_edge"])
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(new_short * long / short)
        return (new_long, new_short) if width <= height else (new_short, new_long)
    if size.get("height") and size.get("width"):
        return int(size["height"]), int(size["width"])
    raise ValueError(
        f"size must have 'shortest_edge' or both 'height' and 'width'; got keys {sorted(size)}"
    )


def resize_output_size_tf(
    height: tf.Tensor, width: tf.Tensor, size: dict[str, int]
) -> tuple[tf.Tensor, tf.Tensor]:
    """Graph version of :func:`resize_output_size` for dynamic (height, width) int32 scalars.

    The long edge uses float64 true division then truncation, bit-identical to
    Python's ``int(new_short * long / short)``.
    """
    if size.get("shortest_edge"):
        new_short = levit_shortest_edge(size["shortest_edge"])
        height = tf.cast(height, tf.int32)
        width = tf.cast(width, tf.int32)
        portrait = width <= height
        short = tf.where(portrait, width, height)
        long = tf.where(portrait, height, width)
        ratio = tf.cast(new_short * long, tf.float64) / tf.cast(short, tf.float64)
        new_long = tf.cast(tf.floor(ratio), tf.int32)
        new_short_t = tf.constant(new_short, tf.int32)
        return (
            tf.where(portrait, new_long, new_short_t),
            tf.where(portrait, new_short_t, new_long),
        )
    h, w = resize_output_size(1, 1, size)
    return tf.constant(h, tf.int32), tf.constant(w, tf.int32)
