"""``LevitBackbone``: LeViT as a keras-hub ``Backbone`` (functional, built in ``__init__``).

It wraps the package's own stem and stages (``LevitMainLayer``, the layer that
``LevitForImageClassificationWithTeacher`` runs) and reshapes the last stage's tokens into a grid,
so keras-hub's generic ``ImageClassifier`` head (global average pooling) works on it:
images (B, H, W, 3) -> (B, h, w, C_last), h = w = 4 at 224 px. Averaging that grid is HF's
``pooler_output``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras_hub.models import Backbone

from levit_tf.converters.preset_files import LAYOUT_VERSION, check_local_preset
from levit_tf.models.levit.configuration_levit import LevitConfig
from levit_tf.models.levit.modeling_levit import LevitMainLayer


def _per_stage(value: Sequence[int] | int, field: str) -> list[int]:
    if isinstance(value, int):
        return [value]
    try:
        return [int(v) for v in value]
    except (TypeError, ValueError):
        raise ValueError(f"LevitBackbone: {field} must be a list of ints, got {value!r}") from None


def standardize_data_format(data_format: str | None) -> str:
    """Keras' image data format for None, else ``data_format`` checked."""
    if data_format is None:
        return keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got "
                         f"{data_format!r}")
    return data_format


def _channels_last_shape(image_shape: Sequence[int], data_format: str) -> tuple[int, int, int]:
    if len(image_shape) != 3 or any(s is None for s in image_shape):
        raise ValueError(f"LevitBackbone: image_shape must be a fixed (height, width, channels) "
                         f"(channels first: (channels, height, width)), got {image_shape!r}: "
                         "LeViT's attention biases are learned per token grid")
    shape = tuple(int(s) for s in image_shape)
    return shape if data_format == "channels_last" else (shape[1], shape[2], shape[0])


@keras.saving.register_keras_serializable(package="levit_tf")
class LevitBackbone(Backbone):
    """LeViT stem and stages; images (B, H, W, 3) -> feature grid (B, h, w, C_last).

    Args:
        hidden_sizes: token width per stage (C).
        num_attention_heads: heads per stage.
        depths: attention + MLP blocks per stage.
        key_dim: query / key width per head per stage.
        mlp_ratio: MLP expansion per stage.
        attention_ratio: value width / key width per stage.
        drop_path_rate: stochastic depth rate of every residual block (training only).
        image_shape: (H, W, 3) input size, multiples of 16 (channels first: (3, H, W)).
        data_format: "channels_last" (default: Keras' image data format) or "channels_first"
            (the input and the output grid are transposed; the layers run NHWC).
        layout_version: the preset layout (``LAYOUT_VERSION``); a larger one is refused.
        dtype: dtype policy of every layer.

    The parameters are ``LevitConfig``'s (HF's) fields; ``levit_tf.keras_hub.backbone_kwargs``
    turns a ``LevitConfig`` into them.
    """

    def __init__(self, hidden_sizes: Sequence[int], num_attention_heads: Sequence[int],
                 depths: Sequence[int], key_dim: Sequence[int],
                 mlp_ratio: Sequence[int] = (2, 2, 2), attention_ratio: Sequence[int] = (2, 2, 2),
                 drop_path_rate: float = 0.0, image_shape: Sequence[int] = (224, 224, 3),
                 data_format: str | None = None, layout_version: int = LAYOUT_VERSION,
                 dtype: Any = None, **kwargs: Any) -> None:
        if int(layout_version) > LAYOUT_VERSION:
            raise ValueError(
                f"LevitBackbone: layout_version {layout_version} (the preset's config.json / "
                f"task.json) was saved by a newer levit-tf (this one reads layout "
                f"{LAYOUT_VERSION}); upgrade levit-tf")
        data_format = standardize_data_format(data_format)
        height, width, channels = _channels_last_shape(image_shape, data_format)
        config = LevitConfig(
            image_size=[height, width], num_channels=channels,
            hidden_sizes=_per_stage(hidden_sizes, "hidden_sizes"),
            num_attention_heads=_per_stage(num_attention_heads, "num_attention_heads"),
            depths=_per_stage(depths, "depths"), key_dim=_per_stage(key_dim, "key_dim"),
            mlp_ratio=_per_stage(mlp_ratio, "mlp_ratio"),
            attention_ratio=_per_stage(attention_ratio, "attention_ratio"),
            drop_path_rate=drop_path_rate, num_labels=0)

        # === Layers ===
        channels_first = data_format == "channels_first"
        self.to_channels_last = (keras.layers.Permute((2, 3, 1), dtype=dtype, name="to_nhwc")
                                 if channels_first else None)
        self.levit = LevitMainLayer(config, dtype=dtype, name="levit")
        grid_h, grid_w = config.stage_grids()[-1]
        self.to_grid = keras.layers.Reshape((grid_h, grid_w, config.hidden_sizes[-1]),
                                            dtype=dtype, name="to_grid")
        self.to_channels_first = (keras.layers.Permute((3, 1, 2), dtype=dtype, name="to_nchw")
                                  if channels_first else None)

        # === Functional model ===
        image_input = keras.layers.Input(shape=tuple(int(s) for s in image_shape), name="images")
        x = image_input
        if channels_first:
            x = self.to_channels_last(x)
        tokens, _ = self.levit(x)
        grid = self.to_grid(tokens)
        if channels_first:
            grid = self.to_channels_first(grid)
        super().__init__(inputs=image_input, outputs=grid, dtype=dtype, **kwargs)

        # === Config ===
        self.hidden_sizes = list(config.hidden_sizes)
        self.num_attention_heads = list(config.num_attention_heads)
        self.depths = list(config.depths)
        self.key_dim = list(config.key_dim)
        self.mlp_ratio = list(config.mlp_ratio)
        self.attention_ratio = list(config.attention_ratio)
        self.drop_path_rate = float(drop_path_rate)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.data_format = data_format
        self.layout_version = int(layout_version)
        self.levit_config = config

    @classmethod
    def from_preset(cls, preset: Any, load_weights: bool = True, **kwargs: Any) -> Backbone:
        """keras-hub's ``from_preset``; a local directory is checked first (PresetError naming
        the file: another family's preset, missing weights, a newer layout)."""
        check_local_preset(preset, weights=load_weights)
        return super().from_preset(preset, load_weights=load_weights, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            hidden_sizes=self.hidden_sizes, num_attention_heads=self.num_attention_heads,
            depths=self.depths, key_dim=self.key_dim, mlp_ratio=self.mlp_ratio,
            attention_ratio=self.attention_ratio, drop_path_rate=self.drop_path_rate,
            image_shape=self.image_shape, data_format=self.data_format,
            layout_version=self.layout_version)
        return config


def backbone_kwargs(config: LevitConfig) -> dict[str, Any]:
    """The ``LevitBackbone`` arguments of a ``LevitConfig`` (its architecture and input size)."""
    return dict(hidden_sizes=list(config.hidden_sizes),
                num_attention_heads=list(config.num_attention_heads), depths=list(config.depths),
                key_dim=list(config.key_dim), mlp_ratio=list(config.mlp_ratio),
                attention_ratio=list(config.attention_ratio),
                drop_path_rate=config.drop_path_rate,
                image_shape=(*config.image_hw, config.num_channels))


__all__ = ["LAYOUT_VERSION", "LevitBackbone", "backbone_kwargs"]
