"""Label sets shipped with the package."""

from __future__ import annotations

import functools
import json
from importlib import resources


@functools.cache
def imagenet_1k_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, in the standard class-index order."""
    text = resources.files("levit_tf").joinpath("resources/imagenet_1k_labels.json").read_text()
    labels = tuple(json.loads(text))
    assert len(labels) == 1000
    return labels
