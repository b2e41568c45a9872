"""``levit_tf.keras_hub`` stays optional and lazy: ``import levit_tf`` (and Keras' own
registration) never imports keras-hub; without keras-hub the names and ``--format keras-hub``
fail with one message naming the extra."""

from __future__ import annotations

import json
import subprocess
import sys

from levit_tf.utils.keras_registration import REGISTRATIONS
from tests.keras_hub.conftest import ROOT

MODULES = ("backbone", "image_converter", "preprocessor", "image_classifier")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_keras_hub_modules_are_registered_on_the_keras_hub_trigger():
    assert REGISTRATIONS["keras_hub"] == tuple(f"levit_tf.keras_hub.{m}" for m in MODULES)
    assert not any(m.startswith("levit_tf.keras_hub") for m in REGISTRATIONS["keras"])


def test_keras_alone_does_not_import_keras_hub():
    done = run_python(
        "import sys, json, levit_tf, keras\n"
        "import levit_tf.keras_hub\n"
        "from levit_tf.utils.keras_registration import registered\n"
        "print(json.dumps([registered('keras'), 'keras_hub' in sys.modules,\n"
        "                  keras.saving.get_registered_object('levit_tf>LevitModel') is None]))")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, False, False]


def test_without_keras_hub_one_message_names_the_extra(tmp_path):
    hide = "import sys; sys.modules['keras_hub'] = None\n"
    done = run_python(hide + "import levit_tf.keras_hub as k\nk.LevitBackbone")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "levit_tf.utils.optional.MissingDependency: levit_tf.keras_hub.LevitBackbone needs "
        'keras-hub (pip install "levit-tf[keras-hub]")')
    done = run_python(hide + "from levit_tf.cli import main\nsys.exit(main(['convert', "
                      f"'{tmp_path}/none', '{tmp_path}/preset', '--format', 'keras-hub']))")
    assert done.returncode == 1
    assert done.stderr.strip() == ('levit-tf convert: error: --format keras-hub needs keras-hub '
                                   '(pip install "levit-tf[keras-hub]")')
    assert not (tmp_path / "preset").exists()
