"""What ``evaluate`` measured: one ``ArtefactResult`` per model file, inside an ``Evaluation``."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

#: The confusion matrix's last column: predictions of a label outside the data's classes.
OTHER = "(other label)"


@dataclass
class ArtefactResult:
    """One model file on the labelled images.

    ``top1`` / ``top5``: accuracy (top-5 is top-``top_k`` when the model has fewer than 5
    labels); ``per_class``: top-1 accuracy of each data class (None: no image of it);
    ``agreement``: fraction of images whose top-1 label equals the first model's (None for the
    first); ``latency_ms``: mean wall time of one image through the artefact (batch 1;
    ``latency_median_ms`` its median); ``size_bytes``: the file, or every file of a SavedModel
    folder; ``confusion``: counts, rows the true class, columns the predicted class then
    ``OTHER``; ``predictions``: the top-1 label of each image."""

    path: str
    kind: str
    variant: str
    input: str
    device: str
    images: int
    num_labels: int
    top1: float
    top5: float
    top_k: int
    per_class: dict[str, float | None]
    agreement: float | None
    latency_ms: float
    latency_median_ms: float
    size_bytes: int | None
    confusion: list[list[int]]
    predictions: list[str]

    @property
    def size_mb(self) -> float | None:
        return None if self.size_bytes is None else self.size_bytes / 1e6


@dataclass
class Evaluation:
    """Every model on the same images: ``class_names`` (the data's, in label order),
    ``class_counts`` (images per class), ``image_ids`` and ``targets`` (true class name) per
    image, ``skipped`` unreadable files, ``cpu`` (model and int8 dot-product capability)."""

    data: str
    class_names: list[str]
    class_counts: list[int]
    image_ids: list[str]
    targets: list[str]
    skipped: int
    cpu: str
    results: list[ArtefactResult]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, and each result's size in MB."""
        out = dataclasses.asdict(self)
        for result, entry in zip(self.results, out["results"], strict=True):
            entry["size_mb"] = result.size_mb
        out["confusion_columns"] = [*self.class_names, OTHER]
        return out


def short_names(paths: list[str]) -> list[str]:
    """Each path's last part (table columns), or its last two where that is a SavedModel's
    version number ('serving/levit/1' -> 'levit/1') or where the last parts repeat."""
    parts = [os.path.normpath(p).split(os.sep) for p in paths]
    names = [os.path.join(*p[-2:]) if p[-1].isdigit() else p[-1] for p in parts]
    if len(set(names)) == len(names):
        return names
    return [os.path.join(*p[-2:]) for p in parts]


__all__ = ["OTHER", "ArtefactResult", "Evaluation", "short_names"]
