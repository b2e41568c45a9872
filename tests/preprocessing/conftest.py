"""Shared fixtures: the HF PIL reference processor and real photos (skimage, sklearn)."""

from __future__ import annotations

import sys

import numpy as np
import pytest


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
