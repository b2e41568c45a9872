"""mixed_bfloat16: a training step runs with float32 variables, logits and loss."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from levit_tf import LevitForImageClassificationWithTeacher
from levit_tf.training.precision import with_dtype_policy


@pytest.mark.slow  # ~70 s of bfloat16 graph tracing on CPU
def test_mixed_bfloat16_training_step(tiny_config, task):
    pixels, labels = task
    float_model = LevitForImageClassificationWithTeacher(tiny_config())
    model = with_dtype_policy(float_model, "mixed_bfloat16")
    assert model.compute_dtype == "bfloat16"
    assert {w.dtype for w in model.weights} <= {"float32", "int64", "uint32", "int32"}
    raw = model(pixels[:8])
    assert raw["logits"].dtype == "bfloat16"  # compute runs in bfloat16
    # same weights: bfloat16 logits are close to float32 ones
    np.testing.assert_allclose(np.asarray(raw["logits"], np.float32),
                               np.asarray(float_model(pixels[:8])["logits"]), atol=0.1)

    model.compile(optimizer="adam", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = model.compute_loss(pixels[:8], labels[:8], model(pixels[:8], training=True))
    assert loss.dtype == "float32"
    history = model.fit(pixels, labels, batch_size=32, epochs=2, verbose=0).history
    assert all(np.isfinite(history["loss"])) and history["loss"][1] < history["loss"][0]
    predicted = model.predict(pixels[:8], verbose=0)
    assert predicted["logits"].dtype == np.float32
    assert predicted["cls_logits"].dtype == np.float32
