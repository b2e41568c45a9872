"""Calibration images for full-integer quantization, through the exact eval pipeline.

A source is a folder of images (searched recursively; class subfolders are fine), ``tfds:NAME``
or ``tfds:NAME:SPLIT``, a ``tf.data.Dataset`` of normalized images (or (image, label) pairs),
or a numpy array (N, H, W, 3) of normalized images. Files go through the PIL-exact LeViT eval
transform (resize, center crop, normalize) at the model's input size.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from levit_tf.preprocessing.config import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

logger = logging.getLogger("levit_tf.tflite.calibration")

#: Calibration images used when no count is given (fewer if the data has fewer).
DEFAULT_CALIBRATION_STEPS = 200
#: Below this many images a default-count calibration warns.
MIN_CALIBRATION_IMAGES = 50
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
    # A fixed shuffle: the first N images (calibration takes 200, reports 100) are spread over
    # every class subfolder instead of being the first folders' (one or two classes' ranges).
    paths = [paths[i] for i in np.random.default_rng(0).permutation(len(paths))]
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


def calibration_images(source: CalibrationSource, steps: int | None,
                       image_size: tuple[int, int],
                       to_model_input: Callable[[np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """Single calibration images (1, H, W, 3) in the model's input domain.

    ``steps``: how many. None uses the images that exist, up to ``DEFAULT_CALIBRATION_STEPS``,
    logs the count and warns below ``MIN_CALIBRATION_IMAGES``; an explicit ``steps`` larger
    than the data raises ValueError naming both numbers (calibration never silently uses
    fewer images than asked for). ``to_model_input`` maps normalized pixels to the input domain.
    """
    if steps is not None and steps < 1:
        raise ValueError(f"needs at least 1 calibration step, got {steps}")
    wanted = DEFAULT_CALIBRATION_STEPS if steps is None else steps
    dataset = normalized_images(source, image_size)
    images: list[np.ndarray] = []
    for image in dataset.take(wanted).as_numpy_iterator():
        if image.shape[:2] != tuple(image_size):
            raise ValueError(f"calibration image of shape {image.shape}, model takes "
                             f"{tuple(image_size)}")
        images.append(to_model_input(image[None].astype(np.float32)))
    if not images:
        raise ValueError(f"calibration data {source_name(source)} yielded no images")
    if steps is not None and len(images) < steps:
        raise ValueError(f"calibration data {source_name(source)} has {len(images)} images, "
                         f"--calibration-steps asks for {steps} (lower it or add images)")
    if steps is None:
        logger.info("calibrating on %d images", len(images))
        if len(images) < MIN_CALIBRATION_IMAGES:
            logger.warning("calibration data %s has only %d images; ranges (or GPTQ) from "
                           "fewer than %d are unreliable", source_name(source), len(images),
                           MIN_CALIBRATION_IMAGES)
    return images


def representative_dataset(images: list[np.ndarray]) -> Callable[[], Iterator[list[Any]]]:
    """The converter's generator over ``calibration_images``' output, with a progress bar."""

    def generate() -> Iterator[list[Any]]:
        from tqdm.auto import tqdm

        for image in tqdm(images, desc="calibrating", unit="image", leave=False):
            yield [image]

    return generate


def source_name(source: CalibrationSource) -> str:
    """How messages name a calibration source: its path or spec, or its kind."""
    if isinstance(source, np.ndarray):
        return f"(array {source.shape})"
    if isinstance(source, tf.data.Dataset):
        return "(tf.data.Dataset)"
    return str(source)
