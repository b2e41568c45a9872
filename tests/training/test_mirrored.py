"""MirroredStrategy on 2 logical CPUs: one fit step equals the per-replica math by hand.

Runs in a subprocess (logical devices must be configured before TensorFlow initializes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    keras.utils.set_random_seed(0)
    from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
    from levit_tf.models.levit.batch_norm_sync import batch_norm_layers

    config = LevitConfig(hidden_sizes=[16, 24], num_attention_heads=[2, 3], depths=[1, 1],
                         key_dim=[8, 8], mlp_ratio=[2, 2], attention_ratio=[2, 2], image_size=32,
                         num_labels=4)
    rng = np.random.default_rng(0)
    pixels = rng.normal(size=(8, 32, 32, 3)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 3, 2, 1, 0])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    lr = 0.05

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        model = LevitForImageClassificationWithTeacher(config)
        model.compile(optimizer=keras.optimizers.SGD(lr), loss=loss_fn, metrics=["accuracy"])
    reference = LevitForImageClassificationWithTeacher(config)
    reference.set_weights(model.get_weights())

    data = tf.data.Dataset.from_tensor_slices((pixels, labels)).batch(8)  # global batch 8
    logs = model.fit(data, epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][0])

    # by hand: each replica normalizes its 4 images with their own batch statistics; the
    # gradient is the mean of the replicas' gradients (classic two-head loss)
    def half_loss(part):
        out = reference(pixels[part], training=True)
        return (loss_fn(labels[part], out["cls_logits"])
                + loss_fn(labels[part], out["distillation_logits"])) / 2

    weights = reference.trainable_weights
    stats = batch_norm_layers(reference)
    start = [(np.array(bn.moving_mean), np.array(bn.moving_variance)) for bn in stats]
    grads, moved = [], []
    for part in (slice(0, 4), slice(4, 8)):
        for bn, (mean, var) in zip(stats, start):
            bn.moving_mean.assign(mean)
            bn.moving_variance.assign(var)
        with tf.GradientTape() as tape:
            loss = half_loss(part)
        grads.append(tape.gradient(loss, weights))
        moved.append([(np.array(bn.moving_mean), np.array(bn.moving_variance)) for bn in stats])
    steps = [lr * (np.asarray(a) + np.asarray(b)) / 2 for a, b in zip(*grads)]
    expected = [np.asarray(w) - step for w, step in zip(weights, steps)]

    # float32 gradients of the first layers pass through ~20 training-mode BNs, whose backward
    # cancels sums: reduction order (replicas run concurrently) moves them by ~1e-4 relative.
    # A wrong replica semantics (global BN statistics, summed instead of averaged gradients)
    # moves them by O(1) of the step, so the check is relative to each weight's step size.
    # Some weights' exact gradient is zero (the shift of a BN whose output feeds a
    # training-mode BN, which subtracts it again): both sides then step by float32 noise,
    # 1e-8 to 5e-8 of the largest step in four runs (one CI run: 1.04e-7 absolute). Those are
    # held to 1e-6 of the largest step.
    largest = max(float(np.max(np.abs(step))) for step in steps)
    worst = 0.0
    for w, e, step in zip(model.trainable_weights, expected, steps):
        error = float(np.max(np.abs(np.asarray(w) - e)))
        scale = float(np.max(np.abs(step)))
        assert error <= 1e-3 * scale + 1e-6 * largest, (w.path, error, scale, largest)
        worst = max(worst, error)
    # BN running statistics: the mean of both replicas' updates, identical on both replicas
    mirrored = batch_norm_layers(model)
    for bn, first, second in zip(mirrored, *moved):
        for variable, a, b in zip((bn.moving_mean, bn.moving_variance), first, second):
            values = variable.value.values  # one tensor per replica
            for value in values:
                np.testing.assert_allclose(np.asarray(value), (a + b) / 2, rtol=1e-5, atol=1e-6)
    result = model.evaluate(data, verbose=0, return_dict=True)
    assert np.isfinite(result["loss"])
    print("MIRRORED_OK", worst)
''')


@pytest.mark.slow
def test_mirrored_strategy_step_matches_per_replica_math():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MIRRORED_OK" in done.stdout
