"""Calibration images for full-integer quantization, through the exact eval pipeline.

A source is a folder of images (searched recursively; class subfolders are fine), ``tfds:NAME``
or ``tfds:NAME:SPLIT``, a ``tf.data.Dataset`` of normalized images (or (image, label) pairs),
or a numpy array (N, H, W, 3) of normalized images. Files go through the PIL-exact LeViT eval
transform (resize, center crop, normalize) at the model's input size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from levit_tf.preprocessing.config import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
CalibrationSource = str | os.PathLike | tf.data.Dataset | np.ndarray


def to_input_domain(normalized: np.ndarray, input_mode: str) -> np.ndarray:
    """Normalized pixel_values -> what a model exported with ``input_mode`` takes."""
    if input_mode == "normalized":
        return normalized.astype(np.float32)
    raw = np.clip(np.round((normalized * IMAGENET_DEFAULT_STD + IMAGENET_DEFAULT_MEAN) * 255),
                  0, 255)
    return raw.astype(np.uint8 if input_mode == "uint8" else np.float32)


def _folder_dataset(root: Path, image_size: tuple[int, int]) -> tf.data.Dataset:
    from levit_tf.data import build_pipeline, decode_image, scan_image_files, scanned_bytes_dataset

    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"{root}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    files, _ = scan_image_files(paths, on_error="skip")
    if not files:
        raise ValueError(f"{root}: none of the {len(paths)} image files could be read")
    source = scanned_bytes_dataset(files).map(lambda path, data: (data, 0))
    return build_pipeline(source, decode_image, image_size=image_size, batch_size=None)


def _tfds_dataset(spec: str, image_size: tuple[int, int]) -> tf.data.Dataset:
    from levit_tf.data import tfds_dataset

    parts = spec.split(":")
    name, split = parts[1], parts[2] if len(parts) > 2 else "train"
    return tfds_dataset(name, split, image_size=image_size, batch_size=None, shuffle_buffer=None)


def normalized_images(source: CalibrationSource, image_size: tuple[int, int]) -> tf.data.Dataset:
    """A dataset of normalized float32 (H, W, 3) images from any supported source."""
    if isinstance(source, np.ndarray):
        dataset = tf.data.Dataset.from_tensor_slices(source.astype(np.float32))
    elif isinstance(source, tf.data.Dataset):
        dataset = source
    elif str(source).startswith("tfds:"):
        dataset = _tfds_dataset(str(source), tuple(image_size))
    elif Path(source).is_dir():
        dataset = _folder_dataset(Path(source), tuple(image_size))
    else:
        raise ValueError(f"calibration data {source!r}: expected a folder of images, "
                         "'tfds:NAME[:SPLIT]', a tf.data.Dataset or a numpy array")
    spec = dataset.element_spec
    if isinstance(spec, tuple):
        dataset = dataset.map(lambda image, *_: image)
    return dataset


def representative_dataset(source: CalibrationSource, steps: int, image_size: tuple[int, int],
                           to_model_input: Callable[[np.ndarray], np.ndarray]
                           ) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The converter's generator: ``steps`` single images (1, H, W, 3) in the model's input
    domain (``to_model_input`` maps normalized pixels to it). Raises if the source runs dry
    before ``steps`` images, so that calibration never silently uses fewer."""
    dataset = normalized_images(source, image_size)
    images: list[np.ndarray] = []
    for image in dataset.take(steps).as_numpy_iterator():
        if image.shape[:2] != tuple(image_size):
            raise ValueError(f"calibration image of shape {image.shape}, model takes "
                             f"{tuple(image_size)}")
        images.append(to_model_input(image[None].astype(np.float32)))
    if len(images) < steps:
        raise ValueError(f"calibration data has {len(images)} images, {steps} requested "
                         "(lower --calibration-steps or add images)")

    def generate() -> Iterator[list[Any]]:
        from tqdm.auto import tqdm

        for image in tqdm(images, desc="calibrating", unit="image", leave=False):
            yield [image]

    return generate
