"""The inputs and PyTorch references of the cross-backend checks, built once in the TensorFlow
test process: checkpoints in each layout, pixels and expected outputs as .npy, the spec file
that ``tests/backends/worker.py`` reads under each backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.converters import convert_to_file
from levit_tf.testing.models import SMALL, TINY, randomize
from levit_tf.testing.torch_reference import (
    hf_model,
    nhwc,
    randomize_,
    save_fb_checkpoint,
    timm_hidden_states,
    timm_model,
)
from tests.support.torch_training import tame_residual_branches, torch_step

#: The variants whose parity runs on every backend (the other three: TF's test_parity.py).
PARITY_PRESETS = ("levit-128S", "levit-256")
TRAINING_MODES = ("plain", "hard", "frozen")
LR = 0.1


def _save(root: Path, name: str, value: Any) -> str:
    path = root / f"{name}.npy"
    np.save(path, np.asarray(value))
    return str(path)


def parity_spec(root: Path, presets: tuple[str, ...] = PARITY_PRESETS) -> dict[str, Any]:
    """HF directory, facebookresearch .pth (same weights as the HF one), timm safetensors; for
    the first preset also the .keras converted here (TF) and ``levit-tf convert`` run by the
    worker. Pixels (2, 224, 224, 3)."""
    pixels = np.random.RandomState(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    spec: dict[str, Any] = {"cases": []}
    pixels_path = _save(root, "pixels-224", nhwc(pixels))
    for i, preset in enumerate(presets):
        reference = hf_model(preset, seed=1)
        with torch.no_grad():
            out = reference(torch.from_numpy(pixels), output_hidden_states=True)
        hf_dir = root / f"hf-{preset}"
        reference.save_pretrained(hf_dir)
        hidden = root / f"hf-{preset}-hidden.npz"
        np.savez(hidden, *[h.numpy() for h in out.hidden_states])
        expected = {"logits": _save(root, f"hf-{preset}-logits", out.logits),
                    "cls_logits": _save(root, f"hf-{preset}-cls", out.cls_logits),
                    "distillation_logits": _save(root, f"hf-{preset}-dist",
                                                 out.distillation_logits),
                    "hidden": str(hidden)}
        fb_path = save_fb_checkpoint(reference, root / f"LeViT-{preset}.pth")
        timm = timm_model(preset, seed=2)
        timm_hidden, timm_logits = timm_hidden_states(timm, torch.from_numpy(pixels))
        timm_path = root / f"timm-{preset}.safetensors"
        safetensors.torch.save_file(timm.state_dict(), timm_path)
        np.savez(root / f"timm-{preset}-hidden.npz", *timm_hidden)
        cases = [("hf", str(hf_dir), expected), ("fb", str(fb_path), expected),
                 ("timm", str(timm_path),
                  {"logits": _save(root, f"timm-{preset}-logits", timm_logits),
                   "hidden": str(root / f"timm-{preset}-hidden.npz")})]
        if i == 0:
            converted = root / f"tf-converted-{preset}.keras"
            convert_to_file(hf_dir, converted)
            cases.append(("keras-from-tf", str(converted), expected))
            cases.append(("cli-convert", str(hf_dir), expected))
        for layout, source, wanted in cases:
            spec["cases"].append({"id": f"{preset}/{layout}", "source": source,
                                  "pixels": pixels_path, "expected": wanted,
                                  "cli_convert": layout == "cli-convert"})
    return spec


def small_hf_model(teacher: bool, seed: int) -> torch.nn.Module:
    """An HF LeViT of levit_tf/testing/models.SMALL (3 stages, 96 px, 7 labels), randomized."""
    import transformers

    fields = {k: v for k, v in SMALL.items() if k != "num_labels"}
    config = transformers.LevitConfig(**fields, drop_path_rate=0, num_labels=SMALL["num_labels"])
    cls = (transformers.LevitForImageClassificationWithTeacher if teacher
           else transformers.LevitForImageClassification)
    return randomize_(cls(config), seed)


def training_spec(root: Path) -> dict[str, Any]:
    """One PyTorch SGD step per mode on the SMALL model, batch 4: the step's loss, gradients
    (an HF directory holding them as weights), logits after."""
    from levit_tf.data import array_dataset

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 100, 120, 3), dtype=np.uint8)
    labels, teacher_labels = np.array([3, 1, 4, 1]), np.array([5, 6, 2, 0])
    batch = next(iter(array_dataset(images, labels, image_size=SMALL["image_size"],
                                    batch_size=4).as_numpy_iterator()))[0]
    pixels = np.ascontiguousarray(np.transpose(batch, (0, 3, 1, 2)))
    spec: dict[str, Any] = {"lr": LR, "cases": [], "images": _save(root, "train-images", images),
                            "pixels": _save(root, "train-pixels", batch),
                            "labels": _save(root, "train-labels", labels),
                            "teacher_labels": _save(root, "train-teacher", teacher_labels)}
    for mode in TRAINING_MODES:
        model = tame_residual_branches(small_hf_model(teacher=mode == "hard", seed=3))
        model.save_pretrained(root / f"train-{mode}")
        step = torch_step(model, pixels, labels, teacher_labels, mode, LR)
        step.gradients.save_pretrained(root / f"train-{mode}-gradients")
        spec["cases"].append({
            "mode": mode, "source": str(root / f"train-{mode}"), "loss": step.loss,
            "gradients": str(root / f"train-{mode}-gradients"),
            "train_logits": _save(root, f"train-{mode}-train-logits", step.train_logits),
            "eval_logits": _save(root, f"train-{mode}-eval-logits", step.eval_logits)})
    return spec


def keras_file_entry(root: Path, backend: str) -> dict[str, str]:
    return {"path": str(root / f"saved-on-{backend}.keras"),
            "logits": str(root / f"saved-on-{backend}-logits.npy"),
            "weights": str(root / f"saved-on-{backend}-weights.npz")}


def save_tensorflow_keras_file(root: Path) -> dict[str, Any]:
    """A randomized TINY teacher model saved here (TF), its logits and weights."""
    model = randomize(LevitForImageClassificationWithTeacher(LevitConfig(**TINY)), seed=4)
    pixels = np.random.default_rng(2).normal(size=(2, 32, 32, 3)).astype(np.float32)
    entry = keras_file_entry(root, "tensorflow")
    model.save(entry["path"])
    np.save(entry["logits"], np.asarray(model(pixels)["logits"]))
    np.savez(entry["weights"], **{v.path.split("/", 1)[1]: np.asarray(v) for v in model.weights})
    return {"pixels": _save(root, "keras-pixels", pixels), "tensorflow": entry}


def build_references(root: Path) -> dict[str, Any]:
    """Everything the workers need, in ``root``; returns the shared part of their specs."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "scratch").mkdir(exist_ok=True)
    keras_files = save_tensorflow_keras_file(root)
    return {"root": str(root), "scratch": str(root / "scratch"),
            "parity": parity_spec(root), "training": training_spec(root),
            "keras_files": keras_files}


def worker_spec(references: dict[str, Any], backend: str, load_from: tuple[str, ...],
                checks: tuple[str, ...] | None = None, save: bool = True,
                modes: tuple[str, ...] = TRAINING_MODES) -> dict[str, Any]:
    """The spec of one worker run: ``load_from`` the other backends whose .keras files it loads
    (their workers run side by side),
    ``checks`` the checks it runs (default: all), ``save`` whether it saves its .keras copy,
    ``modes`` the training modes it steps."""
    root = Path(references["root"])
    files = references["keras_files"]
    spec: dict[str, Any] = {
        "scratch": references["scratch"],
        "parity": references["parity"], "training": {**references["training"],
                                                     "modes": list(modes)},
            "keras_files": {"pixels": files["pixels"],
                        "load": {"tensorflow": files["tensorflow"]},
                        "save": keras_file_entry(root, backend) if save else None},
        "keras_files_other": {"pixels": files["pixels"],
                              "load": {name: keras_file_entry(root, name) for name in load_from}},
        "tf_only_errors": {"keras": files["tensorflow"]["path"]},
    }
    if checks is not None:
        spec = {k: v for k, v in spec.items() if k in (*checks, "scratch")}
    return spec
