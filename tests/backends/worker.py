"""The cross-backend checks, run in one process under the Keras backend of ``KERAS_BACKEND``.

``python -m tests.backends.worker SPEC.json RESULTS.json``: SPEC (written by
``tests/backends/references.py`` in a TensorFlow process) names the checks and their inputs
(checkpoints, pixels, PyTorch's outputs as .npy); RESULTS gets, per check, the measured errors
(or the traceback of what failed). The tests in ``test_backends.py`` hold them to tolerances.
A Keras backend is fixed when keras is first imported, hence one process per backend.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from levit_tf import (
    LevitConfig,
    LevitForImageClassification,
    LevitForImageClassificationWithTeacher,
)
from levit_tf.converters import load_pretrained
from levit_tf.testing.models import TINY

CHECKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def check(function: Callable[[dict[str, Any]], dict[str, Any]]):
    CHECKS[function.__name__] = function
    return function


def relative_error(actual: Any, reference: np.ndarray) -> float:
    """max |actual - reference| / max |reference|."""
    actual = np.asarray(keras.ops.convert_to_numpy(actual), np.float64)
    reference = np.asarray(reference, np.float64)
    if actual.shape != reference.shape:
        raise ValueError(f"shape {actual.shape} != reference {reference.shape}")
    return float(np.max(np.abs(actual - reference)) / np.max(np.abs(reference)))


def numpy_out(outputs: dict[str, Any]) -> dict[str, Any]:
    return {k: v if k == "hidden_states" else keras.ops.convert_to_numpy(v)
            for k, v in outputs.items()}


def relative_weights(model: keras.Model, trainable_only: bool = False) -> dict[str, np.ndarray]:
    """{path inside the model: value}: comparable across two instances of one class."""
    variables = model.trainable_variables if trainable_only else model.weights
    return {v.path.split("/", 1)[1]: np.array(keras.ops.convert_to_numpy(v)) for v in variables}


# ----------------------------------------------------------------------------- inference
_COMPILED: dict[tuple[str, ...], Callable] = {}


def forward(model: keras.Model, pixels: np.ndarray) -> dict[str, Any]:
    """Inference-mode outputs with hidden states. On JAX one jit-compiled function per
    architecture (models of one class and config share it, with their own variables): the
    op-by-op eager mode would compile every op of every shape on first use."""
    if keras.backend.backend() != "jax":
        return numpy_out(model(pixels, output_hidden_states=True))
    import jax

    key = (type(model).__name__, model.config.to_json_string())
    if key not in _COMPILED:
        _COMPILED[key] = jax.jit(lambda trainable, other, x: model.stateless_call(
            trainable, other, x, output_hidden_states=True, training=False)[0])
    out = _COMPILED[key]([v.value for v in model.trainable_variables],
                         [v.value for v in model.non_trainable_variables], pixels)
    return numpy_out(out)


def load_and_compare(entry: dict[str, str], pixels: np.ndarray) -> tuple[keras.Model, dict]:
    """A .keras file saved on some backend against that backend's weights and logits."""
    model = LevitForImageClassificationWithTeacher.from_pretrained(entry["path"])
    weights = relative_weights(model)
    expected = np.load(entry["weights"])
    identical = set(weights) == set(expected.files) and all(
        np.array_equal(weights[k], expected[k]) for k in expected.files)
    logits = forward(model, pixels)["logits"]
    reference = np.load(entry["logits"])
    return model, {"weights_identical": identical,
                   "logits_error": relative_error(logits, reference),
                   "logits_max_abs": float(np.max(np.abs(logits - reference)))}


@check
def keras_files(spec: dict[str, Any]) -> dict[str, Any]:
    """Loads the .keras file saved on TensorFlow, then saves this backend's copy of it (its
    weights and logits beside it, then a ``.done`` marker), first of all checks."""
    pixels = np.load(spec["pixels"])
    model, result = load_and_compare(spec["load"]["tensorflow"], pixels)
    if spec.get("save"):
        save = spec["save"]
        model.save(save["path"])
        np.save(save["logits"], forward(model, pixels)["logits"])
        np.savez(save["weights"], **relative_weights(model))
        Path(save["path"] + ".done").touch()
    return {"tensorflow": result}


@check
def parity(spec: dict[str, Any]) -> dict[str, Any]:
    """Checkpoints (HF dir, timm, facebookresearch, .keras converted on TF, and ``levit-tf
    convert`` run here) against PyTorch's outputs: relative errors per output."""
    out: dict[str, Any] = {}
    for case in spec["cases"]:
        start = time.perf_counter()
        source = case["source"]
        if case.get("cli_convert"):  # levit-tf convert under this backend, then load the file
            from levit_tf.cli import main

            target = Path(spec["scratch"]) / f"{case['id'].replace('/', '-')}.keras"
            stderr = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
                code = main(["convert", source, str(target)])
            if code:
                raise RuntimeError(f"levit-tf convert exited {code}: {stderr.getvalue()}")
            source = str(target)
        model = load_pretrained(source)
        pixels = np.load(case["pixels"])
        result = forward(model, pixels)
        errors = {}
        for key, path in case["expected"].items():
            if key == "hidden":
                reference = np.load(path)
                errors["hidden_states"] = max(
                    relative_error(ours, reference[f"arr_{i}"])
                    for i, ours in enumerate(result["hidden_states"]))
            else:
                errors[key] = relative_error(result[key], np.load(path))
        out[case["id"]] = {"class": type(model).__name__,
                           "preset": model.config.preset_name(), "errors": errors,
                           "seconds": round(time.perf_counter() - start, 1)}
    return out


# ----------------------------------------------------------------------------- training
class FixedTeacher(keras.Model):
    """A teacher model whose argmax is ``labels`` (B,) whatever the pixels."""

    def __init__(self, labels: np.ndarray, classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.labels, self.classes = labels.astype(np.int32), classes

    def call(self, pixels, training=None):
        return keras.ops.one_hot(keras.ops.convert_to_tensor(self.labels), self.classes) * 10.0


def one_step(model: keras.Model, data: Any, lr: float,
             **compile_kwargs: Any) -> tuple[float, dict[str, np.ndarray]]:
    """One ``fit`` step (SGD) on a tf.data.Dataset of one batch: (loss, gradients by variable
    path, from the weight change)."""
    model.compile(optimizer=keras.optimizers.SGD(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  **compile_kwargs)
    before = relative_weights(model, trainable_only=True)
    history = model.fit(data, epochs=1, verbose=0)
    after = relative_weights(model, trainable_only=True)
    gradients = {k: (before[k].astype(np.float64) - after[k]) / lr for k in before}
    return float(history.history["loss"][0]), gradients


@check
def training(spec: dict[str, Any]) -> dict[str, Any]:
    """One SGD step with ``model.fit`` against one PyTorch step: loss, gradients (from the
    weight change, against PyTorch's .grad mapped by the converters), logits afterwards."""
    import tensorflow as tf

    from levit_tf.data import array_dataset

    out: dict[str, Any] = {}
    images, pixels, labels, teacher_labels = (
        np.load(spec[k]) for k in ("images", "pixels", "labels", "teacher_labels"))
    # the eval pipeline (tf.data, TF ops) on uint8 images: PyTorch stepped on its batch
    pipeline = array_dataset(images, labels, image_size=pixels.shape[1], batch_size=len(images))
    piped = next(iter(pipeline.as_numpy_iterator()))[0]
    out["pipeline_pixels_max_difference"] = float(np.max(np.abs(piped - pixels)))
    for case in spec["cases"]:
        mode = case["mode"]
        if mode not in spec.get("modes", [mode]):
            continue
        model = load_pretrained(case["source"])
        kwargs: dict[str, Any] = {}
        data = tf.data.Dataset.from_tensors((pixels, labels))
        if mode == "plain":
            data = pipeline
        if mode == "hard":
            data = pipeline.map(lambda x, y: (x, {"labels": y}))
        if mode == "frozen":
            model.freeze_backbone()
        if mode == "hard":  # the teacher model runs inside the compiled step
            kwargs = {"distillation": "hard", "teacher": FixedTeacher(
                teacher_labels, model.config.num_labels)}
        frozen_before = relative_weights(model.levit)
        loss, gradients = one_step(model, data, spec["lr"], **kwargs)
        reference = relative_weights(load_pretrained(case["gradients"]), trainable_only=True)
        if set(gradients) - set(reference):
            raise ValueError(f"no PyTorch gradient for {sorted(set(gradients) - set(reference))}")
        ours = np.concatenate([gradients[k].ravel() for k in sorted(gradients)])
        theirs = np.concatenate([reference[k].ravel() for k in sorted(gradients)])
        backbone_moved = max(float(np.max(np.abs(v - frozen_before[k])))
                             for k, v in relative_weights(model.levit).items())
        out[mode] = {
            "loss": loss, "loss_error": abs(loss - case["loss"]) / abs(case["loss"]),
            "gradient_error": relative_error(ours, theirs),
            "gradient_norm": float(np.linalg.norm(theirs)), "variables": len(gradients),
            # eval first: a training-mode call updates the BN statistics (as in PyTorch)
            "eval_logits_error": relative_error(
                model(pixels, training=False)["logits"], np.load(case["eval_logits"])),
            "train_logits_error": relative_error(
                model(pixels, training=True)["logits"], np.load(case["train_logits"])),
            "backbone_max_change": backbone_moved, "jit_compile": bool(model.jit_compile),
        }
    return out


# ----------------------------------------------------------------------------- TF-only
@check
def tf_only_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Each TF-only entry point under this backend: its error message, whether the CLI ended
    with one line and exit code 1, and whether anything was written."""
    from levit_tf.cli import main
    from levit_tf.export.saved_model import export_saved_model
    from levit_tf.tflite import export
    from levit_tf.training.distribute import make_strategy
    from levit_tf.utils.backends import TensorFlowBackendRequired

    model = LevitForImageClassification(LevitConfig(**TINY))
    scratch = Path(tempfile.mkdtemp(dir=spec["scratch"]))
    calls = {
        "export_saved_model": lambda: export_saved_model(model, scratch / "saved"),
        "tflite.export": lambda: export(model, scratch / "model.tflite"),
        "make_strategy": lambda: make_strategy("mirrored"),
    }
    out: dict[str, Any] = {}
    for name, call in calls.items():
        try:
            call()
            out[name] = {"raised": None}
        except TensorFlowBackendRequired as err:
            out[name] = {"raised": "TensorFlowBackendRequired", "message": str(err)}
        except Exception as err:  # recorded: the test fails on anything else
            out[name] = {"raised": type(err).__name__, "message": str(err)}
    for verb in (["export-savedmodel", spec["keras"], str(scratch / "cli_saved")],
                 ["export-tflite", spec["keras"], str(scratch / "cli.tflite")],
                 ["finetune", "--model", spec["keras"], "--data", "digits", "--epochs", "1",
                  "--out", str(scratch / "run")]):
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(verb)
            except BaseException as err:  # recorded: a traceback or SystemExit is a failure
                code = f"raised {type(err).__name__}: {err}"
        out[f"cli {verb[0]}"] = {"code": code, "stderr": stderr.getvalue()}
    out["written"] = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*"))
    return out


# ----------------------------------------------------------------------------- last
@check
def keras_files_other(spec: dict[str, Any]) -> dict[str, Any]:
    """Last of all checks: loads the .keras files the other backends' workers (running side by
    side) saved first, waiting up to ``wait_s`` for their ``.done`` marker."""
    pixels = np.load(spec["pixels"])
    out = {}
    for saved_on, entry in spec["load"].items():
        deadline = time.monotonic() + spec.get("wait_s", 600)
        while not Path(entry["path"] + ".done").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no .keras file from the {saved_on} worker")
            time.sleep(1)
        out[saved_on] = load_and_compare(entry, pixels)[1]
    return out


def device_info() -> dict[str, Any]:
    """What ran: the Keras backend and its device platform."""
    backend = keras.backend.backend()
    info: dict[str, Any] = {"backend": backend, "tensorflow_imported": "tensorflow" in sys.modules}
    if backend == "jax":
        import jax

        info["platform"] = jax.devices()[0].platform
        info["jax"] = jax.__version__
    elif backend == "torch":
        import torch

        info["platform"] = str(keras.src.backend.torch.core.get_device())
        info["torch"] = torch.__version__
    return info


def main(spec_path: str, results_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    results: dict[str, Any] = {"device": device_info(), "checks": {}, "seconds": {}}
    for name, function in CHECKS.items():
        if name not in spec:
            continue
        start = time.perf_counter()
        try:
            results["checks"][name] = function({**spec[name], "scratch": spec["scratch"]})
        except Exception:  # recorded: the test of this check fails with the traceback
            results["checks"][name] = {"error": traceback.format_exc()}
        results["seconds"][name] = round(time.perf_counter() - start, 1)
        print(f"{name}: {results['seconds'][name]} s", flush=True)
    Path(results_path).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main(*sys.argv[1:]))
