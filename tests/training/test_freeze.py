"""Backbone freeze / unfreeze: frozen weights and BN statistics do not move in fit."""

from __future__ import annotations

import keras
import numpy as np

from levit_tf import LevitForImageClassification

SCCE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def snapshot(layer: keras.layers.Layer) -> list[np.ndarray]:
    return [np.array(w) for w in layer.weights]


def changed(before: list[np.ndarray], layer: keras.layers.Layer) -> list[bool]:
    return [not np.array_equal(a, np.asarray(w)) for a, w in zip(before, layer.weights,
                                                                 strict=True)]


def test_freeze_then_unfreeze(tiny_config, task):
    pixels, labels = task
    model = LevitForImageClassification(tiny_config(drop_path_rate=0.5))
    model.freeze_backbone()
    assert model.backbone_frozen
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=SCCE)
    assert len(model.trainable_weights) == 4  # head: BN gamma/beta, Dense kernel/bias

    backbone, head = snapshot(model.levit), snapshot(model.classifier)
    model.fit(pixels, labels, batch_size=32, epochs=1, verbose=0)
    assert not any(changed(backbone, model.levit))  # weights, BN statistics, drop-path seeds
    assert all(changed(head, model.classifier))  # gamma, beta, stats, kernel, bias all move
    # a frozen backbone runs in inference mode (no batch statistics, no stochastic depth)
    train_out = model.backbone(pixels[:8], training=True)[2]
    eval_out = model.backbone(pixels[:8], training=False)[2]
    np.testing.assert_array_equal(np.asarray(train_out), np.asarray(eval_out))

    model.unfreeze_backbone()
    assert not model.backbone_frozen
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=SCCE)  # Keras: recompile
    backbone = snapshot(model.levit)
    model.fit(pixels, labels, batch_size=32, epochs=1, verbose=0)
    assert all(changed(backbone, model.levit))  # every weight, statistic and seed state
