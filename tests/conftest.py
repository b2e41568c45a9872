"""Shared pytest setup and fixtures.

Quiet TF logs; torchvision importable beside CPU torch (levit_tf/testing/torch_compat.py); the
training tests' tiny config (TINY, levit_tf/testing/models.py) and a learnable synthetic task; real
photos and the HF PIL reference processor.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from levit_tf import LevitConfig
from levit_tf.testing.models import TINY
from levit_tf.testing.torch_compat import make_torchvision_importable

make_torchvision_importable()


# ----------------------------------------------------------------------------- tiny models

SIZE = TINY["image_size"]
NUM_CLASSES = TINY["num_labels"]


def make_tiny_config(**overrides) -> LevitConfig:
    return LevitConfig(**{**TINY, **overrides})


@pytest.fixture(scope="session")
def tiny_config():
    """Factory: ``tiny_config(**overrides)`` -> LevitConfig."""
    return make_tiny_config


def synthetic_task(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, S, S, 3) float32 noise with a bright square in the quadrant named by the label."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % NUM_CLASSES
    rng.shuffle(labels)
    pixels = rng.normal(0, 0.5, (n, SIZE, SIZE, 3)).astype(np.float32)
    half, quarter = SIZE // 2, SIZE // 4
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        pixels[i, half * row + quarter // 2: half * row + half - quarter // 2,
               half * col + quarter // 2: half * col + half - quarter // 2] += 2.0
    return pixels, labels.astype(np.int32)


@pytest.fixture(scope="session")
def task() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_task(128)


# ----------------------------------------------------------------------------- photos

def load_hf_pil_processor():
    """``transformers.LevitImageProcessorPil`` (the PIL-backed HF reference).

    transformers imports torchvision when it is installed; a torchvision whose C
    extension does not match torch ("operator torchvision::nms does not exist") makes
    that import fail, so a broken torchvision is hidden from transformers here.
    """
    try:
        import torchvision  # noqa: F401
    except Exception:
        sys.modules["torchvision"] = None  # type: ignore[assignment]
        try:
            from transformers.utils import import_utils

            import_utils.is_torchvision_available.cache_clear()
        except Exception:
            pass
    transformers = pytest.importorskip("transformers")
    return transformers.LevitImageProcessorPil


def _photos() -> dict[str, np.ndarray]:
    from skimage import data
    from sklearn.datasets import load_sample_images

    names = [
        "astronaut", "chelsea", "coffee", "rocket", "cat", "colorwheel",
        "immunohistochemistry", "hubble_deep_field", "retina", "camera", "coins",
        "moon", "page", "text", "clock",
    ]  # fmt: skip
    photos = {n: getattr(data, n)() for n in names}
    photos["motorcycle_left"] = data.stereo_motorcycle()[0]
    photos["horse_binary"] = data.horse().astype(np.uint8) * 255
    photos["logo_rgba"] = data.logo()
    sample = load_sample_images()
    for fname, image in zip(sample.filenames, sample.images, strict=True):
        photos["sklearn_" + fname.rsplit("/", 1)[-1].split(".")[0]] = image
    return photos


@pytest.fixture(scope="session")
def hf_pil_processor_cls():
    return load_hf_pil_processor()


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    return _photos()
