"""``import levit_tf`` makes our ``.keras`` files loadable the Keras way, in a fresh process, on
every backend: ``import keras, levit_tf; keras.saving.load_model(path)``.

Each load runs in a new interpreter holding only the user's lines: a test process that imported
the models earlier would hide a missing registration (the bug this guards against).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from levit_tf import LevitConfig, LevitForImageClassification
from levit_tf.testing.models import SMALL, TINY
from levit_tf.utils.keras_registration import REGISTRATIONS

ROOT = Path(__file__).resolve().parents[2]
#: Keras' own spelling on each backend, and the import order a user may pick
BACKENDS = {
    "tensorflow": "import keras, levit_tf\nload = keras.saving.load_model",
    "jax": "import levit_tf, keras\nload = keras.models.load_model",
    "torch": "import levit_tf\nimport keras\nload = keras.saving.load_model",
}
#: the same weights on two backends: float32 rounding of different kernels only
CROSS_BACKEND_TOLERANCE = 1e-5


def python(code: str, *args: str, backend: str = "tensorflow", timeout: int = 300
           ) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu",
           "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def levit_tf_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "levit_tf.cli", *args], capture_output=True,
                          text=True, timeout=600, env=env)


def test_every_module_that_registers_a_class_is_listed():
    """Imports every module of the package in a fresh process and asks Keras which module
    defines each ``levit_tf>`` class: all of them must be in REGISTRATIONS."""
    done = python(
        "import importlib, json, pkgutil, keras, levit_tf\n"
        "skipped = []\n"
        "for info in pkgutil.walk_packages(levit_tf.__path__, 'levit_tf.'):\n"
        "    if info.name.endswith('__main__'):\n"
        "        continue\n"
        "    try:\n"
        "        importlib.import_module(info.name)\n"
        "    except ImportError as err:  # an optional package that is not installed\n"
        "        skipped.append(f'{info.name}: {err}')\n"
        "for name in ('levit_tf.converters', 'levit_tf.tflite'):\n"
        "    for info in pkgutil.walk_packages(importlib.import_module(name).__path__,\n"
        "                                      name + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "found = {key: value.__module__ for key, value in\n"
        "         keras.saving.get_custom_objects().items() if key.startswith('levit_tf>')}\n"
        "print(json.dumps({'found': found, 'skipped': skipped}))\n")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    listed = {module for modules in REGISTRATIONS.values() for module in modules}
    defining = set(result["found"].values())
    assert {"levit_tf>LevitModel", "levit_tf>LevitForImageClassificationWithTeacher",
            "levit_tf>LevitMainLayer", "levit_tf>SparseCrossEntropy"} <= set(result["found"])
    assert defining <= listed, (f"modules that register Keras classes but are not in "
                                f"REGISTRATIONS: {sorted(defining - listed)}")
    # and nothing listed is dead weight (optional modules may be skipped here)
    skipped = {line.split(":")[0] for line in result["skipped"]}
    assert listed - skipped <= defining, sorted(listed - defining - skipped)


def test_registration_follows_keras_import_in_either_order_and_on_direct_imports():
    checks = {
        "keras first": "import keras, levit_tf",
        "levit_tf first": "import levit_tf, keras",
        "a model module first": "import levit_tf.models.levit.inference",
        "a layer module first": "from levit_tf.models.levit.layers import LevitMLP",
        "the root's lazy name": "from levit_tf import LevitConfig; import keras",
    }
    code = ("import sys\nexec(sys.argv[1])\nimport keras\n"
            "print(sorted(k for k in keras.saving.get_custom_objects() "
            "if k.startswith('levit_tf>')))\n")
    found = {}
    for what, first in checks.items():
        done = python(code, first)
        assert done.returncode == 0, (what, done.stderr[-2000:])
        found[what] = done.stdout.strip().splitlines()[-1]
    assert len(set(found.values())) == 1, found
    assert "levit_tf>LevitForImageClassificationWithTeacher" in found["keras first"]


@pytest.fixture(scope="module")
def user_files(tmp_path_factory) -> dict[str, Path]:
    """A checkpoint converted by ``levit-tf convert`` (a random-weight HF directory) and the
    ``best.keras`` of a one-epoch ``levit-tf finetune`` on the digits."""
    import transformers

    from levit_tf.testing.torch_reference import randomize_

    work = tmp_path_factory.mktemp("registration")
    fields = {k: v for k, v in SMALL.items() if k != "num_labels"}
    hf = randomize_(transformers.LevitForImageClassificationWithTeacher(
        transformers.LevitConfig(**fields, num_labels=SMALL["num_labels"])), seed=3)
    hf.save_pretrained(work / "hf")
    converted = levit_tf_cli("convert", str(work / "hf"), str(work / "converted.keras"))
    assert converted.returncode == 0, converted.stderr[-3000:]

    keras.utils.set_random_seed(0)
    LevitForImageClassification(LevitConfig(**TINY)).save(work / "tiny.keras")
    tuned = levit_tf_cli("finetune", "--model", str(work / "tiny.keras"), "--data", "digits",
                         "--epochs", "1", "--batch-size", "64", "--seed", "1",
                         "--out", str(work / "run"))
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    return {"converted": work / "converted.keras", "fine-tuned": work / "run" / "best.keras"}


LOAD_AND_PREDICT = """
import json, sys
import numpy as np
{imports}
out = {{}}
for path in sys.argv[1:]:
    model = load(path)
    size = model.config.image_hw
    pixels = np.random.default_rng(0).normal(size=(2, *size, 3)).astype("float32")
    logits = model(pixels)["logits"]
    out[path] = [type(model).__name__, keras.ops.convert_to_numpy(logits).tolist(),
                 getattr(model, "optimizer", None) is not None]
print(json.dumps(out))
"""


@pytest.mark.slow  # a conversion, a fine-tune and three fresh interpreters
def test_load_model_in_a_fresh_process_on_every_backend(user_files):
    """The load matrix: 3 backends x (converted, fine-tuned); logits equal the TensorFlow
    process's within float32 rounding, and the fine-tuned file's optimizer comes back too."""
    expected = {}
    for name, path in user_files.items():
        model = keras.saving.load_model(path)
        pixels = np.random.default_rng(0).normal(size=(2, *model.config.image_hw, 3))
        expected[name] = np.asarray(model(pixels.astype("float32"))["logits"], np.float64)
    matrix = []
    for backend, imports in BACKENDS.items():
        done = python(LOAD_AND_PREDICT.format(imports=imports),
                      *map(str, user_files.values()), backend=backend)
        assert done.returncode == 0, (backend, done.stderr[-3000:])
        loaded = json.loads(done.stdout.strip().splitlines()[-1])
        for name, path in user_files.items():
            class_name, logits, compiled = loaded[str(path)]
            error = float(np.max(np.abs(np.asarray(logits) - expected[name]))
                          / np.max(np.abs(expected[name])))
            matrix.append(f"{backend:<10} {name:<10} {class_name:<40} rel. error {error:.1e}")
            assert error <= CROSS_BACKEND_TOLERANCE, matrix[-1]
            assert compiled == (name == "fine-tuned"), matrix[-1]
    print("\n" + "\n".join(matrix))


def test_a_file_from_a_newer_or_foreign_layout_is_one_clear_line(tmp_path):
    """An unknown class or config key: ``levit-tf`` and ``from_pretrained`` name the file and
    the class; Keras' own ``load_model`` names the class and the keys."""
    import zipfile

    from levit_tf.converters import ConversionError, load_pretrained

    LevitForImageClassification(LevitConfig(**TINY)).save(tmp_path / "ok.keras")
    with zipfile.ZipFile(tmp_path / "ok.keras") as source:
        parts = {item.filename: source.read(item.filename) for item in source.infolist()}

    def rewrite(name: str, change) -> Path:
        config = json.loads(parts["config.json"])
        change(config)
        with zipfile.ZipFile(tmp_path / name, "w") as target:
            for filename, data in parts.items():
                target.writestr(filename, json.dumps(config) if filename == "config.json"
                                else data)
        return tmp_path / name

    foreign = rewrite("foreign.keras", lambda c: c.update(
        class_name="LevitBackbone9", registered_name="levit_tf>LevitBackbone9"))
    newer = rewrite("newer.keras", lambda c: c["config"].update(head_mode="both"))
    with pytest.raises(ConversionError) as caught:
        load_pretrained(foreign)
    assert str(caught.value) == (
        f"{foreign}: class 'LevitBackbone9' (in a levit_tf>LevitBackbone9 model) is not one "
        "levit-tf 0.1.0 knows: a file from a newer levit-tf, or another library's")
    with pytest.raises(ConversionError, match=r"newer.keras: not a loadable \.keras LeViT "
                       r"model \(LevitForImageClassification: keys \['head_mode'\] are not in "
                       r"the layout levit-tf 0.1.0 reads \(a file from a newer levit-tf\?\)\)"):
        load_pretrained(newer)
    with pytest.raises(Exception, match=r"keys \['head_mode'\] are not in the layout"):
        keras.saving.load_model(newer)
    done = levit_tf_cli("info", str(foreign))
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        f"levit-tf info: error: {foreign}: class 'LevitBackbone9' (in a "
        "levit_tf>LevitBackbone9 model) is not one levit-tf 0.1.0 knows: a file from a newer "
        "levit-tf, or another library's"]
