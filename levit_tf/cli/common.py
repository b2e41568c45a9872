"""Helpers shared by the verbs: loading a model or images for a verb, option checks made
before any work, the --accelerator option."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from levit_tf.cli.errors import UserError


def load_model(source: str):
    """A LeViT model from a .keras file or any convert SOURCE; UserError naming what is wrong."""
    from levit_tf.converters import ConversionError, load_pretrained

    try:
        return load_pretrained(source)
    except (ConversionError, FileNotFoundError) as err:
        raise UserError(str(err)) from None


def load_images(paths: list[str], image_size: tuple[int, int]):
    """Files -> normalized (N, H, W, 3) through the exact eval transform; errors name the file."""
    import numpy as np
    import tensorflow as tf

    from levit_tf.data import BadImageError, decode_image, scan_image_files
    from levit_tf.data.pipeline import eval_config
    from levit_tf.preprocessing.transforms import preprocess_image

    for path in paths:
        if not os.path.isfile(path):
            raise UserError(f"{path}: no such file")
    try:
        files, _ = scan_image_files(paths, on_error="raise")
    except BadImageError as err:
        raise UserError(str(err)) from None
    config = eval_config(image_size)
    images = []
    for scanned in files:
        data = scanned.inline or tf.io.read_file(scanned.path)
        images.append(preprocess_image(decode_image(tf.constant(data)), config).numpy())
    return np.stack(images)


def held_out_images(source: str | None, count: int, image_size: tuple[int, int]):
    """Normalized held-out images for fidelity, from a folder / tfds:NAME / digits[:SPLIT]."""
    import numpy as np

    from levit_tf.tflite.calibration import normalized_images

    if source is None:
        return None
    try:
        dataset = normalized_images(source, image_size)
        images = np.stack(list(dataset.take(count).as_numpy_iterator()))
    except (ValueError, OSError) as err:
        raise UserError(f"--images {source}: {err}") from None
    return images


def check_count(count: int) -> None:
    if count < 1:
        raise UserError(f"--count must be at least 1, got {count}")


def check_images_source(source: str | None) -> None:
    """--images must name a folder or tfds:NAME[:SPLIT]; checked before any work."""
    if source is None or source.startswith("tfds:"):
        return
    if not Path(source).is_dir():
        what = "is not a folder" if Path(source).exists() else "no such folder"
        raise UserError(f"--images {source}: {what} (expected a folder of images or "
                        "tfds:NAME[:SPLIT])")


def tflite_report(path, model, images, accelerator: str, bounds: dict[str, float] | None = None):
    from levit_tf.tflite.compiled import GpuUnavailable
    from levit_tf.tflite.report import build_report

    try:
        return build_report(path, model, images, gpu=accelerator == "gpu", bounds=bounds)
    except (ValueError, GpuUnavailable) as err:
        raise UserError(str(err)) from None


def accelerator_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu",
                        help="gpu: also report LiteRT's GPU verdict per file (fully "
                             "GPU-accelerated or the ops left to the CPU) and the GPU-vs-CPU "
                             "logit difference at fp16 and enforce_f32 (see gpu-runtime)")
