"""Data-parallel training with ``tf.distribute``: strategies, BN statistics across replicas.

The models train under any ``tf.distribute`` strategy with the ordinary Keras code: build and
compile the model (and a distillation teacher) inside ``strategy.scope()``, then ``fit``. Each
replica normalizes with its own batch statistics (as PyTorch DDP without SyncBatchNorm does), and
after every step the replicas' BN running statistics are averaged (``sync_batch_norm_statistics``,
called by the models' ``train_step``), so all replicas and the saved model hold the same
statistics: momentum * old + (1 - momentum) * mean over replicas of the batch statistics.

One machine, several devices::

    strategy = tf.distribute.MirroredStrategy()          # every local GPU (or listed devices)
    with strategy.scope():
        model = LevitForImageClassification.from_pretrained(src, num_labels=10,
                                                            ignore_mismatched_sizes=True)
        model.compile(optimizer=adamw(model, 5e-4), metrics=["accuracy"],
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train_ds, validation_data=val_ds, epochs=10)  # global batch split over replicas

Several machines (``MultiWorkerMirroredStrategy``): run the same script on every worker with
``TF_CONFIG`` naming the cluster and this worker's index, e.g. on worker 0 of two::

    export TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                       "task": {"type": "worker", "index": 0}}'
    python train.py   # strategy = make_strategy("multiworker"); worker 1 uses "index": 1

and create the strategy before any other TensorFlow call. Every worker must build the same
dataset (Keras shards it by data, or shard by ``ds.shard(num_workers, index)`` yourself); only
the chief (index 0) should write checkpoints to a shared path, the others to temporary ones.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from levit_tf.training.options import STRATEGIES


def make_strategy(kind: str = "default", devices: list[str] | None = None
                  ) -> tf.distribute.Strategy:
    """``"default"`` (one device), ``"mirrored"`` (all local GPUs, or ``devices``), or
    ``"multiworker"`` (``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``)."""
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if kind == "multiworker":
        if devices is not None:
            raise ValueError("multiworker takes its devices from TF_CONFIG, not `devices`")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {kind!r}; choose from {STRATEGIES}")


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """The model's trainable BatchNormalization layers (those that update statistics)."""
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


def sync_batch_norm_statistics(model: keras.Model) -> None:
    """Averages BN running statistics over replicas (no-op outside a multi-replica step).

    Call in replica context after the step's forward pass. One all-reduce of all statistics
    concatenated: 2 * sum(channels) floats per step.
    """
    if keras.backend.backend() != "tensorflow":
        return
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


__all__ = ["STRATEGIES", "batch_norm_layers", "make_strategy", "sync_batch_norm_statistics"]
