"""Fixtures shared by the TFLite tests: a small LeViT trained on the real digits."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.testing.models import SMALL


def digits_images(image_size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's real handwritten digits as normalized RGB (N, S, S, 3), labels (N,)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    gray = (digits.images / 16.0).astype(np.float32)[..., None]
    rgb = tf.image.resize(np.repeat(gray, 3, axis=-1), (image_size, image_size)).numpy()
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    return ((rgb - mean) / std).astype(np.float32), digits.target


@pytest.fixture(scope="session")
def trained_model():
    """A small LeViT trained for 16 epochs on the digits at 64 px (real data, 96-98% held out).

    Seeded: unseeded, the initialisation (and so the int8 fidelity) varied from run to run, and
    8 epochs left some runs at 86-89% with near-tied logits that int8 flipped. Over seeds 0-5
    this recipe gave 96.2-97.7% accuracy, int8 top-1 agreement >= 99.0%, cosine >= 0.9977."""
    keras.utils.set_random_seed(0)
    images, labels = digits_images(64)
    order = np.random.default_rng(0).permutation(len(labels))
    images, labels = images[order], labels[order]
    config = LevitConfig(**{**SMALL, "num_labels": 10, "image_size": 64})
    model = LevitForImageClassificationWithTeacher(config)
    epochs, batches = 16, 28
    optimizer = tf.keras.optimizers.Adam(
        tf.keras.optimizers.schedules.CosineDecay(3e-3, epochs * batches))
    dataset = tf.data.Dataset.from_tensor_slices((images[:1400], labels[:1400]))
    dataset = dataset.shuffle(1400, seed=0).batch(50).repeat(epochs)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = sum(tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
                y, out[key], from_logits=True)) for key in ("cls_logits", "distillation_logits"))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    for x, y in dataset:
        step(x, y)
    held_out = images[1400:]
    accuracy = np.mean(np.argmax(model.predict(held_out, verbose=0)["logits"], 1)
                       == labels[1400:])
    assert accuracy > 0.94, f"digits model only reached {accuracy:.2%}"
    return model, images[:300], held_out
