"""LeViT for TensorFlow / Keras 3: HF-compatible models, checkpoint conversion, TFLite export."""

from levit_tf.configuration_levit import PRESETS, LevitConfig
from levit_tf.modeling_levit import (
    LevitForImageClassification,
    LevitForImageClassificationWithTeacher,
    LevitModel,
    LevitPreTrainedModel,
)

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "LevitConfig",
    "LevitForImageClassification",
    "LevitForImageClassificationWithTeacher",
    "LevitModel",
    "LevitPreTrainedModel",
    "__version__",
]
