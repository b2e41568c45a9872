"""The ``--data`` sources of ``levit-tf finetune``: an image folder, a TFDS dataset, or digits.

Every source gives batches of (float32 (B, S, S, 3) ImageNet-normalized, int32 (B,)) through
``levit_tf.data``: the eval transform (resize shortest edge to int(256/224 * S), centre crop S)
for the held-out part, random resized crops and flips for training (``augment=True``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow as tf

from levit_tf.data import (
    TrainAugment,
    build_pipeline,
    decode_image,
    list_image_folder,
    scan_image_files,
    tfds_dataset,
)
from levit_tf.data.decode import ScannedFile
from levit_tf.training.splits import stratified_split
from levit_tf.utils.image_size import ImageSize
from levit_tf.utils.optional import MissingDependency, require

TFDS_PREFIX = "tfds:"
DIGITS = "digits"
VAL_FOLDERS = ("val", "validation")


@dataclasses.dataclass
class DataSplits:
    """Train and held-out datasets, the class names (index = label) and the split sizes."""

    train: tf.data.Dataset
    val: tf.data.Dataset
    class_names: list[str]
    num_train: int
    num_val: int
    description: str


def load_data(spec: str, image_size: ImageSize, batch_size: int, seed: int = 0,
              val_fraction: float = 0.2, augment: bool = True) -> DataSplits:
    """``spec``: a folder (``DIR/<class>/*`` split by ``val_fraction``, or ``DIR/train`` +
    ``DIR/val``), ``tfds:NAME`` (its validation or test split, else a split of train), or
    ``digits``. Raises FileNotFoundError / ValueError naming the problem."""
    if spec == DIGITS:
        return _digits(image_size, batch_size, seed, val_fraction, augment)
    if spec.startswith(TFDS_PREFIX):
        data = _tfds(spec[len(TFDS_PREFIX):], image_size, batch_size, seed, val_fraction,
                     augment)
    else:
        data = _folder(Path(spec), image_size, batch_size, seed, val_fraction, augment)
    check_class_count(spec, data.class_names)
    return data


def check_class_count(spec: str, class_names: list[str]) -> None:
    """A classifier needs two classes at least: one class would 'train' to accuracy 1.0."""
    if len(class_names) < 2:
        names = ", ".join(repr(n) for n in class_names) or "none"
        plural = "" if len(class_names) == 1 else "es"
        raise ValueError(f"--data {spec}: {len(class_names)} class{plural} ({names}); a "
                         "classifier needs at least 2 classes to fine-tune (one subfolder per "
                         "class)")


def check_folder_classes(spec: str) -> None:
    """The cheap part of the folder checks (class subfolders only, no image is read), run
    before the model loads."""
    if spec == DIGITS or spec.startswith(TFDS_PREFIX):
        return
    root = Path(spec)
    if not root.is_dir():
        raise FileNotFoundError(
            f"--data {root}: no such directory (expected DIR/<class>/<image>, tfds:NAME or "
            f"{DIGITS})")
    if (root / "train").is_dir() and any((root / v).is_dir() for v in VAL_FOLDERS):
        root = root / "train"
    check_class_count(spec, sorted(d.name for d in root.iterdir()
                                   if d.is_dir() and not d.name.startswith(".")) or [])


def _augment(augment: bool) -> TrainAugment | None:
    return TrainAugment() if augment else None


def _digits(image_size: ImageSize, batch_size: int, seed: int, val_fraction: float,
            augment: bool) -> DataSplits:
    try:
        require("sklearn", "--data digits")
    except MissingDependency as err:
        raise ValueError(str(err)) from None
    from levit_tf.training.digits import CLASS_NAMES, digits_datasets

    train, val, split = digits_datasets(image_size, batch_size, seed, val_fraction, augment)
    return DataSplits(train, val, list(CLASS_NAMES), len(split.train_labels),
                      len(split.val_labels), "scikit-learn digits (8x8 gray, 10 classes)")


def _folder(root: Path, image_size: ImageSize, batch_size: int, seed: int, val_fraction: float,
            augment: bool) -> DataSplits:
    if not root.is_dir():
        raise FileNotFoundError(
            f"--data {root}: no such directory (expected DIR/<class>/<image>, tfds:NAME or "
            f"{DIGITS})")
    val_dir = next((root / name for name in VAL_FOLDERS if (root / name).is_dir()), None)
    common = dict(image_size=image_size, batch_size=batch_size, seed=seed, augment=augment)
    if (root / "train").is_dir() and val_dir is not None:
        train_files, train_labels, class_names = _scan_folder(root / "train")
        val_files, val_labels, val_names = _scan_folder(val_dir)
        if val_names != class_names:
            raise ValueError(f"{root}: train/ and {val_dir.name}/ have different class folders")
        return DataSplits(
            _image_pipeline(train_files, train_labels, training=True, **common),
            _image_pipeline(val_files, val_labels, training=False, **common), class_names,
            len(train_files), len(val_files), f"folder {root} (train/, {val_dir.name}/)")
    files, labels, class_names = _scan_folder(root)
    train_idx, val_idx = stratified_split(labels, val_fraction, seed)
    return DataSplits(
        _image_pipeline([files[i] for i in train_idx], labels[train_idx], training=True,
                        **common),
        _image_pipeline([files[i] for i in val_idx], labels[val_idx], training=False, **common),
        class_names, len(train_idx), len(val_idx),
        f"folder {root} ({val_fraction:.0%} held out per class, seed {seed})")


def _scan_folder(root: Path) -> tuple[list[ScannedFile], np.ndarray, list[str]]:
    """Readable images under ``root/<class>/`` (bad files skipped with a warning naming them)."""
    paths, labels, class_names = list_image_folder(root)
    files, kept = scan_image_files(paths, on_error="skip")
    if not files:
        raise ValueError(f"no readable images under {root}")
    return files, np.asarray(labels, np.int32)[kept], class_names


def _image_pipeline(files: list[ScannedFile], labels: np.ndarray, *, training: bool,
                    image_size: ImageSize, batch_size: int, seed: int, augment: bool
                    ) -> tf.data.Dataset:
    """Encoded files -> batches; the train part is reshuffled every epoch (seeded) by index,
    before any file is read."""
    paths = tf.constant([f.path for f in files], tf.string, shape=[len(files)])
    inline = tf.constant([f.inline for f in files], tf.string, shape=[len(files)])
    label_table = tf.constant(labels, tf.int32, shape=[len(files)])
    source = tf.data.Dataset.range(len(files))
    if training:
        source = source.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)

    def read(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        data = tf.cond(tf.strings.length(inline[index]) > 0, lambda: inline[index],
                       lambda: tf.io.read_file(paths[index]))
        return data, label_table[index]

    source = source.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return build_pipeline(source, decode_image, image_size=image_size,
                          training=training and augment, batch_size=batch_size, seed=seed,
                          augment=_augment(augment), ignore_errors=True)


def _tfds(name: str, image_size: ImageSize, batch_size: int, seed: int, val_fraction: float,
          augment: bool) -> DataSplits:
    try:
        require("tensorflow_datasets", f"--data tfds:{name}")
    except MissingDependency as err:
        raise ValueError(str(err)) from None
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name)
        splits = builder.info.splits
        if not builder.is_prepared():
            raise FileNotFoundError(f"TFDS dataset {name!r} is not downloaded; prepare it with "
                                    f"`tfds build {name}` (data dir {builder.data_dir})")
    except (tfds.core.registered.DatasetNotFoundError, tfds.core.DatasetNotFoundError) as err:
        raise ValueError(f"--data tfds:{name}: {err}") from None
    val_split = next((s for s in ("validation", "test") if s in splits), None)
    if val_split is not None:
        train_split = "train"
        num_train, num_val = splits["train"].num_examples, splits[val_split].num_examples
    else:
        cut = round(100 * (1 - val_fraction))
        train_split, val_split = f"train[:{cut}%]", f"train[{cut}%:]"
        num_train, num_val = splits[train_split].num_examples, splits[val_split].num_examples
    common = dict(image_size=image_size, batch_size=batch_size, seed=seed)
    train = tfds_dataset(name, train_split, training=augment, augment=_augment(augment),
                         **common)
    val = tfds_dataset(name, val_split, training=False, **common)
    class_names = list(train.class_names or [str(i) for i in range(_num_classes(builder))])
    return DataSplits(train, val, class_names, num_train, num_val,
                      f"TFDS {name} ({train_split} / {val_split})")


def _num_classes(builder) -> int:
    label = builder.info.features["label"]
    return int(label.num_classes)


__all__ = ["DIGITS", "TFDS_PREFIX", "DataSplits", "load_data", "stratified_split"]
