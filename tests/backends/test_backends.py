"""LeViT on Keras' JAX and PyTorch backends, each in its own process (a backend is fixed at
import): parity with PyTorch, one-step training parity, .keras files across backends, and the
one error of the TensorFlow-only features.

The references (PyTorch outputs, checkpoints, a .keras saved on TensorFlow) are built once here;
``worker.py`` runs every check of one backend in one subprocess. Relative error = max |ours -
theirs| / max |theirs|.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from tests.backends.references import PARITY_PRESETS, build_references, worker_spec

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("jax", "torch")
LOGIT_TOLERANCE = 1e-5  # as TF's test_parity.py
#: one SGD step (measured <= 1.4e-6 / 1.4e-5 / 1.2e-5 on JAX; training BN amplifies rounding)
LOSS_TOLERANCE, GRADIENT_TOLERANCE, STEP_LOGIT_TOLERANCE = 1e-5, 1e-4, 1e-4
#: the same weights on two backends: float32 rounding of different kernels only
CROSS_BACKEND_TOLERANCE = 1e-5

pytest.importorskip("jax")

#: the steps run: hard trains the backbone (two heads, a teacher model), frozen runs the one-head
#: loss of LevitForImageClassification; together they cover ``plain`` (worker.py runs it too:
#: ``modes``), one JAX compilation fewer
DEFAULT_MODES = ("hard", "frozen")


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> dict[str, Any]:
    return build_references(tmp_path_factory.mktemp("backends"))


def start_worker(references: dict[str, Any], backend: str, tag: str,
                 **spec_kwargs: Any) -> tuple[subprocess.Popen, Path]:
    """Starts worker.py under ``KERAS_BACKEND=backend``."""
    root = Path(references["root"])
    spec_path, results_path = root / f"spec-{tag}.json", root / f"results-{tag}.json"
    spec_path.write_text(json.dumps(worker_spec(references, backend, **spec_kwargs)))
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.backends.worker", str(spec_path), str(results_path)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, results_path


def run_workers(references: dict[str, Any], runs: dict[str, dict[str, Any]]
                ) -> dict[str, dict[str, Any]]:
    """{tag: spec kwargs (backend=...)} -> {tag: results}, the workers running side by side."""
    started = {tag: start_worker(references, tag=tag, **kwargs) for tag, kwargs in runs.items()}
    results = {}
    for tag, (process, results_path) in started.items():
        _, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, stderr[-3000:]
        results[tag] = json.loads(results_path.read_text())
    return results


@pytest.fixture(scope="module")
def backend_results(references) -> dict[str, dict[str, Any]]:
    """One worker per backend, side by side: every check; each loads the .keras files saved on
    TensorFlow and by the other worker."""
    return run_workers(references, {
        backend: {"backend": backend, "modes": DEFAULT_MODES,
                  "load_from": tuple(b for b in BACKENDS if b != backend)}
        for backend in BACKENDS})


def check_result(results: dict[str, Any], name: str) -> dict[str, Any]:
    result = results["checks"][name]
    assert "error" not in result, result["error"]
    return result


@pytest.mark.parametrize("backend", BACKENDS)
def test_worker_ran_on_the_backend(backend_results, backend):
    device = backend_results[backend]["device"]
    assert device["backend"] == backend
    assert device["platform"] == "cpu"


@pytest.mark.parametrize("backend", BACKENDS)
def test_pytorch_parity(backend_results, backend):
    """HF directory, timm safetensors, facebookresearch .pth, a .keras converted on TF and
    ``levit-tf convert`` on this backend: every output within 1e-5 of PyTorch."""
    result = check_result(backend_results[backend], "parity")
    ids = {f"{preset}/{layout}" for preset in PARITY_PRESETS for layout in ("hf", "fb", "timm")}
    assert ids | {f"{PARITY_PRESETS[0]}/keras-from-tf", f"{PARITY_PRESETS[0]}/cli-convert"} == (
        set(result))
    for case_id, case in result.items():
        assert case["class"] == "LevitForImageClassificationWithTeacher", case_id
        assert case["preset"] == case_id.split("/")[0]
        assert {"logits", "hidden_states"} <= set(case["errors"])
        for output, error in case["errors"].items():
            assert error <= LOGIT_TOLERANCE, f"{backend} {case_id} {output}: {error:.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_sgd_step_matches_pytorch(backend_results, backend):
    """``fit`` against one PyTorch step (loss, every gradient, logits after): hard distillation
    with a teacher model in the compiled step, fed by the tf.data eval pipeline; frozen
    backbone."""
    result = check_result(backend_results[backend], "training")
    assert result.pop("pipeline_pixels_max_difference") == 0.0
    assert set(result) == set(DEFAULT_MODES)
    check_steps(result, backend)
    assert result["frozen"]["backbone_max_change"] == 0.0  # weights and BN statistics
    assert result["frozen"]["variables"] == 4  # the head: BN gamma, beta, kernel, bias
    assert result["hard"]["backbone_max_change"] > 0.0


def check_steps(result: dict[str, Any], backend: str) -> None:
    for mode, step in result.items():
        assert step["loss_error"] <= LOSS_TOLERANCE, (mode, step)
        assert step["gradient_error"] <= GRADIENT_TOLERANCE, (mode, step)
        assert step["train_logits_error"] <= STEP_LOGIT_TOLERANCE, (mode, step)
        assert step["eval_logits_error"] <= STEP_LOGIT_TOLERANCE, (mode, step)
        assert step["gradient_norm"] > 1.0  # the step did move the weights
        assert step["jit_compile"] == (backend == "jax")


@pytest.mark.parametrize("backend", BACKENDS)
def test_keras_file_from_tensorflow_loads(backend_results, backend):
    loaded = check_result(backend_results[backend], "keras_files")
    assert set(loaded) == {"tensorflow"}
    for saved_on, entry in loaded.items():
        assert entry["weights_identical"], saved_on
        assert entry["logits_error"] <= CROSS_BACKEND_TOLERANCE, (saved_on, entry)


@pytest.mark.parametrize("backend", BACKENDS)
def test_tensorflow_only_features_raise_one_clear_error(backend_results, backend):
    result = check_result(backend_results[backend], "tf_only_errors")
    assert result.pop("written") == []  # nothing half-written
    for name, outcome in result.items():
        if name.startswith("cli "):
            assert outcome["code"] == 1, (name, outcome)
            lines = outcome["stderr"].strip().splitlines()
            assert len(lines) == 1 and "KERAS_BACKEND=tensorflow" in lines[0], (name, lines)
            assert backend in lines[0]
        else:
            assert outcome["raised"] == "TensorFlowBackendRequired", (name, outcome)
            assert "KERAS_BACKEND=tensorflow" in outcome["message"]


def test_keras_files_saved_on_every_backend_load_everywhere(references, backend_results):
    """The files the JAX and torch workers saved load here (TensorFlow) and on the other
    backend: same weights, logits within float32 rounding of the saving backend's."""
    from levit_tf import LevitForImageClassificationWithTeacher

    files = references["keras_files"]
    pixels = np.load(files["pixels"])
    root = Path(references["root"])
    for backend in BACKENDS:
        check_result(backend_results[backend], "keras_files")
        model = LevitForImageClassificationWithTeacher.from_pretrained(
            root / f"saved-on-{backend}.keras")
        assert keras.backend.backend() == "tensorflow"
        logits = np.asarray(model(pixels)["logits"])
        for reference in (np.load(root / f"saved-on-{backend}-logits.npy"),
                          np.load(files["tensorflow"]["logits"])):
            error = float(np.max(np.abs(logits - reference)) / np.max(np.abs(reference)))
            assert error <= CROSS_BACKEND_TOLERANCE, (backend, error)
    for backend in BACKENDS:  # and on the other backend (its worker loaded this one's file)
        others = check_result(backend_results[backend], "keras_files_other")
        assert set(others) == set(BACKENDS) - {backend}
        for saved_on, entry in others.items():
            assert entry["weights_identical"], (backend, saved_on)
            assert entry["logits_error"] <= CROSS_BACKEND_TOLERANCE, (backend, saved_on, entry)
