"""Tiny LeViT configs and randomized weights for the model tests."""

from __future__ import annotations

import keras
import numpy as np

# Three stages on a 96 px input (token grids 6x6, 3x3, 2x2).
SMALL = dict(hidden_sizes=[32, 48, 64], num_attention_heads=[2, 3, 4], depths=[1, 1, 1],
             key_dim=[8, 8, 8], image_size=96, num_labels=7)


def randomize(model: keras.Model, seed: int = 0) -> keras.Model:
    """Random weights everywhere (BN statistics and attention biases too), at scales that keep
    activations O(1): kernels N(0, 1/fan_in), positive BN variances and gammas."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        name = weight.path.rsplit("/", 1)[-1]
        if name == "kernel":
            value = rng.normal(0, np.prod(weight.shape[:-1]) ** -0.5, weight.shape)
        elif name in ("moving_variance", "gamma"):
            value = rng.uniform(0.5, 1.5, weight.shape)
        elif name == "attention_biases":
            value = rng.normal(0, 1.0, weight.shape)
        else:
            value = rng.normal(0, 0.2, weight.shape)
        weight.assign(value.astype(weight.dtype))
    return model


# Two stages on a 32 px input (token grids 2x2 then 1x1): training graphs trace in seconds.
TINY = dict(hidden_sizes=[16, 24], num_attention_heads=[2, 3], depths=[1, 1], key_dim=[8, 8],
            mlp_ratio=[2, 2], attention_ratio=[2, 2], image_size=32, num_labels=4)
