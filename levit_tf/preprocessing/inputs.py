"""Conversion of user inputs (PIL images, numpy arrays, tf tensors, lists) to uint8 images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

try:  # pillow is a dependency, but keep the TF path importable without it
    import PIL.Image
except ImportError:  # pragma: no cover
    PIL = None  # type: ignore[assignment]


def _is_pil(image: Any) -> bool:
    return PIL is not None and isinstance(image, PIL.Image.Image)


def pil_to_uint8(image: PIL.Image.Image) -> np.ndarray:
    """PIL image -> (H, W, 3) uint8 RGB.

    Exactly HF's ``convert_to_rgb`` (``Image.convert("RGB")``: alpha dropped, palette
    expanded, CMYK converted, 16-bit grayscale ``I;16*`` clipped at 255 as PIL does).
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def array_to_uint8(image: np.ndarray) -> np.ndarray:
    """numpy (H, W) / (H, W, C<=4) uint8, uint16 (scaled >> 8) or bool (0/255) -> uint8 array."""
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got array of shape {image.shape}")
    if image.ndim == 3 and image.shape[-1] not in (1, 2, 3, 4):
        hint = " (channels-first? transpose to (H, W, C))" if image.shape[0] in (1, 3, 4) else ""
        raise ValueError(f"expected 1-4 channels in the last axis, got shape {image.shape}{hint}")
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    raise TypeError(
        f"expected uint8 pixel values (0..255), got dtype {image.dtype}; "
        "e.g. use (x * 255).round().astype(np.uint8) for floats in [0, 1]"
    )


def to_image_list(images: Any) -> list[np.ndarray | tf.Tensor]:
    """Normalises one image or a batch/list of images to a list of uint8 arrays or tensors.

    Accepted: PIL image, numpy array (H, W[, C]) or batch (B, H, W, C), tf.Tensor of
    the same shapes, or a list/tuple of any of these (sizes may differ).
    """
    if _is_pil(images):
        return [pil_to_uint8(images)]
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            return [array_to_uint8(im) for im in images]
        return [array_to_uint8(images)]
    if isinstance(images, tf.Tensor):
        if images.shape.rank == 4:
            return list(tf.unstack(images))
        return [images]
    if isinstance(images, Sequence) and not isinstance(images, (str, bytes)):
        if len(images) == 0:
            raise ValueError("got an empty list of images")
        out: list[np.ndarray | tf.Tensor] = []
        for i, image in enumerate(images):
            if isinstance(image, (np.ndarray, tf.Tensor)) and len(image.shape) == 4:
                raise ValueError(f"image {i} is a batch (shape {image.shape}); pass a flat list")
            out.extend(to_image_list(image))
        return out
    raise TypeError(
        f"unsupported image type {type(images).__name__}; expected a PIL image, a numpy array, "
        "a tf.Tensor or a list of them"
    )
