"""tf.data input pipelines for LeViT: folders, TFDS, numpy; PIL-exact eval transform."""

from levit_tf.data.arrays import array_dataset
from levit_tf.data.augment import random_flip, random_resized_crop, random_resized_crop_box
from levit_tf.data.decode import (
    BadImageError,
    ScannedFile,
    decode_image,
    scan_image_files,
    scanned_bytes_dataset,
)
from levit_tf.data.folder import image_folder_dataset, list_image_folder
from levit_tf.data.pipeline import (
    TrainAugment,
    build_pipeline,
    eval_config,
    eval_transform,
    train_transform,
)
from levit_tf.data.tfds_source import tfds_dataset

__all__ = [
    "BadImageError",
    "ScannedFile",
    "TrainAugment",
    "array_dataset",
    "build_pipeline",
    "decode_image",
    "eval_config",
    "eval_transform",
    "image_folder_dataset",
    "list_image_folder",
    "random_flip",
    "random_resized_crop",
    "random_resized_crop_box",
    "scan_image_files",
    "scanned_bytes_dataset",
    "tfds_dataset",
    "train_transform",
]
