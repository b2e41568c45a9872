"""BatchNormalization running statistics across ``tf.distribute`` replicas.

Each replica normalizes with its own batch statistics (as PyTorch DDP without SyncBatchNorm
does); after every training step the models' ``train_step`` averages the replicas' BN running
statistics, so all replicas and the saved model hold the same statistics:
momentum * old + (1 - momentum) * mean over replicas of the batch statistics.
(``TorchBatchNorm`` in ``levit_tf.models.levit.layers`` is the layer;
``levit_tf.training.distribute`` makes the strategies.)
"""

from __future__ import annotations

import math

import keras

from levit_tf.utils.keras_internals import sublayers


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """The model's trainable BatchNormalization layers (those that update statistics)."""
    return [layer for layer in sublayers(model)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


def sync_batch_norm_statistics(model: keras.Model) -> None:
    """Averages BN running statistics over replicas (no-op outside a multi-replica step).

    Call in replica context after the step's forward pass. One all-reduce of all statistics
    concatenated: 2 * sum(channels) floats per step.
    """
    if keras.backend.backend() != "tensorflow":
        return  # JAX and PyTorch: no tf.distribute replicas to average over
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync <= 1:
        return
    variables = [v for layer in batch_norm_layers(model)
                 for v in (layer.moving_mean, layer.moving_variance)]
    if not variables:
        return
    flat = tf.concat([tf.reshape(tf.cast(v.value, tf.float32), [-1]) for v in variables], 0)
    mean = context.all_reduce(tf.distribute.ReduceOp.MEAN, flat)
    sizes = [math.prod(v.shape) for v in variables]
    for variable, part in zip(variables, tf.split(mean, sizes), strict=True):
        variable.assign(tf.cast(tf.reshape(part, variable.shape), variable.dtype))


__all__ = ["batch_norm_layers", "sync_batch_norm_statistics"]
