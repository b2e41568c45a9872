"""Error-compensating int8 weight rounding (GPTQ: Frantar et al. 2022, arXiv 2210.17323).

The converter rounds every weight to the nearest step of its output channel's int8 grid
(symmetric, scale = max |w| / 127). GPTQ picks the integers of a layer one input column at a
time instead, and moves each column's rounding error onto the columns not yet rounded, in the
proportions that keep the layer's outputs on real inputs closest to float: it minimizes
||X W - X Q||^2 over the calibration inputs X, through their Gram matrix H = X^T X.

The rounded kernels stay on the converter's own grid: in each output channel the element of
largest magnitude is rounded to exactly +-127 steps, so the scale the converter computes is the
one GPTQ used and it stores these integers unchanged. ``check_stored`` proves that on the
converted file.

Layers are rounded in the order the model runs them; each layer's inputs come through the
layers before it with their weights already rounded, so later layers compensate earlier ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

WEIGHT_ROUNDINGS = ("nearest", "gptq")
#: The converter keeps weights with fewer elements in float in dynamic-range mode.
DYNAMIC_MIN_ELEMENTS = 1024
STEPS = 127  # symmetric int8 weights: [-127, 127]
_TOLERANCE_STEPS = 1e-3  # a stored integer must dequantize to the rounded kernel within this


@dataclass(frozen=True)
class RoundedLayer:
    """One rounded layer and its output error on the calibration inputs: the sum over the
    inputs of ||x (W - Q)||^2, for GPTQ's integers and for round-to-nearest's."""

    name: str
    kernel: np.ndarray  # the rounded kernel, on its int8 grid, in Keras layout
    gptq_error: float
    nearest_error: float


@dataclass(frozen=True)
class RoundingReport:
    layers: tuple[RoundedLayer, ...]
    images: int
    seconds: float

    @property
    def error_ratio(self) -> float:
        """Summed output error of GPTQ's integers over round-to-nearest's (lower is better)."""
        nearest = sum(layer.nearest_error for layer in self.layers)
        return sum(layer.gptq_error for layer in self.layers) / nearest if nearest else 1.0


def per_channel_scale(kernel: np.ndarray) -> np.ndarray:
    """The converter's int8 scale per output channel (the last axis) of ``kernel``; an all-zero
    channel gets 1 (its integers are 0 whatever the scale)."""
    bound = np.abs(kernel.reshape(-1, kernel.shape[-1])).max(axis=0).astype(np.float64)
    return np.where(bound > 0, bound / STEPS, 1.0)


def round_to_nearest(kernel: np.ndarray) -> np.ndarray:
    """What the converter stores for ``kernel`` (..., out), dequantized."""
    scale = per_channel_scale(kernel)
    return np.clip(np.round(kernel / scale), -STEPS, STEPS) * scale


def output_error(delta: np.ndarray, gram: np.ndarray) -> float:
    """sum over the inputs x of ||x delta||^2, from their Gram matrix: delta (in, out), gram
    (in, in)."""
    return float(np.sum((gram @ delta) * delta))


def gptq_kernel(kernel: np.ndarray, gram: np.ndarray, damping: float = 0.01,
                block: int = 128) -> np.ndarray:
    """``kernel`` (in, out) rounded by GPTQ onto its per-output-channel int8 grid, given the
    Gram matrix (in, in) of the layer's calibration inputs. Columns go in order of decreasing
    input energy; ``damping`` (a fraction of the mean diagonal) keeps H invertible when some
    inputs are constant or collinear; ``block`` columns are updated at a time."""
    weights = kernel.astype(np.float64).T.copy()  # (out, in)
    scale = per_channel_scale(kernel)[:, None]
    hessian = gram.astype(np.float64).copy()
    diagonal = np.diag(hessian).copy()
    diagonal[diagonal == 0] = 1.0  # an input that is always 0: its weights round to nearest
    np.fill_diagonal(hessian, diagonal)
    order = np.argsort(-diagonal, kind="stable")
    weights, hessian = weights[:, order], hessian[np.ix_(order, order)]
    hessian[np.diag_indices_from(hessian)] += damping * np.mean(diagonal)
    # the element of largest magnitude per channel goes to exactly +-127: the converter's scale
    anchor = np.abs(weights).argmax(axis=1)
    anchor_value = np.sign(weights[np.arange(len(weights)), anchor]) * STEPS
    upper = np.linalg.cholesky(np.linalg.inv(hessian)).T
    columns = weights.shape[1]
    integers = np.zeros_like(weights)
    for start in range(0, columns, block):
        stop = min(start + block, columns)
        part = weights[:, start:stop].copy()
        errors = np.zeros_like(part)
        for j in range(stop - start):
            i = start + j
            q = np.clip(np.round(part[:, j] / scale[:, 0]), -STEPS, STEPS)
            anchored = anchor == i
            q[anchored] = anchor_value[anchored]
            integers[:, i] = q
            error = (part[:, j] - q * scale[:, 0]) / upper[i, i]
            part[:, j:] -= np.outer(error, upper[i, i:stop])
            errors[:, j] = error
        weights[:, stop:] -= errors @ upper[start:stop, stop:]
    rounded = (integers * scale)[:, np.argsort(order)]
    return rounded.T.astype(np.float32)


def kernel_rows(layer: keras.layers.Layer, x: tf.Tensor) -> np.ndarray:
    """The rows ``layer`` multiplies its kernel, reshaped to (fan_in, out), with: (M, fan_in).
    Tokens for a Dense layer; for a (VALID) Conv2D, im2col patches in the kernel's (kh, kw,
    c_in) order."""
    if isinstance(layer, keras.layers.Conv2D):
        (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
        x = tf.image.extract_patches(x, [1, kh, kw, 1], [1, sh, sw, 1], [1, 1, 1, 1], "VALID")
    return np.asarray(x, np.float64).reshape(-1, int(np.prod(layer.kernel.shape[:-1])))


def _gram(layer: keras.layers.Layer, inputs: Iterable[tf.Tensor]) -> np.ndarray:
    """X^T X (fan_in, fan_in) over every row the layer multiplies its kernel with."""
    size = int(np.prod(layer.kernel.shape[:-1]))
    gram = np.zeros((size, size))
    for x in inputs:
        rows = kernel_rows(layer, x)
        gram += rows.T @ rows
    return gram


def layer_schedule(model) -> Iterator[tuple[keras.layers.Layer, Callable, Callable | None]]:
    """(layer, state -> its input, state -> the next state or None) in the order the
    ``LevitForInference`` model runs them; the state starts as the model's input batch."""
    last = len(model.stem_convs) - 1
    for i, conv in enumerate(model.stem_convs):
        def conv_input(x, i=i):
            return model.stem_conv_input(i, x)

        def advance(x, conv=conv, conv_input=conv_input, i=i):
            y = conv(conv_input(x))
            return tf.reshape(y, (-1, y.shape[-1])) if i == last else y
        yield conv, conv_input, advance
    for block in model.blocks:
        dense_inputs = block.dense_inputs()
        for k, (dense, dense_input) in enumerate(dense_inputs):
            yield dense, dense_input, (block if k == len(dense_inputs) - 1 else None)
    if model.head is not None:
        yield model.head, model.pooled, None


def round_weights(model, images: np.ndarray, *, min_elements: int = 1, batch_size: int = 16,
                  progress: bool = True) -> RoundingReport:
    """Rounds the kernels of ``model`` (a ``LevitForInference``, changed in place) by GPTQ on
    ``images`` (N, H, W, 3), in the model's input domain. Kernels with fewer than
    ``min_elements`` elements (those the converter leaves float) are left as they are."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    states = [tf.constant(images[i:i + batch_size], tf.float32)
              for i in range(0, len(images), batch_size)]
    plan = list(layer_schedule(model))
    rounded = []
    for layer, layer_input, advance in tqdm(plan, desc="GPTQ weight rounding", unit="layer",
                                            leave=False, disable=not progress):
        kernel = np.asarray(layer.kernel)
        if kernel.size >= min_elements:
            gram = _gram(layer, (layer_input(x) for x in states))
            matrix = kernel.reshape(-1, kernel.shape[-1])
            new = gptq_kernel(matrix, gram)
            rounded.append(RoundedLayer(
                layer.kernel.path.rsplit("/", 1)[0], new.reshape(kernel.shape),
                output_error(matrix - new.astype(np.float64), gram),
                output_error(matrix - round_to_nearest(matrix), gram)))
            layer.kernel.assign(new.reshape(kernel.shape))
        if advance is not None:
            states = [advance(x) for x in states]
    return RoundingReport(tuple(rounded), len(images), time.perf_counter() - start)


def _int8_weights(model_bytes: bytes) -> list[np.ndarray]:
    """Every per-channel quantized int8 tensor with data in the file, dequantized and in Keras
    layout: (in, out) for FULLY_CONNECTED weights, (kh, kw, in, out) for CONV_2D filters."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(model_bytes, 0)
    found = []
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            quantization = tensor.Quantization()
            if tensor.Type() != schema.TensorType.INT8 or quantization is None:
                continue
            scales = quantization.ScaleAsNumpy()
            data = model.Buffers(tensor.Buffer()).DataAsNumpy()
            if isinstance(scales, int) or len(scales) < 2 or isinstance(data, int):
                continue
            shape = tuple(tensor.ShapeAsNumpy())
            values = data.view(np.int8).reshape(shape).astype(np.float64)
            values *= scales.reshape((-1,) + (1,) * (len(shape) - 1))
            found.append(np.moveaxis(values, 0, -1) if len(shape) == 4 else values.T)
    return found


def check_stored(model_bytes: bytes, report: RoundingReport) -> None:
    """Raises RuntimeError naming the first rounded layer whose integers the converted file
    does not hold exactly (then the file would carry a second rounding)."""
    stored = _int8_weights(model_bytes)
    for layer in report.layers:
        step = per_channel_scale(layer.kernel)
        if not any(s.shape == layer.kernel.shape
                   and np.max(np.abs(s - layer.kernel) / step) < _TOLERANCE_STEPS
                   for s in stored):
            raise RuntimeError(f"GPTQ-rounded weights of {layer.name} are not stored as "
                               "rounded in the converted file")
