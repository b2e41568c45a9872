"""Keras private APIs are used in one module only (levit_tf/utils/keras_internals.py), and still
work."""

from __future__ import annotations

import ast

import keras
import numpy as np

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.models.levit.layers import TorchBatchNorm
from levit_tf.testing.models import TINY
from levit_tf.utils.keras_internals import compiled_loss, sublayers
from tests.package.test_import_graph import package_modules

#: Private attributes of keras.Layer / keras.Model (the ones this package has needed).
KERAS_PRIVATE = {"_flatten_layers", "_compile_loss", "_aggregate_additional_loss", "_layers",
                 "_tracker", "_compute_loss", "_loss_tracker", "_metrics",
                 "_maybe_symbolic_build", "_symbolic_build", "_distribute_strategy",
                 "_collective_all_reduce_multi_worker"}


def test_keras_private_attributes_only_in_keras_internals():
    users = {}
    for name, path in package_modules().items():
        tree = ast.parse(path.read_text())
        names = {node.attr if isinstance(node, ast.Attribute) else node.value
                 for node in ast.walk(tree) if isinstance(node, (ast.Attribute, ast.Constant))}
        found = {name for name in names if isinstance(name, str)} & KERAS_PRIVATE  # getattr too
        if found:
            users[name] = sorted(found)
    assert users == {"levit_tf.utils.keras_internals": [
        "_collective_all_reduce_multi_worker", "_compile_loss", "_distribute_strategy",
        "_flatten_layers", "_maybe_symbolic_build", "_symbolic_build"]}


def test_sublayers_and_compiled_loss_work_on_this_keras():
    model = LevitForImageClassificationWithTeacher(LevitConfig(**TINY))
    norms = [layer for layer in sublayers(model) if isinstance(layer, TorchBatchNorm)]
    assert len(norms) == sum(1 for w in model.weights if w.path.endswith("moving_mean"))
    assert model not in sublayers(model)
    assert compiled_loss(model) is None
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    logits = np.array([[2.0, 0.0, 0.0, 0.0]], np.float32)
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(np.array([0]), logits)
    np.testing.assert_allclose(float(compiled_loss(model)(np.array([0]), logits, None)),
                               float(expected), rtol=1e-6)


def test_multi_worker_fix_installs_once_and_leaves_other_strategies_to_keras():
    from keras.src.backend.tensorflow import trainer

    from levit_tf.utils.keras_internals import (
        fix_multi_worker_fit,
        keras_as_released,
        multi_worker_fix_applies,
    )

    released = getattr(trainer.reduce_per_replica, "__wrapped__", trainer.reduce_per_replica)
    assert multi_worker_fix_applies()  # the pinned Keras 3.15.1 needs it (test_multiworker)
    assert fix_multi_worker_fit() and fix_multi_worker_fit()  # idempotent
    fixed = trainer.reduce_per_replica
    assert fixed.__wrapped__ is released  # wrapped once
    with keras_as_released():
        assert trainer.reduce_per_replica is released
    assert trainer.reduce_per_replica is fixed
    # without a multi-worker strategy the wrappers hand over to Keras: a plain fit is unchanged
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(np.ones((8, 3), np.float32), np.zeros((8, 2), np.float32),
                        batch_size=4, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
