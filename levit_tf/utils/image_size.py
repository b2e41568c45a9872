"""Input sizes: S (square) or (height, width), parsed and formatted in one place.

A leaf module (no TensorFlow, no other levit_tf imports): ``LevitConfig``, the resolution code
and every CLI's ``--image-size`` use it, so argument errors need nothing heavy.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence

#: An input size: S (square) or (height, width).
ImageSize = int | tuple[int, int]

#: LeViT's stem: four stride-2 convolutions, so sides are multiples of 16 by default.
DEFAULT_PATCH_SIZE = 16

_SIZE = re.compile(r"^\s*(\d+)\s*(?:[xX,]\s*(\d+)\s*)?$")


def parse_image_size(text: str | int | Sequence[int],
                     patch_size: int = DEFAULT_PATCH_SIZE) -> ImageSize:
    """'256' -> 256, '192x256' -> (192, 256) (height x width); ints and pairs pass through
    (square pairs become ints, as LevitConfig stores them).

    Raises ValueError naming the value when a side is not a positive multiple of
    ``patch_size`` (the stem's total stride).
    """
    if isinstance(text, str):
        match = _SIZE.match(text)
        if not match:
            raise ValueError(f"image size {text!r}: expected N or HxW, e.g. 256 or 192x256")
        height, width = int(match.group(1)), int(match.group(2) or match.group(1))
        size: ImageSize = height if height == width else (height, width)
    elif isinstance(text, bool):
        raise ValueError(f"image size {text!r}: expected an int or (height, width)")
    elif isinstance(text, int):
        size = text
    else:
        try:
            values = tuple(int(v) for v in text)
        except (TypeError, ValueError):
            raise ValueError(f"image size {text!r}: expected an int or (height, width)") from None
        if len(values) != 2:
            raise ValueError(f"image size {text!r}: expected an int or (height, width)")
        size = values if values[0] != values[1] else values[0]
    for side in image_hw(size):
        if side <= 0 or side % patch_size:
            raise ValueError(f"image size {text!r}: {side} is not a positive multiple of "
                             f"{patch_size} (the stem's total stride)")
    return size


def image_hw(size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) of an int or (height, width) size."""
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def format_hw(hw: tuple[int, int]) -> str:
    """'192x256' (height x width)."""
    return f"{hw[0]}x{hw[1]}"


def format_size(size: int | Sequence[int]) -> str:
    """'224' for a square size, '192x256' (height x width) otherwise."""
    height, width = image_hw(size)
    return str(height) if height == width else format_hw((height, width))


def image_size_argument(text: str) -> ImageSize:
    """argparse ``type`` of the CLIs' ``--image-size``: '256' or '192x256'."""
    try:
        return parse_image_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


__all__ = ["DEFAULT_PATCH_SIZE", "ImageSize", "format_hw", "format_size", "image_hw",
           "image_size_argument", "parse_image_size"]
