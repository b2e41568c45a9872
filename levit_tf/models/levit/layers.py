"""Keras 3 building blocks of LeViT, smallest first: conv/linear + BN, attention, MLP, stage, head.

Tensors are NHWC in the stem and token-major (B, N, C) after it, N = H * W in row-major order
(the order PyTorch's ``flatten(2).transpose(1, 2)`` gives). Sublayer attribute names follow HF's
module names (``queries_keys_values``, ``projection``, ``linear_up`` ...), which the converters
rely on. BatchNormalization uses PyTorch's settings: epsilon 1e-5, momentum 0.9 (torch's 0.1).

Deploy-time folding sits next to the layer it folds (timm's ``fuse()``): ``fused()`` on ConvBN /
DenseBN / LevitClassificationHead returns one (kernel, bias), ``folded()`` on the attentions and
the MLP returns their folded projections (numpy float64); ``levit_tf.models.levit.inference``
assigns them.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from levit_tf.models.levit.attention_bias import attention_bias_index, num_bias_offsets, query_grid
from levit_tf.models.levit.block_plan import (
    ATTENTION,
    DOWNSAMPLE_ATTENTION_RATIO,
    DOWNSAMPLE_MLP_RATIO,
    SUBSAMPLE_ATTENTION,
    BlockSpec,
    StageSpec,
    stage_plan,
)

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # Keras convention: moving = momentum * moving + (1 - momentum) * batch
#: Input dtypes TF's fused training BN takes (statistics in float32); float64 stays unfused.
FUSED_BN_DTYPES = ("float16", "bfloat16", "float32")

register = keras.saving.register_keras_serializable(package="levit_tf")


@register
class TorchBatchNorm(layers.BatchNormalization):
    """BatchNormalization over the last axis that updates its statistics as PyTorch does.

    Normalization uses the biased batch variance in both frameworks, but PyTorch's running
    variance tracks the *unbiased* one (times n / (n - 1), n = values per channel); Keras tracks
    the biased one. With this layer, eval-mode outputs after training match PyTorch's.
    """

    def __init__(self, epsilon: float = BN_EPSILON, momentum: float = BN_MOMENTUM,
                 **kwargs: Any) -> None:
        kwargs.pop("axis", None)
        super().__init__(axis=-1, epsilon=epsilon, momentum=momentum, **kwargs)

    def call(self, inputs, training=None, mask=None):
        """TensorFlow trains with the fused kernel (``_fused_training_call``); JAX, torch and
        float64 with the same statistics in ``keras.ops`` (one jit-fused graph on JAX)."""
        if not (training and self.trainable):
            return super().call(inputs, training=False)
        fusable = keras.backend.standardize_dtype(inputs.dtype) in FUSED_BN_DTYPES
        if keras.backend.backend() == "tensorflow" and fusable and inputs.shape.rank is not None:
            return self._fused_training_call(inputs)
        x = ops.cast(inputs, backend_float(inputs.dtype))
        axes = list(range(len(x.shape) - 1))
        # two passes, as PyTorch: Keras' torch-backend ops.moments takes E[x^2] - E[x]^2, which
        # cancels when |mean| >> std (measured: 1.4e-3 gradient error on pooled features)
        mean = ops.mean(x, axis=axes)
        variance = ops.mean(ops.square(x - mean), axis=axes)
        count = ops.cast(ops.prod(ops.shape(x)[:-1]), x.dtype)
        unbiased = variance * count / ops.maximum(count - 1.0, 1.0)
        self.moving_mean.assign(
            self.moving_mean * self.momentum + ops.cast(mean, self.moving_mean.dtype)
            * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + ops.cast(unbiased, self.moving_variance.dtype)
            * (1.0 - self.momentum))
        out = ops.batch_normalization(
            x, mean, variance, axis=-1, offset=ops.cast(self.beta, x.dtype),
            scale=ops.cast(self.gamma, x.dtype), epsilon=self.epsilon)
        return ops.cast(out, self.compute_dtype)

    def _fused_training_call(self, inputs):
        """Training-mode BN as TF's one fused kernel (forward and gradient), (..., C) -> (..., C).

        ``FusedBatchNormV3`` normalizes with the biased batch variance and returns the unbiased
        one, PyTorch's running-variance update. The raw op is called directly: the
        ``tf.nn.fused_batch_norm`` wrapper raises epsilon to 1.001e-5 (a cuDNN limit).
        """
        import tensorflow as tf

        rank = inputs.shape.rank
        x = inputs if rank == 4 else tf.reshape(inputs, [-1, 1, 1, inputs.shape[-1]])
        param = self.gamma.dtype
        y, mean, unbiased, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=tf.cast(self.gamma, param), offset=tf.cast(self.beta, param),
            mean=tf.constant([], param), variance=tf.constant([], param), epsilon=self.epsilon,
            exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, unbiased)):
            moving.assign(moving * self.momentum + tf.cast(batch, moving.dtype)
                          * (1.0 - self.momentum))
        y = y if rank == 4 else tf.reshape(y, tf.shape(inputs))
        return tf.cast(y, self.compute_dtype)

    def scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """Eval-mode BN as y = x * scale + shift (float64)."""
        gamma, beta, mean, var = (np.asarray(w, np.float64) for w in (
            self.gamma, self.beta, self.moving_mean, self.moving_variance))
        scale = gamma / np.sqrt(var + self.epsilon)
        return scale, beta - mean * scale


def backend_float(dtype: Any) -> str:
    """float32 for reduced-precision inputs (BN statistics overflow in float16)."""
    return "float64" if keras.backend.standardize_dtype(dtype) == "float64" else "float32"


def batch_norm(name: str, dtype: Any) -> TorchBatchNorm:
    return TorchBatchNorm(name=name, dtype=dtype)


@register
class ConvBN(layers.Layer):
    """3x3 stride-2 convolution (torch padding 1 on every side), no bias, then BatchNorm.

    (B, H, W, C_in) -> (B, H', W', filters), H' = (H + 2 * padding - kernel) // strides + 1.
    """

    def __init__(self, filters: int, kernel_size: int = 3, strides: int = 2, padding: int = 1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides, self.padding = (
            filters, kernel_size, strides, padding)
        self.pad = layers.ZeroPadding2D(padding, dtype=self.dtype_policy, name="pad")
        self.convolution = layers.Conv2D(
            filters, kernel_size, strides=strides, padding="valid", use_bias=False,
            dtype=self.dtype_policy, name="convolution")
        self.batch_norm = batch_norm("batch_norm", self.dtype_policy)

    def build(self, input_shape: tuple) -> None:
        self.pad.build(input_shape)
        padded = self.pad.compute_output_shape(input_shape)
        self.convolution.build(padded)
        self.batch_norm.build(self.convolution.compute_output_shape(padded))

    def call(self, x, training=None):
        return self.batch_norm(self.convolution(self.pad(x)), training=training)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return self.convolution.compute_output_shape(self.pad.compute_output_shape(input_shape))

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding}

    def fused(self) -> tuple[np.ndarray, np.ndarray]:
        """Conv(no bias) -> BN as one (kernel (kh, kw, C_in, C_out), bias (C_out,)), float64."""
        scale, shift = self.batch_norm.scale_shift()
        return np.asarray(self.convolution.kernel, np.float64) * scale, shift


@register
class DenseBN(layers.Layer):
    """Linear without bias, then BatchNorm over all tokens. (B, N, C_in) -> (B, N, units)."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.linear = layers.Dense(units, use_bias=False, dtype=self.dtype_policy, name="linear")
        self.batch_norm = batch_norm("batch_norm", self.dtype_policy)

    def build(self, input_shape: tuple) -> None:
        self.linear.build(input_shape)
        self.batch_norm.build((*input_shape[:-1], self.units))

    def call(self, x, training=None):
        return self.batch_norm(self.linear(x), training=training)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}

    def fused(self) -> tuple[np.ndarray, np.ndarray]:
        """Linear(no bias) -> BN as one (kernel (C_in, C_out), bias (C_out,)), float64."""
        scale, shift = self.batch_norm.scale_shift()
        return np.asarray(self.linear.kernel, np.float64) * scale, shift


@register
class LevitClassificationHead(layers.Layer):
    """BatchNorm then Linear with bias (HF ``LevitClassificationLayer``). (B, C) -> (B, units)."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.batch_norm = batch_norm("batch_norm", self.dtype_policy)
        self.linear = layers.Dense(units, dtype=self.dtype_policy, name="linear")

    def build(self, input_shape: tuple) -> None:
        self.batch_norm.build(input_shape)
        self.linear.build(input_shape)

    def call(self, x, training=None):
        return self.linear(self.batch_norm(x, training=training))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], self.units)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}

    def fused(self) -> tuple[np.ndarray, np.ndarray]:
        """BN -> Linear as one (kernel (C, labels), bias (labels,)), float64."""
        scale, shift = self.batch_norm.scale_shift()
        kernel = np.asarray(self.linear.kernel, np.float64)
        return scale[:, None] * kernel, shift @ kernel + np.asarray(self.linear.bias, np.float64)


@register
class LevitPatchEmbeddings(layers.Layer):
    """The stem: four ConvBN (stride 2 each) with Hardswish between, then flatten to tokens.

    (B, H, W, C_in) -> (B, H/16 * W/16, hidden_size), channels C/8, C/4, C/2, C.
    """

    def __init__(self, hidden_size: int, kernel_size: int = 3, stride: int = 2, padding: int = 1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_size, self.kernel_size, self.stride, self.padding = (
            hidden_size, kernel_size, stride, padding)
        widths = (hidden_size // 8, hidden_size // 4, hidden_size // 2, hidden_size)
        self.embedding_layers = [
            ConvBN(width, kernel_size, stride, padding, dtype=self.dtype_policy,
                   name=f"embedding_layer_{i + 1}")
            for i, width in enumerate(widths)
        ]

    def build(self, input_shape: tuple) -> None:
        shape = input_shape
        for layer in self.embedding_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, pixel_values, training=None):
        x = pixel_values
        for i, layer in enumerate(self.embedding_layers):
            if i:
                x = ops.hard_swish(x)
            x = layer(x, training=training)
        _, height, width, channels = x.shape
        return ops.reshape(x, (-1, height * width, channels))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = input_shape
        for layer in self.embedding_layers:
            shape = layer.compute_output_shape(shape)
        return (shape[0], shape[1] * shape[2], shape[3])

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}



def key_softmax(scores):
    """Softmax over the keys (last axis). A 1x1 key grid (the last stage at small inputs) is a
    softmax over one key, exactly 1: the same op, without Keras' warning about size-1 axes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are using a softmax over axis", UserWarning)
        return ops.softmax(scores, axis=-1)

class _BiasedAttention(layers.Layer):
    """Shared parts of both attentions: the learned bias table and the softmax(QK^T + B)V core."""

    def __init__(self, key_dim: int, num_heads: int, attention_ratio: int,
                 grid: tuple[int, int], stride: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key_dim, self.num_heads, self.attention_ratio = key_dim, num_heads, attention_ratio
        self.grid = tuple(int(s) for s in grid)
        self.value_dim = attention_ratio * key_dim
        self.scale = key_dim**-0.5
        self.bias_index = attention_bias_index(self.grid, stride)  # (N_q, N_k) int32 constant

    def build_biases(self) -> None:
        self.attention_biases = self.add_weight(
            shape=(self.num_heads, num_bias_offsets(self.grid)), initializer="zeros",
            name="attention_biases")

    def attention_bias(self):
        """(heads, N_q, N_k) gathered afresh on every call: no cache that can go stale."""
        return ops.take(self.attention_biases, self.bias_index, axis=1)

    def attend(self, query, key, value):
        """query (B, h, N_q, D), key (B, h, D, N_k), value (B, h, N_k, rD) -> (B, N_q, h*rD)."""
        scores = ops.matmul(query, key) * self.scale + ops.cast(self.attention_bias(), query.dtype)
        weights = key_softmax(scores)
        out = ops.transpose(ops.matmul(weights, value), (0, 2, 1, 3))
        return ops.reshape(out, (-1, self.bias_index.shape[0], self.num_heads * self.value_dim))

    def get_config(self) -> dict:
        return {**super().get_config(), "key_dim": self.key_dim, "num_heads": self.num_heads,
                "attention_ratio": self.attention_ratio, "grid": list(self.grid)}


@register
class LevitAttention(_BiasedAttention):
    """Multi-head self-attention with learned relative-position biases. (B, N, C) -> (B, N, C).

    The fused projection is head-major: per head the columns are [q (D) | k (D) | v (rD)].
    """

    def __init__(self, hidden_size: int, key_dim: int, num_heads: int, attention_ratio: int,
                 grid: tuple[int, int], **kwargs: Any) -> None:
        super().__init__(key_dim, num_heads, attention_ratio, grid, stride=1, **kwargs)
        self.hidden_size = hidden_size
        self.queries_keys_values = DenseBN(
            num_heads * (2 * key_dim + self.value_dim), dtype=self.dtype_policy,
            name="queries_keys_values")
        self.projection = DenseBN(hidden_size, dtype=self.dtype_policy, name="projection")

    def build(self, input_shape: tuple) -> None:
        self.queries_keys_values.build(input_shape)
        self.projection.build((*input_shape[:-1], self.num_heads * self.value_dim))
        self.build_biases()

    def call(self, x, training=None):
        tokens = self.bias_index.shape[1]
        qkv = ops.reshape(self.queries_keys_values(x, training=training),
                          (-1, tokens, self.num_heads, 2 * self.key_dim + self.value_dim))
        # one split, not three slices: its gradient is one concat, not three zero-padded pastes
        query, key, value = ops.split(qkv, [self.key_dim, 2 * self.key_dim], axis=-1)
        query = ops.transpose(query, (0, 2, 1, 3))
        key = ops.transpose(key, (0, 2, 3, 1))
        value = ops.transpose(value, (0, 2, 1, 3))
        out = self.attend(query, key, value)
        return self.projection(ops.hard_swish(out), training=training)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_size": self.hidden_size}

    def folded(self) -> dict[str, Any]:
        """BN folded into each projection, the softmax scale into the query columns, and the
        gathered bias: {"queries_keys_values", "projection": (kernel, bias), "attention_bias":
        (heads, N, N)}, float64."""
        kernel, bias = self.queries_keys_values.fused()
        group = kernel.shape[1] // self.num_heads  # per head [q (D) | k (D) | v (rD)]
        factors = np.tile(np.r_[np.full(self.key_dim, self.scale),
                                np.ones(group - self.key_dim)], self.num_heads)
        return {"queries_keys_values": (kernel * factors, bias * factors),
                "projection": self.projection.fused(),
                "attention_bias": np.asarray(self.attention_bias(), np.float64)}


@register
class LevitAttentionSubsample(_BiasedAttention):
    """Shrinking attention: queries on every ``stride``-th grid point, keys/values on all.

    (B, H*W, C_in) -> (B, ceil(H/s)*ceil(W/s), output_dim). Not residual (the width changes).
    Per head the key/value columns are [k (D) | v (rD)].
    """

    def __init__(self, output_dim: int, key_dim: int, num_heads: int, attention_ratio: int,
                 grid: tuple[int, int], stride: int = 2, **kwargs: Any) -> None:
        super().__init__(key_dim, num_heads, attention_ratio, grid, stride=stride, **kwargs)
        self.output_dim, self.stride = output_dim, stride
        self.output_grid = query_grid(self.grid, stride)
        self.keys_values = DenseBN(num_heads * (key_dim + self.value_dim),
                                   dtype=self.dtype_policy, name="keys_values")
        self.queries = DenseBN(num_heads * key_dim, dtype=self.dtype_policy, name="queries")
        self.projection = DenseBN(output_dim, dtype=self.dtype_policy, name="projection")

    def build(self, input_shape: tuple) -> None:
        self.keys_values.build(input_shape)
        queries = self.output_grid[0] * self.output_grid[1]
        self.queries.build((input_shape[0], queries, input_shape[-1]))
        self.projection.build((input_shape[0], queries, self.num_heads * self.value_dim))
        self.build_biases()

    def subsample(self, x):
        """(B, H*W, C) -> (B, ceil(H/s)*ceil(W/s), C): every stride-th row and column."""
        channels = x.shape[-1]
        grid = ops.reshape(x, (-1, *self.grid, channels))[:, :: self.stride, :: self.stride]
        return ops.reshape(grid, (-1, self.output_grid[0] * self.output_grid[1], channels))

    def call(self, x, training=None):
        tokens = self.grid[0] * self.grid[1]
        kv = ops.reshape(self.keys_values(x, training=training),
                         (-1, tokens, self.num_heads, self.key_dim + self.value_dim))
        key, value = ops.split(kv, [self.key_dim], axis=-1)
        key = ops.transpose(key, (0, 2, 3, 1))
        value = ops.transpose(value, (0, 2, 1, 3))
        query = self.queries(self.subsample(x), training=training)
        query = ops.transpose(
            ops.reshape(query, (-1, self.bias_index.shape[0], self.num_heads, self.key_dim)),
            (0, 2, 1, 3))
        out = self.attend(query, key, value)
        return self.projection(ops.hard_swish(out), training=training)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], self.output_grid[0] * self.output_grid[1], self.output_dim)

    def get_config(self) -> dict:
        return {**super().get_config(), "output_dim": self.output_dim, "stride": self.stride}

    def folded(self) -> dict[str, Any]:
        """BN folded into each projection, the softmax scale into the queries, and the gathered
        bias: {"keys_values", "queries", "projection": (kernel, bias), "attention_bias":
        (heads, N_q, N_k)}, float64."""
        kernel, bias = self.queries.fused()
        return {"keys_values": self.keys_values.fused(),
                "queries": (kernel * self.scale, bias * self.scale),
                "projection": self.projection.fused(),
                "attention_bias": np.asarray(self.attention_bias(), np.float64)}


@register
class LevitMLP(layers.Layer):
    """DenseBN up, Hardswish, DenseBN down. (B, N, C) -> (B, N, C)."""

    def __init__(self, hidden_size: int, hidden_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_size, self.hidden_dim = hidden_size, hidden_dim
        self.linear_up = DenseBN(hidden_dim, dtype=self.dtype_policy, name="linear_up")
        self.linear_down = DenseBN(hidden_size, dtype=self.dtype_policy, name="linear_down")

    def build(self, input_shape: tuple) -> None:
        self.linear_up.build(input_shape)
        self.linear_down.build((*input_shape[:-1], self.hidden_dim))

    def call(self, x, training=None):
        return self.linear_down(ops.hard_swish(self.linear_up(x, training=training)),
                                training=training)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "hidden_dim": self.hidden_dim}

    def folded(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{"linear_up", "linear_down": (kernel, bias)} with BN folded, float64."""
        return {"linear_up": self.linear_up.fused(), "linear_down": self.linear_down.fused()}


@register
class LevitResidual(layers.Layer):
    """x + drop_path(module(x)): stochastic depth drops the branch per sample in training."""

    def __init__(self, module: layers.Layer, drop_path_rate: float = 0.0, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.module = module
        self.drop_path_rate = float(drop_path_rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if drop_path_rate > 0 else None

    def build(self, input_shape: tuple) -> None:
        if not self.module.built:  # a deserialized module arrives built
            self.module.build(input_shape)

    def call(self, x, training=None):
        branch = self.module(x, training=training)
        if training and self.drop_path_rate > 0:
            keep = 1.0 - self.drop_path_rate
            noise = keras.random.uniform((ops.shape(x)[0], 1, 1), seed=self.seed_generator,
                                         dtype=branch.dtype)
            branch = branch * (ops.cast(noise >= self.drop_path_rate, branch.dtype) / keep)
        return x + branch

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "module": keras.saving.serialize_keras_object(self.module),
                "drop_path_rate": self.drop_path_rate, "seed": self.seed}

    @classmethod
    def from_config(cls, config: dict) -> LevitResidual:
        config = dict(config)
        config["module"] = keras.saving.deserialize_keras_object(config["module"])
        return cls(**config)


def block_from_spec(spec: BlockSpec, drop_path_rate: float = 0.0,
                    dtype: Any = None) -> layers.Layer:
    """The training layer of one plan entry, named ``layers_{index}`` (HF's ``layers.{index}``):
    residual attention / MLP, or the (non-residual) subsample attention."""
    name = f"layers_{spec.index}"
    if spec.kind == SUBSAMPLE_ATTENTION:
        return LevitAttentionSubsample(
            spec.output_dim, spec.key_dim, spec.num_heads, spec.attention_ratio, spec.grid,
            stride=spec.stride, dtype=dtype, name=name)
    if spec.kind == ATTENTION:
        module = LevitAttention(spec.output_dim, spec.key_dim, spec.num_heads,
                                spec.attention_ratio, spec.grid, dtype=dtype, name="attention")
    else:  # MLP, SUBSAMPLE_MLP
        module = LevitMLP(spec.output_dim, spec.hidden_dim, dtype=dtype, name="mlp")
    return LevitResidual(module, drop_path_rate, dtype=dtype, name=name)


@dataclasses.dataclass(frozen=True)
class BlockRef:
    """A block of a built model: ``layer`` is ``stages[stage].blocks[index]``, ``module`` the
    attention / MLP inside it (the layer itself when it is not a LevitResidual)."""

    stage: int
    index: int
    layer: layers.Layer
    module: layers.Layer

    @property
    def key(self) -> tuple[int, int]:
        return self.stage, self.index

    @property
    def residual(self) -> bool:
        return self.layer is not self.module


def model_blocks(stages: list[LevitStage]) -> list[BlockRef]:
    """Every block of a list of stages (``model.levit.stages``), residual wrappers unwrapped:
    the one walk that the folding, the converters and the resolution change use."""
    return [BlockRef(s, i, block, block.module if isinstance(block, LevitResidual) else block)
            for s, stage in enumerate(stages) for i, block in enumerate(stage.blocks)]


def check_block(spec: BlockSpec, ref: BlockRef) -> None:
    """Raises ValueError unless the built block ``ref`` is the one ``spec`` plans."""
    kinds = {ATTENTION: LevitAttention, SUBSAMPLE_ATTENTION: LevitAttentionSubsample}
    expected = kinds.get(spec.kind, LevitMLP)
    sizes = ((ref.module.key_dim, ref.module.num_heads, ref.module.attention_ratio,
              ref.module.grid) if spec.is_attention else (ref.module.hidden_dim,))
    planned = ((spec.key_dim, spec.num_heads, spec.attention_ratio, spec.grid)
               if spec.is_attention else (spec.hidden_dim,))
    if (ref.key != spec.key or type(ref.module) is not expected or ref.residual != spec.residual
            or sizes != planned):
        raise ValueError(f"block stages[{ref.stage}].blocks[{ref.index}] "
                         f"({type(ref.module).__name__} {sizes}) is not the planned "
                         f"{spec.kind} {planned} at {spec.key}")


@register
class LevitStage(layers.Layer):
    """``depth`` x (residual attention, residual MLP) on one grid, then optionally the shrinking
    attention and its residual MLP (HF's stage layout: the downsample ends the stage).

    (B, H*W, C) -> (B, H*W, C), or (B, ceil(H/2)*ceil(W/2), downsample_dim) with a downsample.
    """

    def __init__(self, hidden_size: int, key_dim: int, depth: int, num_heads: int,
                 attention_ratio: int, mlp_ratio: int, grid: tuple[int, int],
                 drop_path_rate: float = 0.0, downsample_dim: int | None = None,
                 downsample_key_dim: int | None = None, downsample_heads: int | None = None,
                 downsample_attention_ratio: int = DOWNSAMPLE_ATTENTION_RATIO,
                 downsample_mlp_ratio: int = DOWNSAMPLE_MLP_RATIO, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = StageSpec(
            hidden_size=hidden_size, key_dim=key_dim, depth=depth, num_heads=num_heads,
            attention_ratio=attention_ratio, mlp_ratio=mlp_ratio,
            grid=tuple(int(s) for s in grid), downsample_dim=downsample_dim,
            downsample_key_dim=downsample_key_dim, downsample_heads=downsample_heads,
            downsample_attention_ratio=downsample_attention_ratio,
            downsample_mlp_ratio=downsample_mlp_ratio)
        self.hidden_size, self.key_dim, self.depth, self.num_heads = (
            hidden_size, key_dim, depth, num_heads)
        self.attention_ratio, self.mlp_ratio = attention_ratio, mlp_ratio
        self.grid = self.spec.grid
        self.drop_path_rate = drop_path_rate
        self.downsample_dim, self.downsample_key_dim, self.downsample_heads = (
            downsample_dim, downsample_key_dim, downsample_heads)
        self.downsample_attention_ratio = downsample_attention_ratio
        self.downsample_mlp_ratio = downsample_mlp_ratio
        self.blocks: list[layers.Layer] = [
            block_from_spec(block, drop_path_rate, self.dtype_policy)
            for block in self.spec.blocks()]

    @classmethod
    def from_spec(cls, spec: StageSpec, **kwargs: Any) -> LevitStage:
        return cls(**dataclasses.asdict(spec), **kwargs)

    def build(self, input_shape: tuple) -> None:
        shape = input_shape
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)

    def call(self, x, training=None):
        for block in self.blocks:
            x = block(x, training=training)
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = input_shape
        for block in self.blocks:
            shape = block.compute_output_shape(shape)
        return shape

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_size": self.hidden_size, "key_dim": self.key_dim,
                "depth": self.depth, "num_heads": self.num_heads,
                "attention_ratio": self.attention_ratio, "mlp_ratio": self.mlp_ratio,
                "grid": list(self.grid), "drop_path_rate": self.drop_path_rate,
                "downsample_dim": self.downsample_dim,
                "downsample_key_dim": self.downsample_key_dim,
                "downsample_heads": self.downsample_heads,
                "downsample_attention_ratio": self.downsample_attention_ratio,
                "downsample_mlp_ratio": self.downsample_mlp_ratio}


def stages_from_config(config: Any, dtype: Any = None) -> list[LevitStage]:
    """The LevitStage list of a LevitConfig, from its block plan
    (``levit_tf.models.levit.block_plan``)."""
    return [LevitStage.from_spec(spec, drop_path_rate=config.drop_path_rate, dtype=dtype,
                                 name=f"stages_{i}")
            for i, spec in enumerate(stage_plan(config))]


def pixel_shape(config: Any) -> tuple[int | None, int, int, int]:
    """Model input shape (B, H, W, C) of a LevitConfig."""
    return (None, *config.image_hw, config.num_channels)


__all__ = [
    "BlockRef", "ConvBN", "DenseBN", "LevitAttention", "LevitAttentionSubsample",
    "LevitClassificationHead", "LevitMLP", "LevitPatchEmbeddings", "LevitResidual", "LevitStage",
    "block_from_spec", "check_block", "model_blocks", "stages_from_config",
]
