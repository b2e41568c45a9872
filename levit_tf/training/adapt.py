"""Turning a loaded LeViT into the classifier a fine-tuning run needs: class, labels, policy."""

from __future__ import annotations

from typing import Any

import keras

from levit_tf.models.levit.configuration_levit import LevitConfig
from levit_tf.models.levit.modeling_levit import (
    LevitForImageClassification,
    LevitPreTrainedModel,
    rebuild,
)


def adapt_classifier(model: LevitPreTrainedModel,
                     model_class: type[LevitForImageClassification],
                     id2label: dict[int, str], dtype: Any = None) -> LevitForImageClassification:
    """A ``model_class`` with ``model``'s backbone weights and the labels ``id2label``.

    Heads are copied when the label count is unchanged (a missing distillation head starts as a
    copy of the class head) and start fresh otherwise. ``dtype`` is a Keras dtype policy
    (default: ``model``'s). Returns ``model`` itself when nothing changes.
    """
    policy = keras.dtype_policies.get(dtype) if dtype is not None else model.dtype_policy
    same_labels = model.config.num_labels == len(id2label)
    if (type(model) is model_class and same_labels and model.config.id2label == id2label
            and policy.name == model.dtype_policy.name):
        return model
    config = LevitConfig.from_dict(model.config.to_dict(), id2label=id2label, label2id=None)
    config.architectures = [model_class.__name__]
    adapted = rebuild(model, config, model_class=model_class, dtype=policy, backbone_only=True)
    if same_labels and isinstance(model, LevitForImageClassification) and model.heads():
        source = {name: getattr(model, name) for name in model.head_names
                  if getattr(model, name) is not None}
        for name in adapted.head_names:
            head = source.get(name, source.get("classifier"))
            if head is not None:
                getattr(adapted, name).set_weights(head.get_weights())
    return adapted


__all__ = ["adapt_classifier"]
