"""Installed the way users do: the wheel in a fresh venv with only ``[cpu]``, every README path.

The test venv makes the inputs (an HF checkpoint directory with random weights and its PyTorch
logits, real photos from scikit-image as JPEG files); the fresh venv has none of torch,
transformers, scikit-learn or matplotlib and runs the ``levit-tf`` verbs on them from outside
the repository. First the wheel alone (no extra): ``import levit_tf`` must be one ImportError of
ours naming the extra; then ``[cpu]`` on top, with the test venv's versions as constraints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.install

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "levit_tf", "converters", "tflite")
SIZE = 64  # the tiny checkpoint's input size
CLASSES = ("astronaut", "chelsea", "coffee")
HF_CONFIG = dict(image_size=SIZE, hidden_sizes=[32, 48, 64], num_attention_heads=[2, 3, 4],
                 depths=[1, 1, 1], key_dim=[8, 8, 8], drop_path_rate=0)


def run(command: list[str], cwd: Path, timeout: float = 600,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs outside the repository with a user's environment (no PYTHONPATH, TF logging as
    the user's shell has it)."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL", "VIRTUAL_ENV")}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})})


def check(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{done.args}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def build_wheel(work: Path) -> Path:
    """The wheel from a copy of the sources (the build must not write into the checkout)."""
    source = work / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    check(run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"),
               str(source)], cwd=work))
    (wheel,) = (work / "dist").glob("levit_tf-*.whl")
    return wheel


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> dict[str, Path]:
    """A fresh venv holding the wheel with ``[cpu]``; records the bare-install import error."""
    work = tmp_path_factory.mktemp("install")
    start = time.perf_counter()
    wheel = build_wheel(work)
    names = zipfile.ZipFile(wheel).namelist()
    packages = sorted({n.split("/")[0] for n in names if not n.endswith(".dist-info/")})
    assert all(p == "levit_tf" or p.startswith("levit_tf-") for p in packages), packages
    assert not any(n.startswith(("tests/", "benchmarks/", "levit_tf/testing/")) for n in names)
    constraints = work / "constraints.txt"
    frozen = check(run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], cwd=work))
    constraints.write_text(frozen.stdout)
    root = work / "venv"
    check(run([sys.executable, "-m", "venv", str(root)], cwd=work))
    python, pip = root / "bin" / "python", [str(root / "bin" / "python"), "-m", "pip"]

    check(run([*pip, "install", "-q", "-c", str(constraints), str(wheel)], cwd=work))
    bare = run([str(python), "-c", "import levit_tf"], cwd=work)
    check(run([*pip, "install", "-q", "-c", str(constraints), f"{wheel}[cpu]"], cwd=work))
    check(run([*pip, "check"], cwd=work))
    print(f"\nwheel venv ready in {time.perf_counter() - start:.0f} s")
    return {"root": root, "python": python, "bin": root / "bin", "work": work, "bare": bare}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Made by the test venv: an HF checkpoint dir (safetensors) + its PyTorch logits, photos."""
    import torch
    import transformers

    folder = tmp_path_factory.mktemp("inputs")
    torch.manual_seed(0)
    config = transformers.LevitConfig(**HF_CONFIG, num_labels=len(CLASSES),
                                      id2label=dict(enumerate(CLASSES)))
    model = transformers.LevitForImageClassificationWithTeacher(config).eval()
    with torch.no_grad():  # running statistics that are not the identity
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    model.save_pretrained(folder / "hf")
    assert (folder / "hf" / "model.safetensors").is_file()
    pixels = np.random.default_rng(0).normal(size=(2, SIZE, SIZE, 3)).astype(np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(pixels.transpose(0, 3, 1, 2))).logits.numpy()
    np.savez(folder / "reference.npz", pixels=pixels, logits=logits)

    from skimage import data

    rng = np.random.default_rng(1)
    for name in CLASSES:  # a small real-photo task: which photo a crop comes from
        photo = getattr(data, name)()
        (folder / "train" / name).mkdir(parents=True)
        for index in range(8):
            side = int(rng.integers(min(photo.shape[:2]) // 3, min(photo.shape[:2])))
            top = int(rng.integers(0, photo.shape[0] - side + 1))
            left = int(rng.integers(0, photo.shape[1] - side + 1))
            Image.fromarray(photo[top:top + side, left:left + side]).save(
                folder / "train" / name / f"{index}.jpg", quality=90)
    (folder / "photos").mkdir()
    for name in ("astronaut", "chelsea", "coffee", "rocket", "cat", "immunohistochemistry",
                 "hubble_deep_field", "retina", "camera", "coins", "moon", "clock"):
        image = getattr(data, name)()
        Image.fromarray(image).convert("RGB").save(folder / "photos" / f"{name}.jpg")
    return {"root": folder, "hf": folder / "hf", "reference": folder / "reference.npz",
            "train": folder / "train", "photos": folder / "photos"}


def levit_tf(venv: dict[str, Path], *args: str, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess:
    return run([str(venv["bin"] / "levit-tf"), *map(str, args)], cwd=venv["work"], env=env)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_bare_install_names_the_extra(venv):
    """``pip install levit-tf`` without an extra: one ImportError raised by us."""
    bare = venv["bare"]
    assert bare.returncode == 1
    lines = bare.stderr.strip().splitlines()
    assert lines[-1] == ('ImportError: levit-tf needs TensorFlow: pip install "levit-tf[cpu]" '
                         '(or "levit-tf[gpu]" for the CUDA build)')
    assert len(lines) <= 6, bare.stderr  # a short traceback, not keras' 45 lines


def test_minimal_install_holds_no_optional_package(venv):
    done = check(run([str(venv["python"]), "-c", (
        "import importlib.util as u; print([m for m in ('torch', 'transformers', 'sklearn', "
        "'matplotlib', 'timm', 'huggingface_hub') if u.find_spec(m)])")], cwd=venv["work"]))
    assert done.stdout.strip() == "[]"


def test_readme_paths_from_the_minimal_install(venv, inputs):
    """convert (HF dir, safetensors) -> info -> predict -> finetune on a folder ->
    export-savedmodel -> export-tflite (float32, int8 on 12 photos) -> verify."""
    work, photos = venv["work"], inputs["photos"]
    timings: dict[str, float] = {}

    def timed(name: str, *args: str, env: dict[str, str] | None = None):
        start = time.perf_counter()
        done = levit_tf(venv, *args, env=env)
        timings[name] = time.perf_counter() - start
        return done

    assert timed("--help", "--help").returncode == 0
    converted = check(timed("convert", "convert", inputs["hf"], work / "m.keras"))
    assert "LevitForImageClassificationWithTeacher" in converted.stdout
    assert "Traceback" not in converted.stderr

    # the converted model against PyTorch's logits, computed in the fresh venv
    script = (
        "import sys, numpy as np\nfrom levit_tf import LevitForImageClassificationWithTeacher\n"
        "m = LevitForImageClassificationWithTeacher.from_pretrained(sys.argv[1])\n"
        "ref = np.load(sys.argv[2])\n"
        "np.save(sys.argv[3], np.asarray(m(ref['pixels'])['logits']))\n")
    check(run([str(venv["python"]), "-c", script, str(work / "m.keras"),
               str(inputs["reference"]), str(work / "logits.npy")], cwd=work))
    reference = np.load(inputs["reference"])["logits"]
    error = np.max(np.abs(np.load(work / "logits.npy") - reference)) / np.max(np.abs(reference))
    assert error <= 1e-5, f"relative logit error {error:.2e} against PyTorch"

    info = check(timed("info", "info", work / "m.keras"))
    assert f"input: (batch, {SIZE}, {SIZE}, 3)" in info.stdout
    # oneDNN on, as on AVX-512 VNNI / AMX CPUs: still nothing but the answer
    predicted = check(timed("predict", "predict", work / "m.keras", photos / "chelsea.jpg",
                            photos / "coffee.jpg", "--top-k", "2",
                            env={"TF_ENABLE_ONEDNN_OPTS": "1"}))
    assert predicted.stdout.count("  1. ") == 2 and predicted.stderr.strip() == ""

    # finetune on a folder: no matplotlib -> checkpoints written, the curve skipped in one line
    run_dir = work / "run"
    tuned = check(timed("finetune", "finetune", "--model", work / "m.keras", "--data",
                        inputs["train"], "--epochs", "1", "--batch-size", "8", "--out", run_dir))
    assert "done: 1 epochs" in tuned.stdout
    skipped = [line for line in tuned.stderr.splitlines() if "curve.png" in line]
    assert skipped == ['levit-tf: curve.png not drawn: it needs matplotlib '
                       '(pip install "levit-tf[plots]")']
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "best.keras", "last.keras", "log.csv", "state.json"]
    again = check(timed("finetune (resume)", "finetune", "--model", work / "m.keras", "--data",
                        inputs["train"], "--epochs", "1", "--batch-size", "8", "--out", run_dir))
    assert "all 1 epochs already done" in again.stdout
    digits = timed("finetune --data digits", "finetune", "--model", work / "m.keras",
                   "--data", "digits", "--epochs", "1", "--out", work / "digits")
    assert one_error_line(digits) == ('levit-tf finetune: error: --data digits needs '
                                      'scikit-learn (pip install "levit-tf[digits]")')
    assert not (work / "digits").exists()

    saved = check(timed("export-savedmodel", "export-savedmodel", run_dir / "best.keras",
                        work / "serving" / "1"))
    assert "serve_images" in saved.stdout
    served = check(run([str(venv["python"]), "-c", (
        "import sys, tensorflow as tf\nm = tf.saved_model.load(sys.argv[1])\n"
        "out = m.signatures['serve_images'](images=tf.constant([open(sys.argv[2], 'rb')"
        ".read()]))\nprint(out['top_k_labels'].numpy()[0][0].decode())\n"),
        str(work / "serving" / "1"), str(inputs["train"] / "chelsea" / "0.jpg")], cwd=work))
    assert served.stdout.strip() in CLASSES

    check(timed("export-tflite float32", "export-tflite", run_dir / "best.keras",
                work / "f32.tflite"))
    int8 = check(timed("export-tflite int8", "export-tflite", run_dir / "best.keras",
                       work / "int8.tflite", "--quantization", "int8", "--calibration-data",
                       photos))
    assert "calibrated on 12 images" in int8.stdout
    assert "has only 12 images" in int8.stderr
    verified = check(timed("verify", "verify", run_dir / "best.keras", work / "f32.tflite",
                           work / "int8.tflite", "--images", photos, "--json",
                           work / "verify.json"))
    rows = json.loads((work / "verify.json").read_text())
    assert len(rows) == 2 and "int8" in verified.stdout
    assert verified.stderr.strip() == "", verified.stderr  # no LiteRT delegate chatter
    print("\n" + "\n".join(f"  {name}: {seconds:.1f} s" for name, seconds in timings.items()))


def test_errors_are_one_line_with_onednn_on(venv):
    """As on AVX-512 VNNI / AMX CPUs, where TF turns oneDNN on and its C++ start-up writes to
    stderr: the user sees the error line only."""
    for onednn in ("0", "1"):
        missing = levit_tf(venv, "info", "missing.keras", env={"TF_ENABLE_ONEDNN_OPTS": onednn})
        assert one_error_line(missing) == "levit-tf info: error: missing.keras: no such file"


def test_keras_hub_extra_installs_clean_and_loads_presets(venv, inputs, tmp_path):
    """``pip install "levit-tf[keras-hub]"`` (instead of [cpu]) in a fresh venv: `tensorflow`,
    not tensorflow-cpu, so ``pip check`` is clean; ``levit-tf convert --format keras-hub`` there,
    then keras-hub's own ``from_preset`` in a fresh process after ``import levit_tf``: our
    classes, logits within 1e-5 of PyTorch's."""
    start = time.perf_counter()
    root = tmp_path / "venv-keras-hub"
    check(run([sys.executable, "-m", "venv", str(root)], cwd=tmp_path))
    python, constraints = root / "bin" / "python", venv["work"] / "constraints.txt"
    check(run([str(python), "-m", "pip", "install", "-q", "-c", str(constraints),
               f"{next((venv['work'] / 'dist').glob('levit_tf-*.whl'))}[keras-hub]"],
              cwd=tmp_path))
    installed = time.perf_counter() - start
    pip_check = run([str(python), "-m", "pip", "check"], cwd=tmp_path)
    print(f"\n[keras-hub] venv in {installed:.0f} s; pip check: {pip_check.stdout.strip()}")
    assert pip_check.returncode == 0 and pip_check.stdout.strip() == (
        "No broken requirements found."), pip_check.stdout + pip_check.stderr
    listed = check(run([str(python), "-m", "pip", "list", "--format", "json"], cwd=tmp_path))
    names = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert {"tensorflow", "keras-hub", "tensorflow-text", "ai-edge-litert"} <= names
    assert "tensorflow-cpu" not in names

    preset = tmp_path / "preset"
    converted = check(run([str(root / "bin" / "levit-tf"), "convert", str(inputs["hf"]),
                           str(preset), "--format", "keras-hub"], cwd=tmp_path))
    assert "(keras-hub preset)" in converted.stdout
    script = (
        "import sys, numpy as np\nimport levit_tf, keras_hub\n"
        "task = keras_hub.models.ImageClassifier.from_preset(sys.argv[1])\n"
        "backbone = keras_hub.models.Backbone.from_preset(sys.argv[1])\n"
        "print(type(task).__name__, type(backbone).__name__, type(task.preprocessor).__name__)\n"
        "np.save(sys.argv[3], np.asarray(task(np.load(sys.argv[2])['pixels'])))\n")
    loaded = check(run([str(python), "-c", script, str(preset), str(inputs["reference"]),
                        str(tmp_path / "logits.npy")], cwd=tmp_path))
    assert loaded.stdout.split() == ["LevitImageClassifier", "LevitBackbone",
                                     "LevitImageClassifierPreprocessor"]
    reference = np.load(inputs["reference"])["logits"]
    error = np.max(np.abs(np.load(tmp_path / "logits.npy") - reference)) / np.max(
        np.abs(reference))
    assert error <= 1e-5, f"relative logit error {error:.2e} against PyTorch"
