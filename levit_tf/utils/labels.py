"""Label sets shipped with the package."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from importlib import resources


@functools.cache
def imagenet_1k_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, in the standard class-index order."""
    text = resources.files("levit_tf").joinpath("resources/imagenet_1k_labels.json").read_text()
    labels = tuple(json.loads(text))
    assert len(labels) == 1000
    return labels


def ordered_labels(id2label: Mapping[int, str], num_labels: int | None = None) -> list[str]:
    """The class names in class-index order. Raises ValueError (naming the ids) unless the
    ids are exactly 0 .. N-1: an export with a gap would shift or lose labels."""
    ids = sorted(int(k) for k in id2label)
    count = len(ids) if num_labels is None else num_labels
    if ids != list(range(count)):
        shown = ", ".join(map(str, ids[:8])) + (", ..." if len(ids) > 8 else "")
        raise ValueError(f"id2label must name every class id 0..{count - 1} once; it has ids "
                         f"[{shown}] (fix the config's id2label)")
    return [str(id2label[i]) for i in range(count)]


def check_one_line_labels(labels: Sequence[str]) -> None:
    """Raises ValueError for a label holding a line break: ``labels.txt`` has one label per
    line (Android reads it by line), so such a label would shift every later class."""
    for index, label in enumerate(labels):
        if any(c in label for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
            raise ValueError(f"label {index} {label!r} contains a line break; labels.txt holds "
                             "one label per line (rename the class)")
