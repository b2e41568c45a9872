"""``LevitImageClassifier``: keras-hub's ``ImageClassifier`` with LeViT's heads.

Head: global average pooling of the backbone's grid (= HF's ``pooler_output``), dropout, then
LeViT's BatchNorm + Linear classifier (``LevitClassificationHead``). With
``distillation_head=True`` (the released checkpoints) a second such head runs beside it and the
logits are the mean of both, as ``LevitForImageClassificationWithTeacher`` infers. One class with
a flag, not two: keras-hub's ``ImageClassifier.from_preset`` picks *the* registered subclass whose
``backbone_cls`` matches. DeiT hard-distillation training stays with
``LevitForImageClassificationWithTeacher.compile(distillation="hard")``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras_hub.models import ImageClassifier, Task

from levit_tf.converters.preset_files import check_local_preset
from levit_tf.keras_hub.backbone import LevitBackbone
from levit_tf.keras_hub.preprocessor import LevitImageClassifierPreprocessor
from levit_tf.models.levit.layers import LevitClassificationHead


@keras.saving.register_keras_serializable(package="levit_tf")
class LevitImageClassifier(ImageClassifier):
    """Images -> logits (B, num_classes) (probabilities with ``activation="softmax"``).

    Args:
        backbone: a ``LevitBackbone``.
        num_classes: number of classes.
        preprocessor: a ``LevitImageClassifierPreprocessor`` or None (inputs then are model
            pixels, normalized as ``LevitImageConverter`` outputs them).
        distillation_head: two heads averaged (``LevitForImageClassificationWithTeacher``), or
            one (``LevitForImageClassification``).
        pooling: "avg" (LeViT's) or "max" over the grid.
        activation: applied to the averaged logits (None: logits).
        dropout: dropout rate before the heads.
        head_dtype: dtype policy of the head (default: the backbone's).
    """

    backbone_cls = LevitBackbone
    preprocessor_cls = LevitImageClassifierPreprocessor

    def __init__(self, backbone: LevitBackbone, num_classes: int, preprocessor: Any = None,
                 distillation_head: bool = True, pooling: str = "avg", activation: Any = None,
                 dropout: float = 0.0, head_dtype: Any = None, **kwargs: Any) -> None:
        head_dtype = head_dtype or backbone.dtype_policy
        data_format = getattr(backbone, "data_format", None)
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        pools = {"avg": keras.layers.GlobalAveragePooling2D,
                 "max": keras.layers.GlobalMaxPooling2D}
        if pooling not in pools:
            raise ValueError(f"LevitImageClassifier: pooling must be 'avg' or 'max', got "
                             f"{pooling!r}")
        self.pooler = pools[pooling](data_format, dtype=head_dtype, name="pooler")
        self.output_dropout = keras.layers.Dropout(dropout, dtype=head_dtype,
                                                   name="output_dropout")
        self.classifier = LevitClassificationHead(num_classes, dtype=head_dtype,
                                                  name="classifier")
        self.classifier_distill = (
            LevitClassificationHead(num_classes, dtype=head_dtype, name="classifier_distill")
            if distillation_head else None)
        self.head_average = (keras.layers.Average(dtype=head_dtype, name="head_average")
                             if distillation_head else None)
        self.output_activation = keras.layers.Activation(activation, dtype=head_dtype,
                                                         name="output_activation")
        # === Functional model ===
        inputs = self.backbone.input
        pooled = self.output_dropout(self.pooler(self.backbone(inputs)))
        logits = self.classifier(pooled)
        if distillation_head:
            logits = self.head_average([logits, self.classifier_distill(pooled)])
        outputs = self.output_activation(logits)
        Task.__init__(self, inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.num_classes = num_classes
        self.distillation_head = bool(distillation_head)
        self.pooling = pooling
        self.activation = activation
        self.dropout = dropout

    @classmethod
    def from_preset(cls, preset: Any, load_weights: bool = True, **kwargs: Any) -> Task:
        """keras-hub's ``from_preset``; a local directory is checked first (PresetError naming
        the file: another family's preset, missing weights, a newer layout)."""
        check_local_preset(preset, weights=load_weights)
        return super().from_preset(preset, load_weights=load_weights, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()  # backbone, preprocessor, name, num_classes, pooling, ...
        config.update(distillation_head=self.distillation_head)
        return config


__all__ = ["LevitImageClassifier"]
