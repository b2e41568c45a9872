"""``LevitImageClassifierPreprocessor``: keras-hub's image-classifier preprocessor with the
LeViT image converter (``LevitImageConverter``)."""

from __future__ import annotations

from typing import Any

import keras
from keras_hub.models import ImageClassifierPreprocessor

from levit_tf.converters.preset_files import check_local_preset
from levit_tf.keras_hub.backbone import LevitBackbone
from levit_tf.keras_hub.image_converter import LevitImageConverter


@keras.saving.register_keras_serializable(package="levit_tf")
class LevitImageClassifierPreprocessor(ImageClassifierPreprocessor):
    """(images, labels, sample weights) -> (model input, labels, sample weights): the images
    through ``LevitImageConverter``; labels and weights unchanged."""

    backbone_cls = LevitBackbone
    image_converter_cls = LevitImageConverter

    @classmethod
    def from_preset(cls, preset: Any, **kwargs: Any) -> ImageClassifierPreprocessor:
        """keras-hub's ``from_preset``; a local directory's config.json is checked first."""
        check_local_preset(preset, weights=False)
        return super().from_preset(preset, **kwargs)


__all__ = ["LevitImageClassifierPreprocessor"]
