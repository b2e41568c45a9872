"""keras-hub presets of LeViT models: our HF-API models <-> keras-hub tasks, preset directories.

``to_keras_hub`` builds the keras-hub task (or backbone) of a ``LevitModel`` /
``LevitForImageClassification`` / ``LevitForImageClassificationWithTeacher`` and copies every
weight, paired by its path inside the shared ``levit`` layer and heads; ``from_keras_hub`` goes
back. ``save_preset`` writes a preset directory with keras-hub's own ``save_to_preset``
(config.json, model.weights.h5, metadata.json, task.json, task.weights.h5, preprocessor.json,
image_converter.json), atomically. ``check_preset`` reads a directory's config.json and names the
one file that makes it unusable: another family's preset, a missing weights file, a layout saved
by a newer levit-tf.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from levit_tf.converters.preset_files import TASK_FILE, check_preset, check_preset_target
from levit_tf.keras_hub.backbone import LevitBackbone, backbone_kwargs
from levit_tf.keras_hub.image_classifier import LevitImageClassifier
from levit_tf.keras_hub.image_converter import LevitImageConverter
from levit_tf.keras_hub.preprocessor import LevitImageClassifierPreprocessor
from levit_tf.models.levit.configuration_levit import LevitConfig
from levit_tf.models.levit.modeling_levit import (
    LevitForImageClassification,
    LevitForImageClassificationWithTeacher,
    LevitModel,
    LevitPreTrainedModel,
)
from levit_tf.utils.files import atomic_folder


# ----------------------------------------------------------------------------- weights
def _by_path(layer: keras.layers.Layer) -> dict[str, Any]:
    """{variable path inside ``layer``: variable}."""
    return {variable.path[len(layer.path) + 1:]: variable for variable in layer.weights}


def copy_weights(source: keras.layers.Layer, target: keras.layers.Layer) -> None:
    """Assigns every variable of ``target`` from the variable at the same path in ``source``;
    both layers must hold the same variables with the same shapes."""
    old, new = _by_path(source), _by_path(target)
    if set(old) != set(new):
        differ = sorted(set(old) ^ set(new))
        raise ValueError(f"cannot copy {source.name} into {target.name}: variables differ "
                         f"({', '.join(differ[:4])} ...)")
    for path, variable in new.items():
        value = np.asarray(keras.ops.convert_to_numpy(old[path]))
        if value.shape != tuple(variable.shape):
            raise ValueError(f"{path}: shape {value.shape} does not fit {tuple(variable.shape)}")
        variable.assign(value.astype(variable.dtype))


def preprocessor_for(config: LevitConfig) -> LevitImageClassifierPreprocessor:
    """LeViT's eval transform for the config's input size (ImageNet mean / std, bicubic)."""
    return LevitImageClassifierPreprocessor(LevitImageConverter(image_size=config.image_hw))


def to_keras_hub(model: LevitPreTrainedModel, preprocessor: bool = True
                 ) -> LevitImageClassifier | LevitBackbone:
    """The keras-hub twin of ``model`` with its weights: a ``LevitImageClassifier`` (two heads
    averaged for ``LevitForImageClassificationWithTeacher``, one for
    ``LevitForImageClassification``) with LeViT's preprocessor, or a ``LevitBackbone`` for a
    ``LevitModel`` (or a classifier without heads)."""
    config = model.config
    backbone = LevitBackbone(**backbone_kwargs(config), dtype=model.dtype_policy)
    copy_weights(model.levit, backbone.levit)
    heads = model.heads() if isinstance(model, LevitForImageClassification) else []
    if not heads:
        return backbone
    task = LevitImageClassifier(
        backbone, config.num_labels, preprocessor=preprocessor_for(config) if preprocessor
        else None, distillation_head=isinstance(model, LevitForImageClassificationWithTeacher))
    copy_weights(model.classifier, task.classifier)
    if task.classifier_distill is not None:
        copy_weights(model.classifier_distill, task.classifier_distill)
    return task


def from_keras_hub(task: LevitImageClassifier | LevitBackbone,
                   config: LevitConfig | None = None) -> LevitPreTrainedModel:
    """The HF-API model of a keras-hub LeViT task or backbone, weights copied:
    ``LevitForImageClassificationWithTeacher`` (two heads), ``LevitForImageClassification``
    (one) or ``LevitModel`` (a backbone). ``config`` gives the labels (default: ImageNet's
    for 1000 classes, as the converters label timm checkpoints; else LABEL_i)."""
    backbone = task.backbone if isinstance(task, LevitImageClassifier) else task
    fields = backbone.levit_config.to_dict()
    if isinstance(task, LevitImageClassifier):
        cls = (LevitForImageClassificationWithTeacher if task.distillation_head
               else LevitForImageClassification)
        fields.update(num_labels=task.num_classes)
        fields.pop("id2label")
        fields.pop("label2id")
        if config is not None and config.num_labels == task.num_classes:
            fields.update(id2label=config.id2label, label2id=config.label2id)
    else:
        cls = LevitModel
    fields["architectures"] = [cls.__name__]
    levit_config = LevitConfig.from_dict(fields)
    if config is None and levit_config.num_labels == 1000:
        levit_config = levit_config.with_imagenet_labels()
    model = cls(levit_config, dtype=backbone.dtype_policy)
    copy_weights(backbone.levit, model.levit)
    if isinstance(task, LevitImageClassifier):
        copy_weights(task.classifier, model.classifier)
        if task.classifier_distill is not None:
            copy_weights(task.classifier_distill, model.classifier_distill)
    return model


# ----------------------------------------------------------------------------- directories
def save_preset(model: LevitPreTrainedModel | LevitImageClassifier | LevitBackbone,
                directory: str | os.PathLike) -> LevitImageClassifier | LevitBackbone:
    """Writes the keras-hub preset of ``model`` (an HF-API LeViT model, converted with
    ``to_keras_hub``, or a keras-hub LeViT task / backbone) to ``directory`` with keras-hub's
    ``save_to_preset``. Atomic: written beside it, then renamed into place; ``directory`` must
    be new or an empty folder. Returns the keras-hub object saved."""
    target = check_preset_target(directory)
    saved = to_keras_hub(model) if isinstance(model, LevitPreTrainedModel) else model
    with atomic_folder(target) as staging:
        saved.save_to_preset(str(staging))
        if isinstance(saved, LevitBackbone):  # the eval transform goes with a backbone too
            preprocessor_for(saved.levit_config).save_to_preset(str(staging))
    return saved


def load_preset_model(directory: str | os.PathLike) -> LevitPreTrainedModel:
    """The HF-API model of a local LeViT preset directory (``check_preset`` first): the task's
    class when it has task.json, else ``LevitModel``."""
    import keras_hub

    check_preset(directory)
    if Path(directory, TASK_FILE).is_file():
        return from_keras_hub(keras_hub.models.ImageClassifier.from_preset(str(directory)))
    return from_keras_hub(keras_hub.models.Backbone.from_preset(str(directory)))


__all__ = ["copy_weights", "from_keras_hub", "load_preset_model", "preprocessor_for",
           "save_preset", "to_keras_hub"]
