"""Keras private APIs are used in one module only (levit_tf/keras_internals.py), and still work."""

from __future__ import annotations

import ast

import keras
import numpy as np

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.keras_internals import compiled_loss, sublayers
from levit_tf.layers import TorchBatchNorm
from tests.package.test_import_graph import package_modules
from tests.support.models import TINY

#: Private attributes of keras.Layer / keras.Model (the ones this package has needed).
KERAS_PRIVATE = {"_flatten_layers", "_compile_loss", "_aggregate_additional_loss", "_layers",
                 "_tracker", "_compute_loss", "_loss_tracker", "_metrics"}


def test_keras_private_attributes_only_in_keras_internals():
    users = {}
    for name, path in package_modules().items():
        tree = ast.parse(path.read_text())
        names = {node.attr if isinstance(node, ast.Attribute) else node.value
                 for node in ast.walk(tree) if isinstance(node, (ast.Attribute, ast.Constant))}
        found = {name for name in names if isinstance(name, str)} & KERAS_PRIVATE  # getattr too
        if found:
            users[name] = sorted(found)
    assert users == {"levit_tf.keras_internals": ["_compile_loss", "_flatten_layers"]}


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
