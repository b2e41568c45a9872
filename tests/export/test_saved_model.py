"""SavedModel serving (plain TF, fresh process, no levit_tf) and the predict CLI."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.export.saved_model import export_saved_model
from levit_tf.testing.models import SMALL, randomize


@pytest.fixture(scope="module")
def model():
    return randomize(LevitForImageClassificationWithTeacher(LevitConfig(**SMALL)), seed=21)


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory):
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name, fmt in (("astronaut", "JPEG"), ("chelsea", "PNG"), ("coffee", "JPEG")):
        path = folder / f"{name}.{fmt.lower()}"
        Image.fromarray(getattr(data, name)()).save(path, format=fmt)
        paths.append(path)
    return paths


def keras_probabilities(model, paths) -> np.ndarray:
    from levit_tf.preprocessing import LevitImageProcessor

    processor = LevitImageProcessor(size={"shortest_edge": 96},
                                    crop_size={"height": 96, "width": 96})
    pixels = processor([np.asarray(Image.open(p).convert("RGB")) for p in paths])["pixel_values"]
    logits = np.asarray(model(pixels)["logits"], np.float64)
    exp = np.exp(logits - logits.max(1, keepdims=True))
    return exp / exp.sum(1, keepdims=True), pixels


@pytest.mark.slow  # subprocesses
def test_saved_model_in_a_fresh_process_without_levit_tf(model, photo_files, tmp_path):
    directory = export_saved_model(model, tmp_path / "serving" / "1", top_k=3)
    expected, pixels = keras_probabilities(model, photo_files)
    np.save(tmp_path / "pixels.npy", pixels)
    script = textwrap.dedent(f"""
        import json, sys
        class BlockLevit:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "levit_tf":
                    raise ImportError("levit_tf is not installed here")
        sys.meta_path.insert(0, BlockLevit())
        import numpy as np, tensorflow as tf
        loaded = tf.saved_model.load({str(directory)!r})
        images = [open(p, "rb").read() for p in {[str(p) for p in photo_files]!r}]
        out = loaded.signatures["serve_images"](images=tf.constant(images))
        dense = loaded.signatures["serving_default"](
            pixel_values=tf.constant(np.load({str(tmp_path / "pixels.npy")!r})))
        print(json.dumps({{
            "probabilities": out["probabilities"].numpy().tolist(),
            "labels": [[l.decode() for l in row] for row in out["top_k_labels"].numpy()],
            "dense": dense["probabilities"].numpy().tolist(),
            "levit_tf_loaded": "levit_tf" in sys.modules}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert not out["levit_tf_loaded"]
    served = np.array(out["probabilities"])
    # the in-graph preprocessing is the exact eval transform: same pixels, same probabilities
    np.testing.assert_allclose(served, expected, atol=1e-5)
    np.testing.assert_allclose(np.array(out["dense"]), expected, atol=1e-5)
    assert np.array_equal(served.argmax(1), expected.argmax(1))
    top1 = [model.config.id2label[int(i)] for i in expected.argmax(1)]
    assert [row[0] for row in out["labels"]] == top1


@pytest.mark.slow  # subprocesses
def test_saved_model_cli_lists_both_signatures(model, tmp_path):
    directory = export_saved_model(model, tmp_path / "sm")
    cli = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show",
                          "--dir", str(directory), "--all"], capture_output=True, text=True,
                         timeout=300)
    assert "signature_def['serving_default']" in cli.stdout
    assert "signature_def['serve_images']" in cli.stdout
    with pytest.raises(FileExistsError, match="not empty"):
        export_saved_model(model, directory)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "levit_tf.cli", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow  # subprocesses
def test_predict_cli_on_keras_and_tflite(model, photo_files, tmp_path):
    from levit_tf.tflite import export

    model.save(tmp_path / "m.keras")
    export(model, tmp_path / "m.tflite")
    expected, _ = keras_probabilities(model, photo_files)
    label = model.config.id2label[int(expected[0].argmax())]
    for path in ("m.keras", "m.tflite"):
        result = run_cli("predict", str(tmp_path / path), *map(str, photo_files), "--top-k", "2")
        assert result.returncode == 0, result.stderr[-2000:]
        lines = result.stdout.splitlines()
        assert lines[0] == str(photo_files[0]) and lines[1].startswith(f"  1. {label}")
        assert f"{expected[0].max():.4f}" in lines[1]

    (tmp_path / "notes.txt").write_text("not an image")
    bad = run_cli("predict", str(tmp_path / "m.keras"), str(tmp_path / "notes.txt"))
    assert bad.returncode == 1 and "notes.txt" in bad.stderr and "Traceback" not in bad.stderr
    missing = run_cli("predict", str(tmp_path / "m.keras"), str(tmp_path / "nope.jpg"))
    assert missing.returncode == 1 and "nope.jpg: no such file" in missing.stderr
