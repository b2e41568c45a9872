"""A user's fresh process on one Keras backend: ``import levit_tf`` and keras-hub's own
``from_preset`` calls on a preset directory, outputs saved for ``test_presets.py`` to compare.

``KERAS_BACKEND=jax python -m tests.keras_hub.preset_worker PRESET INPUTS_DIR OUT_DIR``: reads
``pixels.npy`` (model input) and ``images.npy`` (uint8 photos) from INPUTS_DIR, writes
``logits.npy`` (task.predict on pixels, no preprocessor), ``features.npy`` (backbone.predict),
``pipeline_logits.npy`` (task.predict on the photos through the preset's preprocessor) and
``result.json`` (classes, backend, device) to OUT_DIR.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(preset: str, inputs: str, out: str) -> int:
    start = time.perf_counter()
    import keras_hub
    import numpy as np

    import levit_tf  # noqa: F401  (registers the levit_tf> classes for keras-hub)
    from tests.backends.worker import device_info

    pixels = np.load(Path(inputs, "pixels.npy"))
    images = np.load(Path(inputs, "images.npy"))
    task = keras_hub.models.ImageClassifier.from_preset(preset)
    backbone = keras_hub.models.Backbone.from_preset(preset)
    preprocessor = keras_hub.models.ImageClassifierPreprocessor.from_preset(preset)
    converter = keras_hub.layers.ImageConverter.from_preset(preset)
    np.save(Path(out, "pipeline_logits.npy"), task.predict(images, verbose=0))
    task.preprocessor = None  # the pixels are model input already
    np.save(Path(out, "logits.npy"), task.predict(pixels, verbose=0))
    np.save(Path(out, "features.npy"), backbone.predict(pixels, verbose=0))
    result = {"device": device_info(),
              "classes": {"ImageClassifier": type(task).__name__,
                          "Backbone": type(backbone).__name__,
                          "ImageClassifierPreprocessor": type(preprocessor).__name__,
                          "ImageConverter": type(converter).__name__},
              "seconds": round(time.perf_counter() - start, 1)}
    Path(out, "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main(*sys.argv[1:]))
