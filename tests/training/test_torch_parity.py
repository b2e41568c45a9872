"""One SGD step with ``model.fit`` equals one PyTorch step on an HF LeViT (randomized weights).

Same batch, same loss, plain SGD (lr 0.1, no momentum); BN in training mode in both (batch
statistics, running statistics updated). Compared: the step's loss, the training-mode logits
afterwards (the updated weights) and the eval-mode logits afterwards (the updated running
statistics). Relative error = max |keras - torch| / max |torch|.

Conditioning: with every residual branch at full random gain, training-mode BN (which subtracts
the batch mean of near-constant attention outputs) amplifies float32 rounding ~500x through the
network, in PyTorch itself as much as here (float64 runs of both agree to 1e-12), and the
gradients reach norms of ~4000. So the residual branches' last BN gamma is scaled by 0.2
(LeViT's own init sets it to 0), which keeps every weight random but the network trainable.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from levit_tf.converters import load_pretrained
from levit_tf.testing.torch_reference import hf_model, nhwc, relative_error
from tests.support.torch_training import tame_residual_branches, torch_step

LR = 0.1
LOSS_TOLERANCE = 1e-4
LOGIT_TOLERANCE = 1e-3
NUM_LABELS = 10


@pytest.fixture(scope="module")
def batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixels NCHW (4, 3, 224, 224), labels (4,), teacher labels (4,))."""
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((4, 3, 224, 224)).astype(np.float32)
    return pixels, np.array([3, 1, 4, 1]), np.array([5, 9, 2, 6])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "hard"])  # classic: test_distillation.py
def test_one_sgd_step_matches_pytorch(mode, batch, tmp_path):
    pixels, labels, teacher_labels = batch
    reference = tame_residual_branches(
        hf_model("levit-128S", teacher=mode != "plain", num_labels=NUM_LABELS, seed=3))
    reference.save_pretrained(tmp_path)
    model = load_pretrained(tmp_path)
    assert model.config.drop_path_rate == 0

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    kwargs = {} if mode == "plain" else {"distillation": "none" if mode == "classic" else "hard"}
    model.compile(optimizer=keras.optimizers.SGD(LR), loss=loss_fn, **kwargs)
    targets = labels if mode != "hard" else {"labels": labels, "teacher_labels": teacher_labels}
    data = tf.data.Dataset.from_tensors((nhwc(pixels), targets))
    history = model.fit(data, epochs=1, verbose=0)

    step = torch_step(reference, pixels, labels, teacher_labels, mode, LR)
    loss, train_logits, eval_logits = step.loss, step.train_logits, step.eval_logits
    eval_after = model(nhwc(pixels), training=False)["logits"]
    train_after = model(nhwc(pixels), training=True)["logits"]

    loss_error = abs(history.history["loss"][0] - loss) / abs(loss)
    train_error = relative_error(np.asarray(train_after), train_logits)
    eval_error = relative_error(np.asarray(eval_after), eval_logits)
    print(f"{mode}: loss {loss:.4f} rel {loss_error:.1e}, train logits {train_error:.1e}, "
          f"eval logits {eval_error:.1e}")
    assert loss_error <= LOSS_TOLERANCE
    assert train_error <= LOGIT_TOLERANCE
    assert eval_error <= LOGIT_TOLERANCE
    # the step moved the weights well beyond the tolerance (the check can fail)
    before = load_pretrained(tmp_path)(nhwc(pixels), training=False)["logits"]
    assert relative_error(np.asarray(before), eval_logits) > 100 * LOGIT_TOLERANCE
