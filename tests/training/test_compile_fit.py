"""compile / fit / evaluate / predict with plain Keras losses, optimizers and metrics."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from levit_tf import LevitForImageClassification, LevitForImageClassificationWithTeacher
from levit_tf.models.levit.losses import SparseCrossEntropy

SCCE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.mark.parametrize("cls", [LevitForImageClassification,
                                 LevitForImageClassificationWithTeacher])
@pytest.mark.slow
def test_fit_learns_with_plain_loss_and_metrics(cls, tiny_config, task):
    keras.utils.set_random_seed(0)
    pixels, labels = task
    model = cls(tiny_config())
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=SCCE, metrics=["accuracy"])
    history = model.fit(pixels, labels, batch_size=16, epochs=4, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    result = model.evaluate(pixels, labels, batch_size=32, verbose=0, return_dict=True)
    assert set(result) == {"loss", "accuracy"}
    assert result["accuracy"] >= 0.6  # chance is 0.25
    predicted = model.predict(pixels, batch_size=32, verbose=0)
    assert predicted["logits"].shape == (len(pixels), 4)
    assert predicted["logits"].dtype == np.float32
    accuracy = np.mean(np.argmax(predicted["logits"], -1) == labels)
    assert accuracy == pytest.approx(result["accuracy"], abs=1e-6)
    # evaluate's loss is the compiled loss on the (eval-mode) logits
    expected = float(SCCE(labels, predicted["logits"]))
    assert result["loss"] == pytest.approx(expected, rel=1e-4)


def test_dict_targets_and_dict_loss(tiny_config, task):
    pixels, labels = task
    model = LevitForImageClassification(tiny_config())
    model.compile(optimizer="sgd", loss=SCCE, metrics=["accuracy"])
    ds = tf.data.Dataset.from_tensor_slices((pixels, {"labels": labels})).batch(32)
    assert np.isfinite(model.fit(ds, epochs=1, verbose=0).history["loss"][0])
    # a dict keyed by output name gets the whole output dict, as in plain Keras
    model.compile(optimizer="sgd", loss={"logits": SCCE})
    assert np.isfinite(model.fit(pixels, labels, batch_size=32, verbose=0).history["loss"][0])


def test_bad_targets_name_the_problem(tiny_config, task):
    pixels, labels = task
    model = LevitForImageClassification(tiny_config())
    model.compile(optimizer="sgd", loss=SCCE)
    ds = tf.data.Dataset.from_tensor_slices((pixels, {"label": labels})).batch(32)
    with pytest.raises(ValueError, match="must have the key 'labels'"):
        model.fit(ds, epochs=1, verbose=0)


def test_label_smoothing_loss_matches_keras_categorical():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 6)
    ours = SparseCrossEntropy(0.1)(labels, logits)
    # timm's smoothing spreads e uniformly over all K classes: Keras' one-hot smoothing is the
    # same distribution ((1 - e) on the label + e / K everywhere)
    keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    assert float(ours) == pytest.approx(float(keras_loss(np.eye(5)[labels], logits)), rel=1e-5)
    assert float(SparseCrossEntropy()(labels, logits)) == pytest.approx(
        float(SCCE(labels, logits)), rel=1e-5)


@pytest.mark.slow
def test_compiled_model_round_trips_through_keras_file(tiny_config, task, tmp_path):
    pixels, labels = task
    model = LevitForImageClassificationWithTeacher(tiny_config())
    model.compile(optimizer="adam", loss=SparseCrossEntropy(0.1), metrics=["accuracy"],
                  distillation="hard")
    data = tf.data.Dataset.from_tensor_slices(
        (pixels, {"labels": labels, "teacher_labels": labels})).batch(32)
    model.fit(data, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.distillation.mode == "hard"
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 4
    np.testing.assert_allclose(loaded(pixels[:8])["logits"], model(pixels[:8])["logits"],
                               atol=1e-5)
