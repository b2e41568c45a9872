"""Inference-optimized LeViT: every BatchNorm folded, heads fused, attention biases constant.

``optimize_for_inference(model)`` returns a ``LevitForInference`` that computes the same function
as the trained model in eval mode (to float32 rounding) with fewer ops:

- ConvBN / DenseBN -> one convolution / Dense with bias (W * s, beta - mean * s, s = gamma /
  sqrt(var + eps)); the BN -> Dense heads fold the same way from the other side.
- ``LevitForImageClassificationWithTeacher``'s two heads become one Dense (their average), which
  is what inference returns anyway.
- The softmax scale 1/sqrt(D) is folded into the query columns.
- Each attention layer's (heads, N_q, N_k) bias is gathered once and stored as a constant.

This is the one folding code path: the TFLite exporter and the benchmarks use it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from levit_tf.models.levit.block_plan import BlockSpec, block_plan
from levit_tf.models.levit.configuration_levit import LevitConfig
from levit_tf.models.levit.layers import (
    LevitAttention,
    LevitAttentionSubsample,
    LevitClassificationHead,
    LevitMLP,
    check_block,
    key_softmax,
    model_blocks,
    pixel_shape,
    register,
)
from levit_tf.models.levit.modeling_levit import (
    LevitForImageClassification,
    LevitPreTrainedModel,
)
from levit_tf.preprocessing.config import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

INPUT_MODES = ("normalized", "uint8", "rgb255")

# ----------------------------------------------------------------------------------- folding
# (each layer folds itself: ``fused()`` / ``folded()`` in levit_tf.models.levit.layers)


def fuse_heads(heads: list[LevitClassificationHead]) -> tuple[np.ndarray, np.ndarray]:
    """The mean of several heads' logits as one Dense."""
    folded = [head.fused() for head in heads]
    return (sum(k for k, _ in folded) / len(folded), sum(b for _, b in folded) / len(folded))


# ----------------------------------------------------------------------------------- layers


def _dense(units: int, name: str) -> layers.Dense:
    return layers.Dense(units, name=name)


def _identity(x):
    return x


@register
class FoldedAttention(layers.Layer):
    """Residual self-attention (stride 1) or shrinking attention (stride 2) with folded BN and
    a constant bias. Tokens are 2-D: (B*H*W, C_in) -> (B*N_q, output_dim)."""

    def __init__(self, output_dim: int, key_dim: int, num_heads: int, attention_ratio: int,
                 grid: tuple[int, int], stride: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.output_dim, self.key_dim, self.num_heads = output_dim, key_dim, num_heads
        self.attention_ratio, self.stride = attention_ratio, stride
        self.grid = tuple(int(s) for s in grid)
        self.value_dim = attention_ratio * key_dim
        self.output_grid = tuple((s - 1) // stride + 1 for s in self.grid)
        self.num_keys = self.grid[0] * self.grid[1]
        self.num_queries = self.output_grid[0] * self.output_grid[1]
        if stride == 1:
            self.queries_keys_values = _dense(num_heads * (2 * key_dim + self.value_dim), "qkv")
        else:
            self.keys_values = _dense(num_heads * (key_dim + self.value_dim), "kv")
            self.queries = _dense(num_heads * key_dim, "q")
        self.projection = _dense(output_dim, "projection")

    def build(self, input_shape: tuple) -> None:
        if self.stride == 1:
            self.queries_keys_values.build(input_shape)
        else:
            self.keys_values.build(input_shape)
            self.queries.build(input_shape)
        self.projection.build((*input_shape[:-1], self.num_heads * self.value_dim))
        # stored negated and subtracted: SUB is then an op type of its own, which selective
        # int8 quantization can keep in float together with the rest of the attention
        self.negated_attention_bias = self.add_weight(
            shape=(self.num_heads, self.num_queries, self.num_keys), initializer="zeros",
            trainable=False, name="negated_attention_bias")

    def call(self, x):
        out = self.projection(self.attend(x))
        return x + out if self.stride == 1 else out  # self-attention is residual

    def attend(self, x):
        """What the projection reads: hardswish of the heads' attention outputs, merged.
        (B*N, C) -> (B*N_q, h*v)."""
        query, key, value = self.split_heads(x)
        weights = key_softmax(self.scores(query, key) - self.negated_attention_bias)
        return ops.hard_swish(self.merge_heads(ops.matmul(weights, value)))

    def dense_inputs(self) -> list[tuple[layers.Dense, Callable]]:
        """Each Dense layer in call order with the function from this block's input to that
        layer's input; a later layer's input goes through the earlier layers' current weights."""
        if self.stride == 1:
            first = [(self.queries_keys_values, _identity)]
        else:
            first = [(self.keys_values, _identity), (self.queries, self.subsample)]
        return [*first, (self.projection, self.attend)]

    def split_heads(self, x):
        """(B*N, C) -> query (B, h, N_q, d), key (B, h, N, d), value (B, h, N, v).

        Heads move ahead of tokens with one transpose of the fused projection, sliced after:
        one TRANSPOSE per attention instead of three."""
        d, v, h = self.key_dim, self.value_dim, self.num_heads
        if self.stride == 1:
            qkv = ops.transpose(ops.reshape(self.queries_keys_values(x),
                                            (-1, self.num_keys, h, 2 * d + v)), (0, 2, 1, 3))
            return qkv[..., :d], qkv[..., d: 2 * d], qkv[..., 2 * d:]
        kv = ops.transpose(ops.reshape(self.keys_values(x), (-1, self.num_keys, h, d + v)),
                           (0, 2, 1, 3))
        query = ops.reshape(self.queries(self.subsample(x)), (-1, self.num_queries, h, d))
        return ops.transpose(query, (0, 2, 1, 3)), kv[..., :d], kv[..., d:]

    @staticmethod
    def scores(query, key):
        """QK^T: (B, h, N_q, d), (B, h, N, d) -> (B, h, N_q, N). The converter folds the
        swap into the BATCH_MATMUL (adj_y), so it costs no TRANSPOSE."""
        return ops.matmul(query, ops.swapaxes(key, -1, -2))

    def merge_heads(self, out):
        """(B, h, N_q, v) -> (B*N_q, h*v), token-major again for the projection."""
        return ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (-1, self.num_heads * self.value_dim))

    def subsample(self, x):
        """(B*H*W, C) -> (B*N_q, C): every stride-th row and column, using only unit-stride
        slices (XNNPACK runs those; a stride-2 STRIDED_SLICE would split the delegate)."""
        (height, width), (out_h, out_w), s = self.grid, self.output_grid, self.stride
        channels = x.shape[-1]
        grid = ops.reshape(x, (-1, height, width, channels))
        if (out_h * s, out_w * s) != (height, width):
            grid = ops.pad(grid, ((0, 0), (0, out_h * s - height), (0, out_w * s - width), (0, 0)))
        # row r = s*i + a, column c = s*j + b: keep a = 0 and b = 0
        grid = ops.reshape(grid, (-1, s, out_w, s * channels))[:, :1, :, :channels]
        return ops.reshape(grid, (-1, channels))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (None, self.output_dim)

    def get_config(self) -> dict:
        return {**super().get_config(), "output_dim": self.output_dim, "key_dim": self.key_dim,
                "num_heads": self.num_heads, "attention_ratio": self.attention_ratio,
                "grid": list(self.grid), "stride": self.stride}

    @classmethod
    def from_spec(cls, spec: BlockSpec, name: str) -> FoldedAttention:
        return cls(spec.output_dim, spec.key_dim, spec.num_heads, spec.attention_ratio,
                   spec.grid, stride=spec.stride, name=name)

    def load_from(self, source: LevitAttention | LevitAttentionSubsample) -> None:
        folded = source.folded()
        names = (("queries_keys_values",) if self.stride == 1 else ("keys_values", "queries"))
        for name in (*names, "projection"):
            _assign(getattr(self, name), *folded[name])
        self.negated_attention_bias.assign(-folded["attention_bias"].astype(np.float32))


@register
class FoldedMLP(layers.Layer):
    """x + Dense(hardswish(Dense(x))) with folded BN. (B*N, C) -> (B*N, C)."""

    def __init__(self, hidden_size: int, hidden_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_size, self.hidden_dim = hidden_size, hidden_dim
        self.linear_up = _dense(hidden_dim, "linear_up")
        self.linear_down = _dense(hidden_size, "linear_down")

    def build(self, input_shape: tuple) -> None:
        self.linear_up.build(input_shape)
        self.linear_down.build((*input_shape[:-1], self.hidden_dim))

    def call(self, x):
        return x + self.linear_down(self.hidden(x))

    def hidden(self, x):
        """(B*N, C) -> (B*N, hidden_dim): what ``linear_down`` reads."""
        return ops.hard_swish(self.linear_up(x))

    def dense_inputs(self) -> list[tuple[layers.Dense, Callable]]:
        """Each Dense layer in call order with the function from this block's input to that
        layer's input (see ``FoldedAttention.dense_inputs``)."""
        return [(self.linear_up, _identity), (self.linear_down, self.hidden)]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "hidden_dim": self.hidden_dim}

    @classmethod
    def from_spec(cls, spec: BlockSpec, name: str) -> FoldedMLP:
        return cls(spec.output_dim, spec.hidden_dim, name=name)

    def load_from(self, source: LevitMLP) -> None:
        folded = source.folded()
        _assign(self.linear_up, *folded["linear_up"])
        _assign(self.linear_down, *folded["linear_down"])


def _assign(dense: layers.Layer, kernel: np.ndarray, bias: np.ndarray) -> None:
    dense.kernel.assign(kernel.astype(np.float32))
    dense.bias.assign(bias.astype(np.float32))


# ----------------------------------------------------------------------------------- model


@register
class LevitForInference(keras.Model):
    """Folded LeViT for deployment. (B, H, W, 3) NHWC float32 -> {"logits"} for classifiers
    (one fused head) or {"last_hidden_state", "pooler_output"} for a backbone."""

    def __init__(self, config: LevitConfig | dict[str, Any], with_head: bool = True,
                 input_mode: str = "normalized", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config if isinstance(config, LevitConfig) else LevitConfig.from_dict(config)
        self.with_head = with_head and self.config.num_labels > 0
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
        self.input_mode = input_mode
        c = self.config
        widths = (c.hidden_sizes[0] // 8, c.hidden_sizes[0] // 4, c.hidden_sizes[0] // 2,
                  c.hidden_sizes[0])
        self.stem_pads = [layers.ZeroPadding2D(c.padding, name=f"stem_pad_{i + 1}")
                          for i in range(4)]
        self.stem_convs = [layers.Conv2D(w, c.kernel_size, strides=c.stride, name=f"stem_{i + 1}")
                           for i, w in enumerate(widths)]
        #: The block plan this graph is built from; ``blocks[i]`` folds ``plan[i]``.
        self.plan: tuple[BlockSpec, ...] = tuple(block_plan(c))
        self.blocks: list[layers.Layer] = []
        for i, spec in enumerate(self.plan):
            label = {"attention": "attention", "subsample_attention": "subsample"}.get(
                spec.kind, "mlp")
            folded_class = FoldedAttention if spec.is_attention else FoldedMLP
            self.blocks.append(folded_class.from_spec(spec, name=f"stage{spec.stage}_{label}_{i}"))
        self.head = _dense(c.num_labels, "head") if self.with_head else None
        if input_mode != "normalized":  # x - 255 * mean; 1 / (255 * std) sits in the stem kernel
            self.negated_input_offset = self.add_weight(
                shape=(c.num_channels,), initializer="zeros", trainable=False,
                name="negated_input_offset")
        self.build(pixel_shape(c))

    def build(self, input_shape: tuple) -> None:
        shape = tuple(input_shape)
        for pad, conv in zip(self.stem_pads, self.stem_convs, strict=True):
            shape = pad.compute_output_shape(shape)
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        shape = (None, shape[3])  # tokens stay 2-D, (B*N, C): every Dense is a plain GEMM
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)
        if self.head is not None:
            self.head.build((shape[0], shape[-1]))
        self.built = True

    def stem_tokens(self, pixel_values):
        """The stem: (B, H, W, 3) -> 2-D tokens (B*N, C) that ``self.blocks`` take in turn."""
        x = pixel_values
        for i, conv in enumerate(self.stem_convs):
            x = conv(self.stem_conv_input(i, x))
        return ops.reshape(x, (-1, x.shape[-1]))

    def stem_conv_input(self, i: int, x):
        """What stem convolution ``i`` reads, zero-padded: the pixels (offset when the model
        takes raw RGB) for i = 0, else hardswish of convolution i - 1's output (B, H, W, C)."""
        if i == 0 and self.input_mode != "normalized":
            x = ops.cast(x, "float32") + self.negated_input_offset
        return self.stem_pads[i](ops.hard_swish(x) if i else x)

    def pooled(self, tokens):
        """Mean over the last stage's tokens: (B*N, C) -> (B, C), what the head reads."""
        grid = self.config.stage_grids()[-1]
        return ops.mean(ops.reshape(tokens, (-1, grid[0] * grid[1], tokens.shape[-1])), axis=1)

    def tokens(self, pixel_values):
        """Stem and every block: (B, H, W, 3) -> 2-D tokens (B*N, C)."""
        x = self.stem_tokens(pixel_values)
        for block in self.blocks:
            x = block(x)
        return x

    def call(self, pixel_values):
        tokens = self.tokens(pixel_values)
        pooled = self.pooled(tokens)
        if self.head is None:
            grid = self.config.stage_grids()[-1]
            hidden = ops.reshape(tokens, (-1, grid[0] * grid[1], tokens.shape[-1]))
            return {"last_hidden_state": hidden, "pooler_output": pooled}
        return {"logits": self.head(pooled)}

    def get_config(self) -> dict:
        return {"config": self.config.to_dict(), "with_head": self.with_head,
                "input_mode": self.input_mode, "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> LevitForInference:
        return cls(**config)

    def load_from(self, model: LevitPreTrainedModel) -> None:
        """Folds ``model``'s weights into this model's; each folded block takes the block of
        its plan entry (stage, index), checked to be the planned kind and size."""
        for conv, source in zip(self.stem_convs, model.levit.patch_embeddings.embedding_layers,
                                strict=True):
            _assign(conv, *source.fused())
        sources = {ref.key: ref for ref in model_blocks(model.levit.stages)}
        if set(sources) != {spec.key for spec in self.plan}:
            raise ValueError(f"{model.name} has blocks {sorted(sources)}, the plan of this "
                             f"config {[spec.key for spec in self.plan]}")
        for spec, block in zip(self.plan, self.blocks, strict=True):
            source = sources[spec.key]
            check_block(spec, source)
            block.load_from(source.module)
        if self.head is not None:
            _assign(self.head, *fuse_heads(model.heads()))

    def fold_input_normalization(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        """Takes raw RGB 0..255 instead of normalized pixels: (x / 255 - mean) / std becomes
        (x - 255 mean) in the graph and 1 / (255 std) in the first kernel. Zero padding then
        still pads with the normalized zero, so the result is exact."""
        if self.input_mode == "normalized":
            raise ValueError("fold_input_normalization needs input_mode 'uint8' or 'rgb255'")
        mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        conv = self.stem_convs[0]
        kernel = np.asarray(conv.kernel, np.float64) / (255.0 * std)[None, None, :, None]
        conv.kernel.assign(kernel.astype(np.float32))
        self.negated_input_offset.assign((-255.0 * mean).astype(np.float32))


def optimize_for_inference(model: LevitPreTrainedModel, input_mode: str = "normalized",
                           mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN,
                           std: tuple[float, ...] = IMAGENET_DEFAULT_STD) -> LevitForInference:
    """The folded deployment twin of ``model`` (same eval-mode function, within ~1e-6).

    Args:
        input_mode: 'normalized' (float pixel_values as the model takes them), 'uint8' (raw RGB
            uint8, normalization folded into the stem) or 'rgb255' (raw RGB as float 0..255).
        mean, std: the normalization folded in for 'uint8' / 'rgb255'.
    """
    if not isinstance(model, LevitPreTrainedModel):
        raise TypeError(f"expected a LeViT model, got {type(model).__name__}")
    with_head = isinstance(model, LevitForImageClassification) and bool(model.heads())
    folded = LevitForInference(model.config, with_head=with_head, input_mode=input_mode,
                               name=f"{model.name}_inference")
    folded.load_from(model)
    if input_mode != "normalized":
        folded.fold_input_normalization(mean, std)
    return folded


__all__ = ["LevitForInference", "optimize_for_inference"]
