"""docs/keras-hub.md's Python snippet, as-is, in a fresh process (given a preset directory named
as in the text, the shared converted preset, and a photo ``cat.jpg``): keras-hub's
``from_preset``, ``predict``, ``fit`` and ``export(format="litert")``. Checks appended to the same
process then compare the exported .tflite with the fine-tuned Keras model under the LiteRT
interpreter (ai_edge_litert; keras-hub's own LiteRT test skips on TensorFlow) and confirm that
``fit`` trained the backbone and the new head."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from tests.keras_hub.conftest import ROOT, SKIP_REASON

pytest.importorskip("keras_hub", reason=SKIP_REASON)

DOC = ROOT / "docs" / "keras-hub.md"
LITERT_TOLERANCE = 1e-5  # relative: the same float32 graph on two runtimes

CHECKS = '''
# ---- appended by tests/keras_hub/test_docs.py ----
import json
from ai_edge_litert.interpreter import Interpreter

batch = np.stack([image, image[:, ::-1]])
pixels = keras.ops.convert_to_numpy(task.preprocessor(batch))
expected = keras.ops.convert_to_numpy(task(pixels))  # a direct call skips the preprocessor
runner = Interpreter("levit.tflite").get_signature_runner()
(signature,) = Interpreter("levit.tflite").get_signature_list().values()
(name,), (output,) = signature["inputs"], signature["outputs"]
lite = np.concatenate([runner(**{name: pixels[i:i + 1]})[output] for i in range(2)])
fresh = keras_hub.models.ImageClassifier.from_preset("levit_128s_imagenet", num_classes=2)
print(json.dumps({
    "classes": [type(classifier).__name__, type(task).__name__],
    "input_shape": list(pixels.shape), "output_shape": list(lite.shape),
    "litert_max_abs": float(np.max(np.abs(lite - expected))),
    "litert_relative": float(np.max(np.abs(lite - expected)) / np.max(np.abs(expected))),
    "backbone_moved": max(float(np.max(np.abs(a - b))) for a, b in zip(
        task.backbone.get_weights(), fresh.backbone.get_weights())),
    "distillation_head": task.distillation_head}))
'''


def snippet() -> str:
    """The python block that follows its marker (the doc test leaves it to this test)."""
    text = DOC.read_text()
    marker = text.index("run as written by tests/keras_hub/test_docs.py")
    return re.search(r"```python\n(.*?)```", text[marker:], re.S).group(1)


def test_docs_snippet_runs_as_is_then_litert_equals_keras(keras_hub_preset, tmp_path):
    from skimage import data

    code = snippet()
    preset_name = re.search(r'from_preset\("([^"]+)"\)', code).group(1)
    shutil.copytree(keras_hub_preset["preset"], tmp_path / preset_name)
    Image.fromarray(data.chelsea()).save(tmp_path / "cat.jpg")
    done = subprocess.run([sys.executable, "-c", code + CHECKS], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "LevitImageClassifier [" in done.stdout  # the snippet's own print
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\nLiteRT vs Keras after fit: max abs {result['litert_max_abs']:.2e}, relative "
          f"{result['litert_relative']:.2e}")
    assert result["classes"] == ["LevitImageClassifier", "LevitImageClassifier"]
    assert result["distillation_head"] is True
    assert result["input_shape"] == [2, 96, 96, 3] and result["output_shape"] == [2, 2]
    assert result["litert_relative"] <= LITERT_TOLERANCE
    assert result["backbone_moved"] > 0  # fit trained the backbone, not only the new head
