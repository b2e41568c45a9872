"""Backbone freeze / unfreeze: frozen weights and BN statistics do not move in fit."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from levit_tf import LevitForImageClassification

SCCE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def snapshot(layer: keras.layers.Layer) -> list[np.ndarray]:
    return [np.array(w) for w in layer.weights]


def structurally_flat(model: keras.Model, pixels: np.ndarray, labels: np.ndarray) -> set[str]:
    """Paths of the trainable weights whose gradient on one batch is 0 up to float noise
    (<= 1e-6 of the largest gradient): shifts that a following softmax or BN removes."""
    with tf.GradientTape() as tape:
        loss = SCCE(labels, model(pixels, training=True)["logits"])
    grads = tape.gradient(loss, model.trainable_weights)
    largest = max(float(np.max(np.abs(g))) for g in grads)
    return {w.path for w, g in zip(model.trainable_weights, grads, strict=True)
            if float(np.max(np.abs(g))) <= 1e-6 * largest}


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
    flat = structurally_flat(model, pixels[:32], labels[:32])
    backbone = snapshot(model.levit)
    model.fit(pixels, labels, batch_size=32, epochs=1, verbose=0)
    moved = dict(zip((w.path for w in model.levit.weights), changed(backbone, model.levit),
                     strict=True))
    # every weight, statistic and seed state moves, except weights whose exact gradient is 0
    # (Adam leaves those put where the kernels compute an exact 0, e.g. oneDNN's; elsewhere
    # float noise of ~1e-9 moves them by a full Adam step, so they are not asserted either way)
    assert not [path for path, ok in moved.items() if not ok and path not in flat]
    assert len(flat) <= 4, flat  # a few BN shifts that the next op removes, no more
