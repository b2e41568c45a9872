"""The user's labelled images as encoded bytes, and their pixels through the exact eval transform.

Every image is kept as what a deployed model receives: the file's own bytes (JPEG, PNG, ...;
formats TensorFlow cannot decode exactly are PNG-converted by the folder scan, as ``finetune``
reads them), or lossless PNG bytes of a TFDS / digits array. A SavedModel gets those bytes; a
Keras or .tflite model gets :func:`eval_pixels` of them: ``decode_image`` then the PIL-exact LeViT
eval transform at the model's size (``levit_tf.data.eval_config``), the path of ``finetune``'s
held-out split and of ``levit-tf predict``.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from levit_tf.data import decode_image, eval_config, list_image_folder, scan_image_files
from levit_tf.data.decode import ScannedFile
from levit_tf.evaluation.sources import (
    DIGITS,
    HELD_OUT_FRACTION,
    HELD_OUT_SEED,
    TFDS_PREFIX,
    EvaluationError,
    check_data,
    class_folder_root,
)
from levit_tf.preprocessing.transforms import preprocess_image


@dataclasses.dataclass
class LabelledImages:
    """N labelled images: ``ids`` (file paths or ``source[i]``), ``labels`` (N,) int32 indices
    into ``class_names``; ``skipped``: unreadable files left out (each named in a warning)."""

    ids: list[str]
    labels: np.ndarray
    class_names: list[str]
    description: str
    files: list[ScannedFile] | None = None  # folders: read when needed
    blobs: list[bytes] | None = None  # TFDS / digits: PNG bytes
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.labels)

    def encoded(self, indices: Sequence[int]) -> list[bytes]:
        """The encoded bytes of the images at ``indices``."""
        if self.blobs is not None:
            return [self.blobs[i] for i in indices]
        return [self.files[i].inline or Path(self.files[i].path).read_bytes() for i in indices]

    def subset(self, indices: np.ndarray) -> LabelledImages:
        """The images at ``indices`` (in that order)."""
        pick = [int(i) for i in indices]
        return dataclasses.replace(
            self, ids=[self.ids[i] for i in pick], labels=self.labels[pick],
            files=None if self.files is None else [self.files[i] for i in pick],
            blobs=None if self.blobs is None else [self.blobs[i] for i in pick])


def load_labelled_images(spec: str, limit: int | None = None) -> LabelledImages:
    """The images of ``spec`` (see ``levit_tf.evaluation.sources``); ``limit``: a seeded random
    subset of that many (kept in source order). Raises EvaluationError naming the problem."""
    check_data(spec)
    if spec == DIGITS:
        data = _digits()
    elif spec.startswith(TFDS_PREFIX):
        data = _tfds(spec)
    else:
        data = _folder(Path(spec))
    if limit is not None and limit < len(data):
        keep = np.sort(np.random.default_rng(0).permutation(len(data))[:limit])
        data = data.subset(keep)
        data.description += f", a random {limit} of them (seed 0)"
    return data


def _folder(root: Path) -> LabelledImages:
    folder = class_folder_root(root)
    paths, labels, class_names = list_image_folder(folder)
    files, kept = scan_image_files(paths, on_error="skip")  # a warning names each bad file
    labels = np.asarray(labels, np.int32)[kept]
    counts = np.bincount(labels, minlength=len(class_names))
    for name, count in zip(class_names, counts, strict=True):
        if count == 0:
            raise EvaluationError(f"--data {root}: class folder {folder / name} holds no "
                                  "readable images")
    return LabelledImages([f.path for f in files], labels, class_names,
                          f"folder {folder}", files=files, skipped=len(paths) - len(files))


def png_bytes(image: np.ndarray) -> bytes:
    """(H, W) or (H, W, 1 | 3 | 4) uint8 -> lossless PNG bytes."""
    import PIL.Image

    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.ascontiguousarray(image)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _digits() -> LabelledImages:
    from levit_tf.training.digits import CLASS_NAMES, load_digits_split

    split = load_digits_split(HELD_OUT_FRACTION, HELD_OUT_SEED)
    return LabelledImages(
        [f"digits:held-out[{i}]" for i in range(len(split.val_labels))],
        split.val_labels.astype(np.int32), list(CLASS_NAMES),
        f"scikit-learn digits, the {HELD_OUT_FRACTION:.0%} finetune --data digits holds out "
        f"(seed {HELD_OUT_SEED})", blobs=[png_bytes(image) for image in split.val_images])


def _tfds(spec: str) -> LabelledImages:
    import tensorflow_datasets as tfds

    name, _, split = spec[len(TFDS_PREFIX):].partition(":")
    try:
        builder = tfds.builder(name)
        if not builder.is_prepared():
            raise EvaluationError(f"--data {spec}: TFDS dataset {name!r} is not downloaded; "
                                  f"prepare it with `tfds build {name}` (data dir "
                                  f"{builder.data_dir})")
        splits = builder.info.splits
        features = builder.info.features
    except (tfds.core.registered.DatasetNotFoundError, tfds.core.DatasetNotFoundError) as err:
        raise EvaluationError(f"--data {spec}: {err}".splitlines()[0]) from None
    if not split:
        split = next((s for s in ("validation", "test") if s in splits),
                     f"train[{round(100 * (1 - HELD_OUT_FRACTION))}%:]")
    for key in ("image", "label"):
        if key not in features:
            raise EvaluationError(f"--data {spec}: TFDS dataset {name!r} has no {key!r} feature "
                                  f"(it has {', '.join(features)})")
    class_names = list(getattr(features["label"], "names", None) or [])
    if not class_names:
        raise EvaluationError(f"--data {spec}: the 'label' feature of {name!r} has no class "
                              "names to match the models' labels with")
    try:
        dataset = builder.as_dataset(split=split, shuffle_files=False)
    except ValueError as err:
        raise EvaluationError(f"--data {spec}: {err}".splitlines()[0]) from None
    blobs, labels = [], []
    for example in dataset.as_numpy_iterator():
        blobs.append(png_bytes(example["image"]))
        labels.append(int(example["label"]))
    if not blobs:
        raise EvaluationError(f"--data {spec}: split {split!r} holds no images")
    return LabelledImages([f"{name}:{split}[{i}]" for i in range(len(blobs))],
                          np.asarray(labels, np.int32), class_names,
                          f"TFDS {name} ({split})", blobs=blobs)


def eval_pixels(encoded: Sequence[bytes], image_size: tuple[int, int]) -> np.ndarray:
    """Encoded images -> float32 (N, H, W, 3) normalized pixel_values: ``decode_image`` and the
    exact LeViT eval transform for ``image_size`` (H, W)."""
    config = eval_config(tuple(image_size))
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(encoded), tf.string))
    dataset = dataset.map(lambda data: preprocess_image(decode_image(data), config),
                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    batches = [batch.numpy() for batch in dataset.batch(64)]
    return np.concatenate(batches) if batches else np.zeros((0, *image_size, 3), np.float32)


__all__ = ["LabelledImages", "eval_pixels", "load_labelled_images", "png_bytes"]
