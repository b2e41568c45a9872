"""AdamW exclusions (biases, BN parameters, attention biases) and the warmup-cosine schedule."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from levit_tf import LevitForImageClassificationWithTeacher
from levit_tf.training import adamw, warmup_cosine, weight_decay_split


def test_adamw_decays_kernels_only(tiny_config):
    model = LevitForImageClassificationWithTeacher(tiny_config())
    decayed, excluded = weight_decay_split(model)
    assert {w.name for w in decayed} == {"kernel"}
    assert {w.name for w in excluded} == {"bias", "gamma", "beta", "attention_biases"}
    assert len(decayed) + len(excluded) == len(model.trainable_weights)
    assert all(len(w.shape) >= 2 for w in decayed)

    # a step with zero gradients: Adam's update is 0, so only decoupled decay moves weights
    lr, wd = 0.1, 0.5
    optimizer = adamw(model, lr, wd)
    for weight in model.trainable_weights:  # nonzero everywhere, so decay would show
        weight.assign(np.full(weight.shape, 0.5, np.float32))
    before = [np.asarray(w) for w in model.trainable_weights]
    optimizer.apply_gradients([(np.zeros(w.shape, np.float32), w)
                               for w in model.trainable_weights])
    for weight, old in zip(model.trainable_weights, before, strict=True):
        factor = 1.0 if any(weight is w for w in excluded) else 1.0 - lr * wd
        np.testing.assert_allclose(np.asarray(weight), old * factor, rtol=1e-6,
                                   err_msg=weight.path)


def test_warmup_cosine_shape():
    schedule = warmup_cosine(1e-3, total_steps=100, warmup_steps=10, final_lr=1e-5)
    values = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    assert values[0] == pytest.approx(0.0, abs=1e-12)
    assert values[1] == pytest.approx(5e-4, rel=1e-5)
    assert values[2] == pytest.approx(1e-3, rel=1e-5)
    assert values[3] == pytest.approx(1e-5 + (1e-3 - 1e-5) / 2, rel=1e-4)
    assert values[4] == pytest.approx(1e-5, rel=1e-4)
    no_warmup = warmup_cosine(1e-3, total_steps=100)
    assert float(no_warmup(0)) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="must exceed warmup_steps"):
        warmup_cosine(1e-3, total_steps=10, warmup_steps=10)


def test_adamw_is_a_plain_keras_optimizer(tiny_config):
    model = LevitForImageClassificationWithTeacher(tiny_config())
    optimizer = adamw(model, warmup_cosine(1e-3, 50, 5), weight_decay=0.025)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.weight_decay == pytest.approx(0.025)
