"""``LevitImageClassifierPreprocessor``: keras-hub's image-classifier preprocessor with the
LeViT image converter (``LevitImageConverter``)."""

from __future__ import annotations

import keras
from keras_hub.models import ImageClassifierPreprocessor

from levit_tf.keras_hub.backbone import LevitBackbone
from levit_tf.keras_hub.image_converter import LevitImageConverter


@keras.saving.register_keras_serializable(package="levit_tf")
class LevitImageClassifierPreprocessor(ImageClassifierPreprocessor):
    """(images, labels, sample weights) -> (model input, labels, sample weights): the images
    through ``LevitImageConverter``; labels and weights unchanged."""

    backbone_cls = LevitBackbone
    image_converter_cls = LevitImageConverter


__all__ = ["LevitImageClassifierPreprocessor"]
