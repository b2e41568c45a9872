"""Data-parallel training with ``tf.distribute``: strategies, BN statistics across replicas.

The models train under any ``tf.distribute`` strategy with the ordinary Keras code: build and
compile the model (and a distillation teacher) inside ``strategy.scope()``, then ``fit``. Each
replica normalizes with its own batch statistics (as PyTorch DDP without SyncBatchNorm does), and
after every step the replicas' BN running statistics are averaged (``sync_batch_norm_statistics``
in ``levit_tf.models.levit.batch_norm_sync``, called by the models' ``train_step``), so all
replicas and the saved model hold the same statistics: momentum * old + (1 - momentum) * mean
over replicas of the batch statistics.

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

and create the strategy before any other TensorFlow call. ``make_strategy("multiworker")``
also installs the Keras fixes that ``fit`` needs there with Keras <= 3.15.1
(``levit_tf.utils.keras_internals.fix_multi_worker_fit``; call it yourself if you create the
strategy directly). Every worker must build the same dataset with the same seed (Keras shards it by
data: worker i trains on its part of every global batch); only the chief writes the run's files
(``is_chief``), the others write to temporary ones (``levit_tf.training.finetune`` does both).
"""

from __future__ import annotations

import tensorflow as tf

from levit_tf.training.options import STRATEGIES
from levit_tf.utils.backends import require_tensorflow_backend
from levit_tf.utils.keras_internals import fix_multi_worker_fit

#: TensorFlow configures the collectives of a process once: one MultiWorkerMirroredStrategy.
_MULTI_WORKER: list[tf.distribute.MultiWorkerMirroredStrategy] = []


def make_strategy(kind: str = "default", devices: list[str] | None = None
                  ) -> tf.distribute.Strategy:
    """``"default"`` (one device), ``"mirrored"`` (all local GPUs, or ``devices``), or
    ``"multiworker"`` (``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``). TensorFlow backend
    only (``TensorFlowBackendRequired`` otherwise)."""
    require_tensorflow_backend("tf.distribute training")
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if kind == "multiworker":
        if devices is not None:
            raise ValueError("multiworker takes its devices from TF_CONFIG, not `devices`")
        fix_multi_worker_fit()
        if not _MULTI_WORKER:
            _MULTI_WORKER.append(tf.distribute.MultiWorkerMirroredStrategy())
        return _MULTI_WORKER[0]
    raise ValueError(f"unknown strategy {kind!r}; choose from {STRATEGIES}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files: always, except on the non-chief workers of
    a multi-worker cluster (the chief is task "chief", or worker 0 without one)."""
    return bool(strategy.extended.should_checkpoint)


__all__ = ["STRATEGIES", "is_chief", "make_strategy"]
