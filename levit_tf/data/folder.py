"""Datasets from a folder of class subfolders (``root/<class>/<image>``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tensorflow as tf

from levit_tf.data.decode import OnError, decode_image, scan_image_files, scanned_bytes_dataset
from levit_tf.data.pipeline import build_pipeline


def list_image_folder(root: str | os.PathLike) -> tuple[list[str], list[int], list[str]]:
    """Files under ``root/<class>/`` (recursively, hidden files skipped).

    Returns (paths, labels, class_names); class names are the sorted subfolder names
    and labels their indices. Every file is listed (non-images are reported by the scan).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist or is not a directory")
    class_names = sorted(
        d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
    )
    if not class_names:
        raise ValueError(f"no class subfolders in {root}")
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(class_names):
        for path in sorted((root / name).rglob("*")):
            if path.is_file() and not any(
                part.startswith(".") for part in path.relative_to(root).parts
            ):
                paths.append(str(path))
                labels.append(label)
    return paths, labels, class_names


def image_folder_dataset(
    root: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] = 224,
    training: bool = False,
    batch_size: int | None = 32,
    on_error: OnError = "skip",
    validate: str = "full",
    seed: int | None = None,
    shuffle: bool | None = None,
    **pipeline_kwargs: Any,
) -> tf.data.Dataset:
    """(image float32 (S, S, 3) normalized, int32 label) batches from ``root/<class>/<file>``
    ((H, W, 3) for an ``image_size`` (H, W)).

    Bad files (not images, truncated, ...) are found by a PIL pre-scan and skipped with
    a warning naming each one (``on_error="skip"``) or raise ``BadImageError`` naming
    the file (``on_error="raise"``). The dataset gets ``class_names`` and ``file_paths``
    attributes. ``shuffle`` defaults to ``training``. Other keyword arguments go to
    :func:`levit_tf.data.pipeline.build_pipeline` (cache, augment, num_classes, ...).
    """
    paths, labels, class_names = list_image_folder(root)
    files, kept = scan_image_files(paths, on_error=on_error, validate=validate)
    if not files:
        raise ValueError(f"no readable images under {root}")
    kept_labels = tf.constant([labels[i] for i in kept], tf.int32)
    source = tf.data.Dataset.zip(
        (scanned_bytes_dataset(files), tf.data.Dataset.from_tensor_slices(kept_labels))
    ).map(lambda path_data, label: (path_data[1], label))
    shuffle = training if shuffle is None else shuffle
    pipeline_kwargs.setdefault("num_classes", len(class_names))
    ds = build_pipeline(
        source,
        decode_image,
        image_size=image_size,
        training=training,
        batch_size=batch_size,
        seed=seed,
        shuffle_buffer=len(files) if shuffle else None,
        ignore_errors=on_error == "skip",
        **pipeline_kwargs,
    )
    ds.class_names = class_names
    ds.file_paths = [f.path for f in files]
    return ds
