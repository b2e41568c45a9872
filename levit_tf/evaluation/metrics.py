"""Accuracy from scores, with the data's classes matched to a model's labels by name (numpy only).

A model may know more labels than the data has classes (an ImageNet model on three of its
classes): a prediction of a label outside the data's classes is simply wrong, and the confusion
matrix counts it in a last 'other' column.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from levit_tf.evaluation.sources import EvaluationError

TOP_K = 5


def _name(text: str) -> str:
    """A label as compared: Unicode NFC (macOS stores folder names decomposed, NFD)."""
    return unicodedata.normalize("NFC", text)


def label_positions(class_names: Sequence[str], labels: Sequence[str], model: str) -> np.ndarray:
    """(C,) int: where each data class sits among ``model``'s ``labels`` (matched by name).
    Raises EvaluationError naming the model and the first class it lacks, or a label it has
    twice (a name that maps to two outputs cannot be scored)."""
    seen: dict[str, int] = {}
    for index, label in enumerate(labels):
        if _name(label) in seen:
            raise EvaluationError(f"{model}: label {label!r} appears twice (outputs "
                                  f"{seen[_name(label)]} and {index}); labels are matched by "
                                  "name")
        seen[_name(label)] = index
    missing = [name for name in class_names if _name(name) not in seen]
    if missing:
        shown = ", ".join(repr(label) for label in list(labels)[:6])
        more = f", ... ({len(labels)} in all)" if len(labels) > 6 else ""
        extra = f" (and {len(missing) - 1} more data classes)" if len(missing) > 1 else ""
        raise EvaluationError(
            f"{model}: data class {missing[0]!r}{extra} is not one of its labels "
            f"[{shown}{more}]; the data's class folders / label names must match the model's")
    return np.asarray([seen[_name(name)] for name in class_names], np.int64)


@dataclass
class Scores:
    """Metrics of one model: ``top1`` / ``topk`` accuracy (k = ``k``, 5 or the label count if
    fewer), ``per_class`` top-1 (C,), ``confusion`` (C, C + 1) counts (rows: true class, columns:
    predicted data class, last: a label outside the data's classes), ``predicted`` (N,) top-1
    label index."""

    top1: float
    topk: float
    k: int
    per_class: np.ndarray
    confusion: np.ndarray
    predicted: np.ndarray


def score(scores: np.ndarray, targets: np.ndarray, positions: np.ndarray,
          num_classes: int) -> Scores:
    """``scores`` (N, L) (logits or probabilities), ``targets`` (N,) data class indices,
    ``positions`` (C,) from :func:`label_positions`."""
    scores = np.asarray(scores)
    true_label = positions[targets]
    predicted = scores.argmax(axis=1)
    correct = predicted == true_label
    k = min(TOP_K, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    in_top = (top == true_label[:, None]).any(axis=1)
    per_class = np.asarray([correct[targets == c].mean() if np.any(targets == c) else np.nan
                            for c in range(num_classes)])
    column = np.full(scores.shape[1], num_classes)  # labels outside the data's classes
    column[positions] = np.arange(num_classes)
    confusion = np.zeros((num_classes, num_classes + 1), np.int64)
    np.add.at(confusion, (targets, column[predicted]), 1)
    return Scores(float(correct.mean()), float(in_top.mean()), k, per_class, confusion,
                  predicted)


def agreement(predicted: Sequence[str], reference: Sequence[str]) -> float:
    """Fraction of images whose top-1 label (by name) equals the reference model's."""
    return float(np.mean(np.asarray(predicted) == np.asarray(reference)))


__all__ = ["TOP_K", "Scores", "agreement", "label_positions", "score"]
