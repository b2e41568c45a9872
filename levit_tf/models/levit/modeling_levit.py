"""LeViT models with HF's public names: LevitModel, LevitForImageClassification(WithTeacher).

Inputs are NHWC float32 ``pixel_values`` (B, H, W, 3), normalized as LevitImageProcessor does.
Outputs are dicts with HF's field names. A model is fully described by its ``config``
(a LevitConfig), which is also what ``get_config`` stores, so ``.keras`` files round-trip.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from levit_tf.models.levit.batch_norm_sync import sync_batch_norm_statistics
from levit_tf.models.levit.configuration_levit import LevitConfig
from levit_tf.models.levit.distillation import (
    Distillation,
    added_loss,
    float32_logits,
    is_structured,
    model_logits,
    split_targets,
    two_head_loss,
)
from levit_tf.models.levit.layers import (
    LevitClassificationHead,
    LevitPatchEmbeddings,
    pixel_shape,
    register,
    stages_from_config,
)
from levit_tf.utils.keras_internals import compiled_loss


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


def empty_batch_message(name: str) -> str:
    """The one message for a batch of 0 images (Keras call, predict, TFLiteModel)."""
    return f"{name} got an empty batch (0 images); pass at least one image"


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

    def __call__(self, *args, **kwargs):
        # dtype / empty-batch errors raised here, before Keras wraps errors from call()
        pixel_values = args[0] if args else kwargs.get("pixel_values")
        if hasattr(pixel_values, "shape") and hasattr(pixel_values, "dtype"):
            self.check_pixel_dtype_and_batch(pixel_values)
        return super().__call__(*args, **kwargs)

    def check_pixel_dtype_and_batch(self, pixel_values) -> None:
        """TypeError for integer / bool pixels (uint8 images need LevitImageProcessor
        first), ValueError for an empty batch."""
        dtype = getattr(pixel_values, "dtype", None)
        if dtype is not None and not keras.backend.is_float_dtype(
                keras.backend.standardize_dtype(dtype)):
            raise TypeError(
                f"{type(self).__name__} takes float pixel_values (normalized as "
                f"LevitImageProcessor does), got dtype {keras.backend.standardize_dtype(dtype)}; "
                "preprocess images with LevitImageProcessor first")
        shape = tuple(pixel_values.shape)
        if shape and shape[0] == 0:
            raise ValueError(empty_batch_message(type(self).__name__))

    def check_pixel_values(self, pixel_values) -> None:
        self.check_pixel_dtype_and_batch(pixel_values)
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
        """Runs the stem and stages: (last_hidden_state, hidden_states, pooler_output).

        A frozen backbone (``self.levit.trainable = False``) always runs in inference mode.
        """
        self.check_pixel_values(pixel_values)
        if not self.levit.trainable:
            training = False
        last, hidden_states = self.levit(pixel_values, training=training)
        return last, hidden_states, ops.mean(last, axis=1)

    # ----------------------------------------------------------------------------- training
    def train_step(self, *args):
        """Keras' train step, then (TensorFlow) BN running statistics averaged over
        tf.distribute replicas. ``*args``: ``(data,)`` on TensorFlow and PyTorch, ``(state,
        data)`` on JAX, whose stateless step returns the new state with the logs."""
        out = super().train_step(*args)
        sync_batch_norm_statistics(self)
        return out

    def predict(self, x=None, *args, **kwargs):
        """Keras' ``predict``; an empty batch raises ValueError (as ``model(x)`` does) instead
        of Keras' internal error."""
        shape = getattr(x, "shape", None)
        if shape is not None and len(shape) and shape[0] == 0:
            raise ValueError(empty_batch_message(type(self).__name__))
        return super().predict(x, *args, **kwargs)

    def predict_step(self, *args):
        """Keras' predict step; under a mixed policy, float outputs come back as float32.
        ``*args`` as in ``train_step``; on JAX the step also returns the (unchanged) state."""
        result = super().predict_step(*args)
        if self.compute_dtype == "float32":
            return result
        outputs, state = result if keras.backend.backend() == "jax" else (result, None)
        outputs = keras.tree.map_structure(
            lambda t: float32_logits(t) if keras.backend.is_float_dtype(t.dtype) else t, outputs)
        return outputs if state is None else (outputs, state)

    def export(self, filepath: str | os.PathLike, format: str = "tf_saved_model",
               verbose: bool | None = None, input_signature: Any = None, **kwargs: Any) -> None:
        """Keras' ``Model.export`` (``tf_saved_model``, ``litert``, ``onnx``, ``openvino``) of
        this model's ``call``: input (batch, H, W, 3) float32 ``pixel_values`` from the config
        unless ``input_signature`` says otherwise, outputs the dict ``call`` returns. Works
        without a prior call; written atomically. On the JAX backend only ``tf_saved_model``
        works, on PyTorch none: a one-line ValueError says so (``keras_export.BACKEND_FORMATS``).

        For quantized, uint8-input or labelled ``.tflite`` files use ``levit_tf.tflite.export``
        (``levit-tf export-tflite``); for a SavedModel that takes image bytes,
        ``levit_tf.export.saved_model.export_saved_model`` (``levit-tf export-savedmodel``).
        """
        from levit_tf.export.keras_export import export_atomically, pixel_values_signature

        if input_signature is None:
            input_signature = pixel_values_signature(self.config.image_hw,
                                                     self.config.num_channels)
        export_atomically(super().export, filepath, format, verbose=verbose,
                          input_signature=input_signature, **kwargs)

    def get_config(self) -> dict:
        return {"config": self.config.to_dict(), "name": self.name, "trainable": self.trainable,
                "dtype": keras.saving.serialize_keras_object(self.dtype_policy)}

    @classmethod
    def from_config(cls, config: dict) -> LevitPreTrainedModel:
        config = dict(config)
        unknown = sorted(set(config) - {"config", "name", "trainable", "dtype"})
        if unknown:  # a layout this version does not know: say so, not "unexpected keyword"
            from levit_tf import __version__

            raise ValueError(f"{cls.__name__}: keys {unknown} are not in the layout levit-tf "
                             f"{__version__} reads (a file from a newer levit-tf?)")
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
        # The one deliberate upward import: the converters build these model classes, and this
        # HF-named entry point hands them the class; importing them on use also keeps checkpoint
        # I/O (safetensors, hub) out of ``import levit_tf.models.levit.modeling_levit``.
        from levit_tf.converters import load_pretrained

        return load_pretrained(source, model_class=cls, **kwargs)


def rebuild(model: LevitPreTrainedModel, config: LevitConfig | None = None, *,
            model_class: type[LevitPreTrainedModel] | None = None, dtype: Any = None,
            backbone_only: bool = False,
            transform: Callable[[Any, Any], np.ndarray] | None = None) -> LevitPreTrainedModel:
    """``model`` rebuilt with a changed config, class or dtype policy, its weights copied.

    The new ``model_class`` (default: ``type(model)``) is built from ``config`` (default:
    ``model.config``) under ``dtype`` (default: ``model``'s policy), keeps ``model``'s name and
    backbone trainability, and takes ``model``'s weights paired by their path inside the model
    (inside ``levit`` with ``backbone_only``): both must hold the same variables.
    ``transform(old, new)`` gives the value for variable ``new`` (default: ``old``'s); its shape
    must fit. The one "rebuild and copy" of the package (resolution, precision, fine-tuning).
    """
    cls = model_class or type(model)
    policy = keras.dtype_policies.get(dtype) if dtype is not None else model.dtype_policy
    rebuilt = cls(config or model.config, dtype=policy, name=model.name)
    rebuilt.levit.trainable = model.levit.trainable
    source, target = (model.levit, rebuilt.levit) if backbone_only else (model, rebuilt)

    def by_path(layer: keras.layers.Layer) -> dict[str, Any]:
        return {variable.path[len(layer.path) + 1:]: variable for variable in layer.weights}

    old, new = by_path(source), by_path(target)
    if set(old) != set(new):
        raise ValueError(f"cannot copy the weights of {model.name}: variables differ "
                         f"({sorted(set(old) ^ set(new))[:4]} ...)")
    for path, variable in new.items():
        value = np.asarray(old[path]) if transform is None else transform(old[path], variable)
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"{path}: shape {tuple(value.shape)} does not fit "
                             f"{tuple(variable.shape)}")
        variable.assign(value)
    return rebuilt


@register
class LevitModel(LevitPreTrainedModel):
    """LeViT backbone.

    Returns a dict: ``last_hidden_state`` (B, N, C_last), ``pooler_output`` (B, C_last) = token
    mean, and with ``output_hidden_states=True`` ``hidden_states`` (num_stages + 1 tensors).
    """

    def __init__(self, config: LevitConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.build(pixel_shape(self.config))

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
        self.build(pixel_shape(self.config))

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

    # ----------------------------------------------------------------------------- fine-tuning
    def freeze_backbone(self) -> None:
        """Freezes the stem and stages: their weights stop training and the backbone runs in
        inference mode (BN running statistics, no stochastic depth), Keras' transfer-learning
        convention; the heads keep training. Call ``compile()`` afterwards: Keras fixes the
        trainable weights at compile time."""
        self.levit.trainable = False

    def unfreeze_backbone(self) -> None:
        """Makes the whole backbone trainable again (then ``compile()`` with a new optimizer)."""
        self.levit.trainable = True

    @property
    def backbone_frozen(self) -> bool:
        return not self.levit.trainable

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, loss_weights: Any = None,
                metrics: Any = None, weighted_metrics: Any = None, **kwargs: Any) -> None:
        """``keras.Model.compile``; plain losses and metrics apply to ``outputs["logits"]``.

        A loss or metric that is not a dict (e.g. ``SparseCategoricalCrossentropy(
        from_logits=True)``, ``"accuracy"``) gets the float32 logits (B, K) and the labels;
        targets may also be a dict ``{"labels": y, ...}``. A dict keyed by output name
        (``{"logits": ...}``) gets the whole output dict, as in plain Keras.
        """
        super().compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                        metrics=metrics, weighted_metrics=weighted_metrics, **kwargs)
        self._loss_on_logits = not is_structured(loss)
        self._metrics_on_logits = not (is_structured(metrics) or is_structured(weighted_metrics))

    def compile_from_config(self, config: dict) -> None:
        """Recompiles from ``get_compile_config()`` (used when a ``.keras`` file is loaded)."""
        config = dict(config)
        extra = {key: config.pop(key) for key in ("distillation",) if key in config}
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config, **extra)
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss on (labels, float32 logits); see ``compile``."""
        if getattr(self, "_loss_on_logits", True):
            y, _ = split_targets(y)
            y_pred = model_logits(y_pred)
        return super().compute_loss(x, y, y_pred, sample_weight, training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """The compiled metrics on (labels, float32 logits); see ``compile``."""
        if getattr(self, "_metrics_on_logits", True):
            y, _ = split_targets(y)
            y_pred = model_logits(y_pred)
        return super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)


@register
class LevitForImageClassificationWithTeacher(LevitForImageClassification):
    """LeViT with a class head and a distillation head (DeiT-style, as released).

    Returns a dict: ``logits`` = (cls_logits + distillation_logits) / 2, which is what inference
    uses, plus both heads' logits under ``cls_logits`` and ``distillation_logits``.

    Trains with ``compile(..., distillation="none" | "hard", teacher=None)``: classic (both heads
    on the labels) or DeiT hard distillation (see ``compile``).
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

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, loss_weights: Any = None,
                metrics: Any = None, weighted_metrics: Any = None, distillation: str = "none",
                teacher: keras.Model | None = None, **kwargs: Any) -> None:
        """``keras.Model.compile`` plus how the two heads train (``L`` = the compiled loss).

        Args:
            distillation: ``"none"`` (classic): loss = (L(cls_logits, y) +
                L(distillation_logits, y)) / 2. ``"hard"`` (DeiT): loss = L(cls_logits, y) / 2 +
                CE(distillation_logits, argmax teacher(x)) / 2.
            teacher: for ``"hard"``, any Keras model taking the same ``pixel_values`` and
                returning logits (B, K) or a dict with ``"logits"``; it runs in inference mode
                and is not trained or saved. Without one, the dataset must yield targets
                ``{"labels": y, "teacher_labels": t}`` with t (B,) int precomputed by a teacher.

        Metrics, and the loss in ``evaluate``, use ``logits`` (the heads' mean, what inference
        returns) and the labels only. Example::

            model.compile(optimizer=adamw(model, 5e-4), metrics=["accuracy"],
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          distillation="hard", teacher=teacher_model)
        """
        self.distillation = Distillation(distillation or "none", teacher)
        super().compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                        metrics=metrics, weighted_metrics=weighted_metrics, **kwargs)

    def get_compile_config(self) -> dict:
        config = super().get_compile_config()
        if config:
            config["distillation"] = self.distillation.mode
        return config

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Training: the two-head loss of ``compile``; evaluation: L(logits, y)."""
        two_heads = (training and getattr(self, "_loss_on_logits", True)
                     and compiled_loss(self) is not None and isinstance(y_pred, Mapping)
                     and "distillation_logits" in y_pred)
        if not two_heads:
            return super().compute_loss(x, y, y_pred, sample_weight, training=training)
        labels, teacher_labels = split_targets(y)
        loss = two_head_loss(
            compiled_loss(self), getattr(self, "distillation", Distillation()), x, labels,
            teacher_labels, float32_logits(y_pred["cls_logits"]),
            float32_logits(y_pred["distillation_logits"]), sample_weight)
        for extra in self.losses:  # regularization losses, as keras.Model.compute_loss adds them
            loss = loss + added_loss(extra)
        return loss
