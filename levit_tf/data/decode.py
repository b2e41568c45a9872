"""Image decoding to uint8 RGB: an in-graph decoder plus a Python pre-scan that names bad files.

What ``tf.io`` decodes correctly (checked against PIL ``Image.convert("RGB")``):

* JPEG (RGB, grayscale, CMYK): ``tf.io.decode_jpeg(dct_method="INTEGER_ACCURATE")``
  equals Pillow's libjpeg output exactly; ``tf.io.decode_image``'s default (IFAST)
  DCT is up to ~5 levels off, so JPEGs are always routed to ``decode_jpeg``.
* PNG: RGB, RGBA and LA (alpha dropped), L, 1-bit, palette (with or without
  transparency; alpha dropped), 16-bit colour (``x >> 8``, as PIL reads it), 16-bit
  grayscale (clipped at 255, as PIL's ``I;16 -> RGB`` conversion: decoded separately).
* GIF: first frame. BMP: 24/32-bit and 8-bit grayscale.

Not decoded correctly by TF, so :func:`scan_image_files` converts them once with
PIL into in-memory PNG bytes: palette / 1-bit BMPs (TF returns the palette
indices or fails), and any other format PIL reads but TF does not (TIFF, WebP, ...).
Files PIL cannot open or fully decode are skipped with a warning naming them, or
raise ``BadImageError`` naming them with ``on_error="raise"``.
"""

from __future__ import annotations

import dataclasses
import io
import os
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import tensorflow as tf

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: (PIL format, PIL modes) that TF decodes correctly; ``None`` = any mode.
_TF_NATIVE = {"JPEG": None, "PNG": None, "GIF": None, "BMP": {"RGB", "RGBA", "L"}}

OnError = Literal["skip", "raise"]


class BadImageError(ValueError):
    """A file that is not a decodable image; the message names the file."""


def decode_image(data: tf.Tensor) -> tf.Tensor:
    """Encoded bytes (scalar tf.string) -> (H, W, 3) uint8, pure TF.

    JPEG goes through ``decode_jpeg`` with the accurate integer DCT (PIL-identical);
    PNG / GIF (first frame) / BMP through ``decode_image``.
    """
    is_jpeg = tf.strings.substr(data, 0, 3) == JPEG_MAGIC
    image = tf.cond(
        is_jpeg,
        lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.cond(
            _is_gray16_png(data),
            lambda: _decode_gray16_png(data),
            lambda: tf.io.decode_image(data, channels=3, expand_animations=False,
                                       dtype=tf.uint8),
        ),
    )
    image.set_shape([None, None, 3])
    return image


def _is_gray16_png(data: tf.Tensor) -> tf.Tensor:
    """PNG whose IHDR says bit depth 16, colour type 0 (grayscale): PIL opens it as I;16."""
    header = tf.strings.substr(tf.strings.join([data, tf.constant(b"\0" * 26)]), 0, 26)
    return ((tf.strings.substr(header, 0, 8) == PNG_MAGIC)
            & (tf.strings.substr(header, 24, 2) == b"\x10\x00"))


def _decode_gray16_png(data: tf.Tensor) -> tf.Tensor:
    """16-bit grayscale as PIL's ``convert("RGB")`` does it: values clipped at 255 (not
    scaled by 1/257 or ``>> 8``, which is what ``tf.io.decode_image(dtype=uint8)`` does)."""
    gray = tf.io.decode_png(data, channels=1, dtype=tf.uint16)
    gray = tf.cast(tf.minimum(gray, tf.constant(255, tf.uint16)), tf.uint8)
    return tf.tile(gray, [1, 1, 3])


@dataclasses.dataclass(frozen=True)
class ScannedFile:
    """A validated image file; ``inline`` holds PNG bytes when TF cannot decode the original."""

    path: str
    inline: bytes = b""


def _pil_rgb_png(image) -> bytes:
    import PIL.Image

    from levit_tf.preprocessing.inputs import pil_to_uint8

    buffer = io.BytesIO()
    PIL.Image.fromarray(pil_to_uint8(image)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _check_one(path: str, validate: str) -> ScannedFile:
    """Opens ``path`` with PIL; raises ``BadImageError`` naming it when it is not an image."""
    import PIL.Image

    try:
        with PIL.Image.open(path) as image:
            fmt, mode = image.format, image.mode
            native = fmt in _TF_NATIVE and (_TF_NATIVE[fmt] is None or mode in _TF_NATIVE[fmt])
            if not native:
                image.load()
                return ScannedFile(path, _pil_rgb_png(image))
            if validate == "full":
                if fmt == "JPEG":
                    image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as err:
        raise BadImageError(f"{path}: not a readable image ({type(err).__name__}: {err})") from err
    return ScannedFile(path)


def scan_image_files(
    paths: Sequence[str | os.PathLike],
    on_error: OnError = "skip",
    validate: Literal["full", "header"] = "full",
    num_workers: int | None = None,
) -> tuple[list[ScannedFile], list[int]]:
    """Checks every file with PIL before the dataset is built.

    Args:
        paths: image files.
        on_error: "skip" warns (naming each bad file) and drops it; "raise" raises
            ``BadImageError`` naming the first bad file.
        validate: "full" decodes each image (JPEGs at 1/8 scale) to catch truncation;
            "header" only parses headers (faster; corrupt pixel data then fails in TF,
            where ``ignore_errors`` drops it without a name).
        num_workers: threads for the scan (PIL releases the GIL while decoding).

    Returns:
        (kept files, indices of the kept files in ``paths``).
    """
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    if validate not in ("full", "header"):
        raise ValueError(f"validate must be 'full' or 'header', got {validate!r}")
    names = [os.fspath(p) for p in paths]

    def check(path: str) -> ScannedFile | BadImageError:
        try:
            return _check_one(path, validate)
        except BadImageError as err:
            return err

    workers = num_workers or min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(check, names))
    kept: list[ScannedFile] = []
    index: list[int] = []
    for i, result in enumerate(results):
        if isinstance(result, BadImageError):
            if on_error == "raise":
                raise result
            warnings.warn(f"skipping {result}", stacklevel=2)
            continue
        kept.append(result)
        index.append(i)
    return kept, index


def scanned_bytes_dataset(files: Iterable[ScannedFile]) -> tf.data.Dataset:
    """Dataset of (path, encoded bytes): the file contents, or the inline PNG if present."""
    files = list(files)
    paths = tf.constant([f.path for f in files], tf.string, shape=[len(files)])
    inline = tf.constant([f.inline for f in files], tf.string, shape=[len(files)])
    ds = tf.data.Dataset.from_tensor_slices((paths, inline))

    def read(path: tf.Tensor, inline_png: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        data = tf.cond(
            tf.strings.length(inline_png) > 0, lambda: inline_png, lambda: tf.io.read_file(path)
        )
        return path, data

    return ds.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
