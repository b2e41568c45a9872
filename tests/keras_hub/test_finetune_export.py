"""A converted preset fine-tuned through keras-hub's ``fit`` (its default compile, photos through
the preset's preprocessor), then ``export(format="litert")``: the .tflite file's logits equal
the Keras model's under the LiteRT interpreter (ai_edge_litert). keras-hub's own LiteRT test
skips on TensorFlow, hence this one."""

from __future__ import annotations

import numpy as np
import pytest

from tests.keras_hub.conftest import SKIP_REASON

pytest.importorskip("keras_hub", reason=SKIP_REASON)

LITERT_TOLERANCE = 1e-5  # relative, float32 kernels of two runtimes
CLASSES = 2


def bright_square_images(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 noise photos (size x size + a margin) with a bright square left (class 0) or
    right (class 1)."""
    rng = np.random.default_rng(seed)
    side = size + size // 4
    images = rng.integers(0, 120, (n, side, side, 3)).astype(np.uint8)
    labels = np.arange(n) % CLASSES
    for image, label in zip(images, labels, strict=True):
        left = side // 8 + label * side // 2
        image[side // 4: 3 * side // 4, left: left + side // 4] = 255
    return images, labels


def test_fit_then_litert_export(keras_hub_preset, tmp_path):
    import keras
    import keras_hub
    from ai_edge_litert.interpreter import Interpreter

    from levit_tf.keras_hub import LevitImageClassifier

    task = keras_hub.models.ImageClassifier.from_preset(str(keras_hub_preset["preset"]),
                                                        num_classes=CLASSES)
    assert isinstance(task, LevitImageClassifier) and task.distillation_head
    size = task.backbone.image_shape[0]
    images, labels = bright_square_images(32, size, seed=0)
    before = task.backbone.get_weights()
    task.compile(optimizer=keras.optimizers.Adam(1e-3))  # keras-hub's loss and metric
    history = task.fit(images, labels, epochs=4, batch_size=8, verbose=0).history
    assert history["loss"][-1] < history["loss"][0], history["loss"]
    assert history["sparse_categorical_accuracy"][-1] > 0.5, history
    moved = max(np.max(np.abs(a - b)) for a, b in zip(before, task.backbone.get_weights(),
                                                       strict=True))
    assert moved > 0  # the backbone trained too

    path = tmp_path / "levit.tflite"
    task.export(str(path), format="litert", verbose=False)
    pixels = np.asarray(keras.ops.convert_to_numpy(task.preprocessor(images[:4])))
    expected = np.asarray(task(pixels))  # a direct call skips the preprocessor
    interpreter = Interpreter(str(path))
    (signature,) = interpreter.get_signature_list().values()
    runner = interpreter.get_signature_runner()
    (input_name,), (output_name,) = signature["inputs"], signature["outputs"]
    lite = np.concatenate([runner(**{input_name: pixels[i:i + 1]})[output_name]
                           for i in range(len(pixels))])
    error = np.max(np.abs(lite - expected)) / np.max(np.abs(expected))
    print(f"\nfit losses {[round(v, 4) for v in history['loss']]}; LiteRT vs Keras: max abs "
          f"{np.max(np.abs(lite - expected)):.2e}, relative {error:.2e}")
    assert lite.shape == (4, CLASSES) and error <= LITERT_TOLERANCE
