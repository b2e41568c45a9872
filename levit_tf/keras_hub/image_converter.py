"""``LevitImageConverter``: keras-hub's image converter running this package's PIL-exact eval
transform (``levit_tf.preprocessing``), not a plain resize.

Shortest edge to ``int(256 / 224 * max(H, W))`` (256 for 224 px), centre crop to
``image_size`` (crop_pct = 224 / 256), Pillow-exact bicubic, then HF's rescale and
normalization: the pixels ``LevitImageProcessor`` (and HF's PIL processor) give, bit for bit.
The transform is a TensorFlow graph on every Keras backend (as keras-hub's own preprocessing
runs in TensorFlow / tf.data); outputs come back as the backend's tensors (NumPy in Grain).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras_hub.layers import ImageConverter
from keras_hub.src.utils.tensor_utils import preprocessing_function

from levit_tf.converters.preset_files import check_local_preset
from levit_tf.data.pipeline import eval_config
from levit_tf.keras_hub.backbone import LevitBackbone, standardize_data_format
from levit_tf.preprocessing.config import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from levit_tf.preprocessing.pil_resample import BICUBIC, BILINEAR
from levit_tf.preprocessing.transforms import preprocess_image

#: keras-hub interpolation names -> PIL resample codes implemented PIL-exactly.
RESAMPLE = {"bicubic": BICUBIC, "bilinear": BILINEAR}


def _triple(value: Sequence[float], name: str) -> list[float]:
    values = [float(v) for v in value]
    if len(values) != 3:
        raise ValueError(f"LevitImageConverter: {name} must have 3 values (RGB), got {value!r}")
    return values


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """uint8 images as they are; other dtypes are 0..255 values (keras-hub's image convention,
    e.g. ``keras.utils.img_to_array``), rounded and clipped to uint8 (PIL works on 8 bits)."""
    if images.dtype == tf.uint8:
        return images
    if images.dtype == tf.uint16:
        return tf.cast(tf.bitwise.right_shift(images, 8), tf.uint8)
    if images.dtype.is_floating:
        return tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8)
    if images.dtype.is_integer or images.dtype.is_bool:
        return tf.cast(tf.clip_by_value(tf.cast(images, tf.int32), 0, 255), tf.uint8)
    raise TypeError(f"LevitImageConverter: images must be numeric, got dtype {images.dtype.name}")


@keras.saving.register_keras_serializable(package="levit_tf")
class LevitImageConverter(ImageConverter):
    """Images (B, H, W, C) or (H, W, C), any size, 0..255 -> model input (B, h, w, 3) float.

    Args:
        image_size: (height, width) of the model input (the centre crop).
        mean, std: per-channel normalization of the [0, 1] pixels (ImageNet's by default).
        interpolation: "bicubic" (LeViT's) or "bilinear", both Pillow-exact.
        data_format: "channels_last" or "channels_first" (of the input and the output).
    """

    backbone_cls = LevitBackbone

    def __init__(self, image_size: Sequence[int] = (224, 224),
                 mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
                 std: Sequence[float] = IMAGENET_DEFAULT_STD, interpolation: str = "bicubic",
                 data_format: str | None = None, **kwargs: Any) -> None:
        if interpolation not in RESAMPLE:
            raise ValueError(f"LevitImageConverter: interpolation must be one of "
                             f"{sorted(RESAMPLE)} (Pillow-exact), got {interpolation!r}")
        image_size = tuple(int(s) for s in image_size)
        if len(image_size) != 2 or min(image_size) <= 0:
            raise ValueError(f"LevitImageConverter: image_size must be (height, width), got "
                             f"{image_size!r}")
        self.mean, self.std = _triple(mean, "mean"), _triple(std, "std")
        super().__init__(image_size=image_size, interpolation=interpolation,
                         crop_to_aspect_ratio=True, data_format=data_format, **kwargs)
        self.data_format = standardize_data_format(data_format)
        self.processor_config = dataclasses.replace(
            eval_config(image_size), resample=RESAMPLE[interpolation],
            image_mean=tuple(self.mean), image_std=tuple(self.std))

    def _preprocess_one(self, image: tf.Tensor) -> tf.Tensor:
        return preprocess_image(image, self.processor_config)

    def _transform(self, images: tf.Tensor) -> tf.Tensor:
        channels_first = self.data_format == "channels_first"
        rank = images.shape.rank
        if rank not in (3, 4):
            raise ValueError(f"LevitImageConverter: expected images (B, H, W, C) or (H, W, C), "
                             f"got shape {images.shape}")
        images = to_uint8(images)
        if channels_first:
            images = tf.transpose(images, (1, 2, 0) if rank == 3 else (0, 2, 3, 1))
        if rank == 3:
            out = self._preprocess_one(images)
        else:
            height, width = self.image_size
            out = tf.map_fn(self._preprocess_one, images,
                            fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32))
        if channels_first:
            out = tf.transpose(out, (2, 0, 1) if rank == 3 else (0, 3, 1, 2))
        return tf.cast(out, self.compute_dtype)

    @preprocessing_function
    def call(self, inputs):
        if isinstance(inputs, (list, tuple)):  # images of different sizes: one by one
            return [self.call(image) for image in inputs]
        if not isinstance(inputs, tf.Tensor):
            inputs = tf.convert_to_tensor(np.asarray(keras.ops.convert_to_numpy(inputs)))
        return self._transform(inputs)

    @classmethod
    def from_preset(cls, preset: Any, **kwargs: Any) -> ImageConverter:
        """keras-hub's ``from_preset``; a local directory's config.json is checked first."""
        check_local_preset(preset, weights=False)
        return super().from_preset(preset, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = keras.layers.Layer.get_config(self)  # not ImageConverter's resize arguments
        config.update(image_size=list(self.image_size), mean=self.mean, std=self.std,
                      interpolation=self.interpolation, data_format=self.data_format)
        return config


__all__ = ["RESAMPLE", "LevitImageConverter", "to_uint8"]
