"""Shared inputs of the keras-hub tests, built once per session: an HF LeViT directory (SMALL:
three stages, 96 px, 7 labels) with random weights, converted by the installed ``levit-tf
convert --format keras-hub`` into the one preset every test reads, and the references for it
(PyTorch's logits through HF's own PIL processor, our ``LevitForImageClassificationWithTeacher``
on the same checkpoint)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from levit_tf.testing.models import SMALL

#: Each module starts with ``pytest.importorskip("keras_hub", reason=SKIP_REASON)`` (and
#: grain, which keras-hub's harness keras_hub.src.tests.test_case imports).
SKIP_REASON = ('keras-hub is not installed: pip install "levit-tf[keras-hub]" (the test extra, '
               "make venv, installs it with grain)")
ROOT = Path(__file__).resolve().parents[2]
LEVIT_TF = Path(sys.executable).with_name("levit-tf")
#: two real photos cropped to one size (task.predict takes one array), 300 x 400
PHOTOS = ("astronaut", "chelsea")


def photos() -> np.ndarray:
    from skimage import data

    return np.stack([getattr(data, name)()[:300, :400] for name in PHOTOS])


@pytest.fixture(scope="session")
def keras_hub_preset(tmp_path_factory) -> dict[str, Any]:
    """{"hf": HF dir, "preset": keras-hub preset dir, "pixels" / "images": inputs (.npy),
    references (.npy): "torch_logits" (HF model on pixels), "torch_pipeline_logits" (HF PIL
    processor + HF model on images), "torch_features" (last hidden state), "ours_logits",
    "ours_pipeline_logits", "ours_features" (LevitForImageClassificationWithTeacher on TF);
    "convert": the CLI run}."""
    import torch
    import transformers

    from levit_tf import LevitForImageClassificationWithTeacher, LevitImageProcessor
    from levit_tf.data.pipeline import eval_config
    from levit_tf.testing.torch_reference import nhwc, randomize_
    from tests.conftest import load_hf_pil_processor

    root = tmp_path_factory.mktemp("keras_hub")
    fields = {k: v for k, v in SMALL.items() if k != "num_labels"}
    config = transformers.LevitConfig(**fields, drop_path_rate=0, num_labels=SMALL["num_labels"])
    reference = randomize_(transformers.LevitForImageClassificationWithTeacher(config), seed=5)
    reference.save_pretrained(root / "hf")

    size = SMALL["image_size"]
    pixels = np.random.default_rng(0).normal(size=(2, 3, size, size)).astype(np.float32)
    images = photos()
    hf_pixels = load_hf_pil_processor()(size={"shortest_edge": size},
                                        crop_size={"height": size, "width": size})(
        list(images), return_tensors="np")["pixel_values"]
    with torch.no_grad():
        out = reference(torch.from_numpy(pixels), output_hidden_states=True)
        pipeline = reference(torch.from_numpy(hf_pixels)).logits.numpy()
    arrays = {"pixels": nhwc(pixels), "images": images, "torch_logits": out.logits.numpy(),
              "torch_features": out.hidden_states[-1].numpy(),
              "torch_pipeline_logits": pipeline}

    ours = LevitForImageClassificationWithTeacher.from_pretrained(root / "hf")
    ours_out = ours(arrays["pixels"], output_hidden_states=True)
    ours_pixels = LevitImageProcessor(eval_config(size))(list(images))["pixel_values"]
    arrays.update(ours_logits=np.asarray(ours_out["logits"]),
                  ours_features=np.asarray(ours_out["hidden_states"][-1]),
                  ours_pipeline_logits=np.asarray(ours(ours_pixels)["logits"]))
    paths: dict[str, Any] = {"root": root, "hf": root / "hf", "preset": root / "preset"}
    for name, value in arrays.items():
        np.save(root / f"{name}.npy", value)
        paths[name] = root / f"{name}.npy"

    start = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    paths["convert"] = subprocess.run(
        [str(LEVIT_TF), "convert", str(root / "hf"), str(paths["preset"]), "--format",
         "keras-hub"], capture_output=True, text=True, timeout=600, cwd=root, env=env)
    paths["convert_seconds"] = time.perf_counter() - start
    return paths
