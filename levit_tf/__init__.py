"""LeViT for TensorFlow / Keras 3: HF-compatible models, checkpoint conversion, TFLite export.

The package root is lazy (PEP 562): ``import levit_tf`` loads neither Keras nor TensorFlow, so
``levit-tf --help`` and argument errors stay fast; each public name imports its module on first
use (``from levit_tf import LevitModel`` loads the models). Once Keras is loaded, our Keras
classes are registered, so ``import keras, levit_tf; keras.saving.load_model(path)`` works.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from levit_tf.utils import keras_registration
from levit_tf.utils.lazy import lazy_exports

__version__ = "0.1.0"

_BACKEND_HINT = ('levit-tf needs TensorFlow: pip install "levit-tf[cpu]" '
                 '(or "levit-tf[gpu]" for the CUDA build)')

if importlib.util.find_spec("tensorflow") is None:
    raise ImportError(_BACKEND_HINT) from None

#: Public name -> the module that defines it.
_EXPORTS = {
    "PRESETS": "levit_tf.models.levit.configuration_levit",
    "LevitConfig": "levit_tf.models.levit.configuration_levit",
    "LevitForImageClassification": "levit_tf.models.levit.modeling_levit",
    "LevitForImageClassificationWithTeacher": "levit_tf.models.levit.modeling_levit",
    "LevitModel": "levit_tf.models.levit.modeling_levit",
    "LevitPreTrainedModel": "levit_tf.models.levit.modeling_levit",
    "LevitImageProcessor": "levit_tf.preprocessing.image_processor",
    "LevitFeatureExtractor": "levit_tf.preprocessing.image_processor",
    "evaluate": "levit_tf.evaluation.runner",
}

if TYPE_CHECKING:
    from levit_tf.evaluation.runner import evaluate
    from levit_tf.models.levit.configuration_levit import PRESETS, LevitConfig
    from levit_tf.models.levit.modeling_levit import (
        LevitForImageClassification,
        LevitForImageClassificationWithTeacher,
        LevitModel,
        LevitPreTrainedModel,
    )
    from levit_tf.preprocessing.image_processor import (
        LevitFeatureExtractor,
        LevitImageProcessor,
    )


__getattr__, __dir__ = lazy_exports("levit_tf", globals(), _EXPORTS)

# Every levit_tf> Keras class becomes loadable by keras.saving.load_model as soon as Keras
# is (or gets) imported, without importing Keras here (levit_tf/utils/keras_registration.py).
keras_registration.install()


__all__ = [
    "PRESETS",
    "LevitConfig",
    "LevitFeatureExtractor",
    "LevitForImageClassification",
    "LevitForImageClassificationWithTeacher",
    "LevitImageProcessor",
    "LevitModel",
    "LevitPreTrainedModel",
    "__version__",
    "evaluate",
]
