"""LevitForImageClassificationWithTeacher: classic and hard-distillation objectives."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from levit_tf import LevitForImageClassification, LevitForImageClassificationWithTeacher
from levit_tf.training import Distillation

SCCE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
RNG = np.random.default_rng(0)
CLS = RNG.normal(size=(6, 4)).astype(np.float32)
DIST = RNG.normal(size=(6, 4)).astype(np.float32)
LABELS = np.array([0, 1, 2, 3, 0, 1])
TEACHER_LABELS = np.array([3, 3, 1, 0, 2, 2])
OUTPUTS = {"logits": (CLS + DIST) / 2, "cls_logits": CLS, "distillation_logits": DIST}


class FixedTeacher(keras.Model):
    """A teacher whose logits are one-hot on TEACHER_LABELS, whatever the pixels."""

    def call(self, pixels, training=None):
        return tf.one_hot(TEACHER_LABELS[: pixels.shape[0]], 4) * 10.0


def compiled(tiny_config, **kwargs) -> LevitForImageClassificationWithTeacher:
    model = LevitForImageClassificationWithTeacher(tiny_config())
    model.compile(optimizer="sgd", loss=SCCE, **kwargs)
    return model


def loss_of(model, targets, training=True) -> float:
    pixels = np.zeros((6, 32, 32, 3), np.float32)
    return float(model.compute_loss(pixels, targets, OUTPUTS, training=training))


def test_classic_loss_is_the_mean_of_both_heads(tiny_config):
    model = compiled(tiny_config)
    expected = (float(SCCE(LABELS, CLS)) + float(SCCE(LABELS, DIST))) / 2
    assert loss_of(model, LABELS) == pytest.approx(expected, rel=1e-6)
    # evaluation scores what inference returns: the heads' mean
    assert loss_of(model, LABELS, training=False) == pytest.approx(
        float(SCCE(LABELS, (CLS + DIST) / 2)), rel=1e-6)


@pytest.mark.parametrize("source", ["teacher_model", "teacher_labels"])
def test_hard_distillation_loss(tiny_config, source):
    expected = float(SCCE(LABELS, CLS)) / 2 + float(SCCE(TEACHER_LABELS, DIST)) / 2
    if source == "teacher_model":
        model = compiled(tiny_config, distillation="hard", teacher=FixedTeacher())
        targets = LABELS
    else:
        model = compiled(tiny_config, distillation="hard")
        targets = {"labels": LABELS, "teacher_labels": TEACHER_LABELS}
    assert loss_of(model, targets) == pytest.approx(expected, rel=1e-6)
    assert expected != pytest.approx(loss_of(compiled(tiny_config), LABELS), rel=1e-3)


def test_hard_distillation_errors(tiny_config):
    model = compiled(tiny_config, distillation="hard")
    with pytest.raises(ValueError, match="hard distillation needs teacher labels"):
        loss_of(model, LABELS)
    with pytest.raises(ValueError, match="distillation must be one of"):
        compiled(tiny_config, distillation="soft")
    with pytest.raises(ValueError, match="only used with distillation='hard'"):
        compiled(tiny_config, teacher=FixedTeacher())
    with pytest.raises(TypeError):  # the one-head model has no distillation head
        LevitForImageClassification(tiny_config()).compile(loss=SCCE, distillation="hard")


@pytest.mark.slow
def test_hard_distillation_trains_each_head_on_its_targets(tiny_config, task):
    """Class head on y, distillation head on the teacher's labels (here another rule, y + 1)."""
    keras.utils.set_random_seed(0)
    pixels, labels = task
    teacher_labels = (labels + 1) % 4
    model = LevitForImageClassificationWithTeacher(tiny_config())
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=SCCE, distillation="hard")
    data = tf.data.Dataset.from_tensor_slices(
        (pixels, {"labels": labels, "teacher_labels": teacher_labels})).batch(16)
    model.fit(data, epochs=6, verbose=0)
    out = model(pixels, training=False)
    assert np.mean(np.argmax(out["cls_logits"], -1) == labels) >= 0.6  # chance: 0.25
    assert np.mean(np.argmax(out["distillation_logits"], -1) == teacher_labels) >= 0.6


@pytest.mark.slow
def test_teacher_model_runs_frozen_and_untracked(tiny_config, task):
    pixels, labels = task
    teacher = LevitForImageClassification(tiny_config())
    before = [np.array(w) for w in teacher.weights]
    model = LevitForImageClassificationWithTeacher(tiny_config())
    count = len(model.weights)
    model.compile(optimizer="adam", loss=SCCE, distillation="hard", teacher=teacher)
    assert len(model.weights) == count  # the teacher's weights are not the student's
    assert isinstance(model.distillation, Distillation)
    history = model.fit(pixels[:64], labels[:64], batch_size=32, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    for weight, old in zip(teacher.weights, before, strict=True):
        np.testing.assert_array_equal(np.asarray(weight), old)  # BN statistics included
