"""The package root as users import it: lazy, HF's names, fast CLI help and errors."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import time

import levit_tf
import levit_tf.tflite


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)


def test_import_loads_neither_keras_nor_tensorflow():
    done = run_python("import sys, levit_tf, levit_tf.tflite, levit_tf.cli; "
                      "print(sorted(m for m in ('tensorflow', 'keras', 'torch') "
                      "if m in sys.modules))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_root_exports_hf_names():
    from levit_tf import (
        LevitConfig,
        LevitFeatureExtractor,
        LevitForImageClassification,
        LevitImageProcessor,
    )
    from levit_tf.models.levit.modeling_levit import LevitForImageClassification as defined
    from levit_tf.preprocessing import LevitImageProcessor as processor

    assert LevitForImageClassification is defined and LevitImageProcessor is processor
    assert issubclass(LevitFeatureExtractor, LevitImageProcessor)
    assert LevitConfig().image_hw == (224, 224)
    assert set(levit_tf.__all__) <= set(dir(levit_tf))


def test_lazy_names_are_the_objects_not_submodules():
    """``export`` is a function although ``levit_tf.tflite`` has submodules: the name must
    not be shadowed by a module once another name loaded its module."""
    _ = levit_tf.tflite.ATTENTION_FLOAT_OPS
    from levit_tf.tflite import TFLiteModel, export

    assert inspect.isfunction(export) and inspect.isclass(TFLiteModel)
    for name in levit_tf.tflite.__all__:
        assert not inspect.ismodule(getattr(levit_tf.tflite, name)), name
    for name in levit_tf.__all__:
        assert not inspect.ismodule(getattr(levit_tf, name)), name


def test_help_and_argument_errors_import_no_tensorflow():
    code = ("import sys\nfrom levit_tf.cli import main\n"
            "for argv in (['--help'], ['finetune', '--help'], ['export-tflite', '--help'],\n"
            "             ['finetune', '--model', 'levit-128S', '--data', 'digits',\n"
            "              '--epochs', '0', '--out', 'x']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('TF', 'tensorflow' in sys.modules)\n")
    start = time.perf_counter()
    done = run_python(code)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("TF False")
    assert done.stderr.strip().splitlines() == [
        "levit-tf finetune: error: epochs must be >= 1, got 0"]
    assert seconds < 10  # ~0.2 s idle; generous for a loaded 2-core CI machine
