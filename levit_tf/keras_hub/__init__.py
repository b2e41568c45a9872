"""LeViT in keras-hub's API (optional: ``pip install "levit-tf[keras-hub]"``).

``LevitBackbone``, ``LevitImageClassifier``, ``LevitImageClassifierPreprocessor`` and
``LevitImageConverter`` are keras-hub classes registered as ``levit_tf>...``: after
``import levit_tf`` (in any order with ``import keras_hub``), keras-hub's own
``ImageClassifier.from_preset(directory)`` / ``Backbone.from_preset(directory)`` return them.
``save_preset`` / ``levit-tf convert CHECKPOINT DIR --format keras-hub`` write such presets.
Lazy like the package root: names import their module (and keras-hub) on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from levit_tf.utils.optional import require

#: Public name -> the module that defines it.
_EXPORTS = {
    "LAYOUT_VERSION": "levit_tf.converters.preset_files",
    "LevitBackbone": "levit_tf.keras_hub.backbone",
    "backbone_kwargs": "levit_tf.keras_hub.backbone",
    "LevitImageConverter": "levit_tf.keras_hub.image_converter",
    "LevitImageClassifierPreprocessor": "levit_tf.keras_hub.preprocessor",
    "LevitImageClassifier": "levit_tf.keras_hub.image_classifier",
    "PresetError": "levit_tf.converters.preset_files",
    "check_preset": "levit_tf.converters.preset_files",
    "load_preset_model": "levit_tf.keras_hub.presets",
    "from_keras_hub": "levit_tf.keras_hub.presets",
    "save_preset": "levit_tf.keras_hub.presets",
    "to_keras_hub": "levit_tf.keras_hub.presets",
    "convert_to_preset": "levit_tf.keras_hub.convert",
}

if TYPE_CHECKING:
    from levit_tf.converters.preset_files import LAYOUT_VERSION, PresetError, check_preset
    from levit_tf.keras_hub.backbone import LevitBackbone, backbone_kwargs
    from levit_tf.keras_hub.convert import convert_to_preset
    from levit_tf.keras_hub.image_classifier import LevitImageClassifier
    from levit_tf.keras_hub.image_converter import LevitImageConverter
    from levit_tf.keras_hub.preprocessor import LevitImageClassifierPreprocessor
    from levit_tf.keras_hub.presets import (
        from_keras_hub,
        load_preset_model,
        save_preset,
        to_keras_hub,
    )


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'levit_tf.keras_hub' has no attribute {name!r}")
    require("keras_hub", f"levit_tf.keras_hub.{name}")  # one message naming the extra
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "LAYOUT_VERSION",
    "LevitBackbone",
    "LevitImageClassifier",
    "LevitImageClassifierPreprocessor",
    "LevitImageConverter",
    "PresetError",
    "backbone_kwargs",
    "check_preset",
    "convert_to_preset",
    "from_keras_hub",
    "load_preset_model",
    "save_preset",
    "to_keras_hub",
]
