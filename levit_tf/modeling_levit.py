"""LeViT models with HF's public names: LevitModel, LevitForImageClassification(WithTeacher).

Inputs are NHWC float32 ``pixel_values`` (B, H, W, 3), normalized as LevitImageProcessor does.
Outputs are dicts with HF's field names. A model is fully described by its ``config``
(a LevitConfig), which is also what ``get_config`` stores, so ``.keras`` files round-trip.
"""

from __future__ import annotations

import os
from typing import Any

import keras
from keras import layers, ops

from levit_tf.configuration_levit import LevitConfig
from levit_tf.layers import (
    LevitClassificationHead,
    LevitPatchEmbeddings,
    pixel_shape,
    register,
    stages_from_config,
)


def _as_config(config: LevitConfig | dict[str, Any] | None) -> LevitConfig:
    if config is None:
        return LevitConfig()
    if isinstance(config, dict):
        return LevitConfig.from_dict(config)
    if not isinstance(config, LevitConfig):
        raise TypeError(f"config must be a LevitConfig or a dict, got {type(config).__name__}")
    return config


@register
class LevitMainLayer(layers.Layer):
    """Stem + stages. (B, H, W, C) -> last_hidden_state (B, N_last, C_last) and hidden_states.

    ``hidden_states`` follows HF: the stem's tokens, then each stage's output (a stage ends with
    its shrinking attention), so it has ``num_stages + 1`` entries.
    """

    def __init__(self, config: LevitConfig | dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = _as_config(config)
        self.patch_embeddings = LevitPatchEmbeddings(
            self.config.hidden_sizes[0], self.config.kernel_size, self.config.stride,
            self.config.padding, dtype=self.dtype_policy, name="patch_embeddings")
        self.stages = stages_from_config(self.config, dtype=self.dtype_policy)

    def build(self, input_shape: tuple) -> None:
        self.patch_embeddings.build(input_shape)
        shape = self.patch_embeddings.compute_output_shape(input_shape)
        for stage in self.stages:
            stage.build(shape)
            shape = stage.compute_output_shape(shape)

    def call(self, pixel_values, training=None):
        hidden = self.patch_embeddings(pixel_values, training=training)
        hidden_states = [hidden]
        for stage in self.stages:
            hidden = stage(hidden, training=training)
            hidden_states.append(hidden)
        return hidden, tuple(hidden_states)

    def get_config(self) -> dict:
        return {**super().get_config(), "config": self.config.to_dict()}


class LevitPreTrainedModel(keras.Model):
    """Config handling, input checks, serialization and ``from_pretrained`` for LeViT models."""

    main_input_name = "pixel_values"

    def __init__(self, config: LevitConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = _as_config(config)
        self.levit = LevitMainLayer(self.config, dtype=self.dtype_policy, name="levit")

    def build(self, input_shape: tuple | None = None) -> None:
        input_shape = pixel_shape(self.config) if input_shape is None else tuple(input_shape)
        self.levit.build(input_shape)
        self.build_heads((input_shape[0], self.config.hidden_sizes[-1]))
        self.built = True

    def build_heads(self, pooled_shape: tuple) -> None:
        """Builds the task heads on pooled features (B, C_last)."""

    def check_pixel_values(self, pixel_values) -> None:
        shape = tuple(pixel_values.shape)
        expected = pixel_shape(self.config)[1:]
        if len(shape) != 4 or shape[1:] != expected:
            hint = ""
            if len(shape) == 4 and shape[1] == expected[2] and shape[2:] == expected[:2]:
                hint = (" (looks channels-first: transpose to NHWC, "
                        "e.g. ops.transpose(x, (0, 2, 3, 1)))")
            raise ValueError(
                f"{type(self).__name__} expects pixel_values of shape (batch, {expected[0]}, "
                f"{expected[1]}, {expected[2]}) NHWC, got {shape}{hint}")

    def backbone(self, pixel_values, training=None):
        """Runs the stem and stages: (last_hidden_state, hidden_states, pooler_output)."""
        self.check_pixel_values(pixel_values)
        last, hidden_states = self.levit(pixel_values, training=training)
        return last, hidden_states, ops.mean(last, axis=1)

    def get_config(self) -> dict:
        return {"config": self.config.to_dict(), "name": self.name, "trainable": self.trainable,
                "dtype": keras.saving.serialize_keras_object(self.dtype_policy)}

    @classmethod
    def from_config(cls, config: dict) -> LevitPreTrainedModel:
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
        return cls(**config)

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, **kwargs: Any) -> LevitPreTrainedModel:
        """Loads a converted ``.keras`` file, an HF model directory or hub id, or a timm /
        facebookresearch checkpoint file (layout and variant detected from the weights).

        Keyword arguments go to ``levit_tf.converters.load_pretrained`` (e.g. ``num_labels``,
        ``ignore_mismatched_sizes``).
        """
        from levit_tf.converters import load_pretrained

        return load_pretrained(source, model_class=cls, **kwargs)


@register
class LevitModel(LevitPreTrainedModel):
    """LeViT backbone.

    Returns a dict: ``last_hidden_state`` (B, N, C_last), ``pooler_output`` (B, C_last) = token
    mean, and with ``output_hidden_states=True`` ``hidden_states`` (num_stages + 1 tensors).
    """

    def __init__(self, config: LevitConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.build()

    def call(self, pixel_values, output_hidden_states: bool = False, training=None):
        last, hidden_states, pooled = self.backbone(pixel_values, training=training)
        out = {"last_hidden_state": last, "pooler_output": pooled}
        if output_hidden_states:
            out["hidden_states"] = hidden_states
        return out


@register
class LevitForImageClassification(LevitPreTrainedModel):
    """LeViT with one BN -> Linear head on the pooled tokens.

    Returns a dict: ``logits`` (B, num_labels) and, when asked, ``hidden_states``.
    With ``config.num_labels == 0`` the logits are the pooled features.
    """

    head_names: tuple[str, ...] = ("classifier",)

    def __init__(self, config: LevitConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        for name in self.head_names:
            head = None
            if self.config.num_labels > 0:
                head = LevitClassificationHead(
                    self.config.num_labels, dtype=self.dtype_policy, name=name)
            setattr(self, name, head)
        self.build()

    def build_heads(self, pooled_shape: tuple) -> None:
        for head in self.heads():
            head.build(pooled_shape)

    def heads(self) -> list[LevitClassificationHead]:
        """The classification heads present (none when num_labels == 0)."""
        heads = (getattr(self, name) for name in self.head_names)
        return [head for head in heads if head is not None]

    @staticmethod
    def apply_head(head: LevitClassificationHead | None, pooled, training=None):
        return pooled if head is None else head(pooled, training=training)

    def call(self, pixel_values, output_hidden_states: bool = False, training=None):
        _, hidden_states, pooled = self.backbone(pixel_values, training=training)
        out = {"logits": self.apply_head(self.classifier, pooled, training)}
        if output_hidden_states:
            out["hidden_states"] = hidden_states
        return out


@register
class LevitForImageClassificationWithTeacher(LevitForImageClassification):
    """LeViT with a class head and a distillation head (DeiT-style, as released).

    Returns a dict: ``logits`` = (cls_logits + distillation_logits) / 2, which is what inference
    uses, plus both heads' logits under ``cls_logits`` and ``distillation_logits``.
    """

    head_names = ("classifier", "classifier_distill")

    def call(self, pixel_values, output_hidden_states: bool = False, training=None):
        _, hidden_states, pooled = self.backbone(pixel_values, training=training)
        cls_logits = self.apply_head(self.classifier, pooled, training)
        distill_logits = self.apply_head(self.classifier_distill, pooled, training)
        out = {"logits": (cls_logits + distill_logits) / 2, "cls_logits": cls_logits,
               "distillation_logits": distill_logits}
        if output_hidden_states:
            out["hidden_states"] = hidden_states
        return out
