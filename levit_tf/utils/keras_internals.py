"""The Keras private APIs this package uses, in one place (checked against Keras 3.15.1).

Keras has no public equivalent for these; everything else goes through public API
(regularization losses, for instance, come from the public ``Model.losses``).

- ``sublayers(layer)``: every layer nested in ``layer``, recursively. The public
  ``Model.layers`` lists direct children only; Keras walks the tree with
  ``Layer._flatten_layers``.
- ``compiled_loss(model)``: the loss object ``compile()`` built (``Trainer._compile_loss``: the
  compiled loss with its loss weights, output structure and reduction), or None before
  ``compile``. The public ``Model.compute_loss`` also adds the regularization losses, which a
  two-head objective must add once, not once per head.
- ``fix_multi_worker_fit()``: makes ``Model.fit`` work under ``MultiWorkerMirroredStrategy``
  with the TensorFlow backend of Keras <= ``MULTI_WORKER_FIX_CHECKED``, which fails there twice
  (keras-team/keras#20585; both bugs are still in Keras's main branch at 3422977, 2026-08):

  1. ``TensorFlowTrainer._maybe_symbolic_build`` builds the model from the first batch, which
     it first "reduces" with ``strategy.reduce("MEAN", batch, axis=None)``; under
     MultiWorkerMirroredStrategy that raises ``ValueError: Attempt to convert a value
     (PerReplica:{...}) ... to a Tensor``. The fix builds from this worker's first local
     replica's batch instead (the build only needs shapes and dtypes).
  2. ``trainer.reduce_per_replica`` averages the step's logs with ``strategy.reduce("MEAN", v,
     axis=0)`` in multi-worker mode: axis 0 of a scalar metric is ``Invalid reduction dimension
     0 for input with 0 dimensions``. The fix uses ``axis=None``: the mean over replicas, as the
     single-machine path (``tf.reduce_mean`` over the replicas' local results) computes.

  Both wrappers hand every other strategy to Keras unchanged.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import keras

#: The newest Keras checked to need (and to be fixed by) ``fix_multi_worker_fit``;
#: tests/training/test_multiworker.py fails once a Keras release no longer needs it.
MULTI_WORKER_FIX_CHECKED = (3, 15, 1)
MULTI_WORKER_FIXES = ("symbolic_build", "reduce_per_replica")


def sublayers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """Every layer inside ``layer`` (not ``layer`` itself), depth first."""
    return list(layer._flatten_layers(include_self=False, recursive=True))


def compiled_loss(model: keras.Model) -> Any | None:
    """``model``'s compiled loss, callable as ``loss(y_true, y_pred, sample_weight)``."""
    return getattr(model, "_compile_loss", None)


def keras_version() -> tuple[int, ...]:
    return tuple(int(part) for part in keras.version().split(".")[:3] if part.isdigit())


def multi_worker_fix_applies() -> bool:
    """Whether this Keras gets ``fix_multi_worker_fit`` (TensorFlow backend, version <= the
    checked one; a newer Keras is left alone until the test says it still needs the fix)."""
    return keras.backend.backend() == "tensorflow" and (
        keras_version() <= MULTI_WORKER_FIX_CHECKED)


def _in_multi_worker_mode(strategy: Any) -> bool:
    from keras.src.backend.tensorflow import trainer

    return strategy is not None and trainer._collective_all_reduce_multi_worker(strategy)


def _local_batch_symbolic_build(original: Any) -> Any:
    @functools.wraps(original)
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is None or not _in_multi_worker_mode(strategy):
            return original(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:  # as Keras: the first batch of the first epoch
            batch = next(batches)
            data_batch = keras.tree.map_structure(
                lambda x: strategy.experimental_local_results(x)[0], batch)
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    return _maybe_symbolic_build


def _mean_over_replicas(original: Any) -> Any:
    @functools.wraps(original)
    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and _in_multi_worker_mode(strategy):
            return keras.tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    return reduce_per_replica


def _fix_targets() -> dict[str, tuple[Any, str, Any]]:
    from keras.src.backend.tensorflow import trainer

    return {"symbolic_build": (trainer.TensorFlowTrainer, "_maybe_symbolic_build",
                               _local_batch_symbolic_build),
            "reduce_per_replica": (trainer, "reduce_per_replica", _mean_over_replicas)}


_ORIGINALS: dict[str, Any] = {}


def fix_multi_worker_fit() -> bool:
    """Installs the two multi-worker fixes above (once; idempotent) when
    ``multi_worker_fix_applies()``; returns whether they are installed. Called by
    ``levit_tf.training.distribute.make_strategy("multiworker")``."""
    if not multi_worker_fix_applies():
        return False
    for name, (owner, attribute, wrap) in _fix_targets().items():
        if name not in _ORIGINALS:
            _ORIGINALS[name] = getattr(owner, attribute)
            setattr(owner, attribute, wrap(_ORIGINALS[name]))
    return True


@contextlib.contextmanager
def keras_as_released(*names: str) -> Iterator[None]:
    """Inside the block, the named fixes (default: all) are undone: Keras as released. For the
    test that checks the fixes are still needed."""
    targets = _fix_targets()
    undone = {name: getattr(targets[name][0], targets[name][1])
              for name in names or MULTI_WORKER_FIXES if name in _ORIGINALS}
    for name in undone:
        setattr(targets[name][0], targets[name][1], _ORIGINALS[name])
    try:
        yield
    finally:
        for name, fixed in undone.items():
            setattr(targets[name][0], targets[name][1], fixed)


__all__ = ["MULTI_WORKER_FIXES", "MULTI_WORKER_FIX_CHECKED", "compiled_loss",
           "fix_multi_worker_fit", "keras_as_released", "multi_worker_fix_applies",
           "sublayers"]
