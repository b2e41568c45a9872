"""Any checkpoint this package reads -> a keras-hub preset directory (``levit-tf convert SOURCE
DIR --format keras-hub``)."""

from __future__ import annotations

import os
from typing import Any

from levit_tf.converters import ConversionError, load_pretrained
from levit_tf.converters.preset_files import PresetError, check_preset_target
from levit_tf.keras_hub.presets import save_preset
from levit_tf.models.levit.modeling_levit import LevitPreTrainedModel


def convert_to_preset(source: str | os.PathLike, output: str | os.PathLike,
                      **kwargs: Any) -> LevitPreTrainedModel:
    """Converts ``source`` (HF directory or hub id, timm / facebookresearch checkpoint,
    ``.keras`` file; keyword arguments as ``load_pretrained``) and writes the keras-hub preset
    directory ``output`` atomically (a new or empty folder). Returns the converted model
    (HF API); ConversionError for bad input, before any work when it is the output."""
    try:
        check_preset_target(output)
        model = load_pretrained(source, **kwargs)
        save_preset(model, output)
    except PresetError as err:
        raise ConversionError(str(err)) from None
    return model


__all__ = ["convert_to_preset"]
