"""Seeded, per-class (stratified) held-out splits."""

from __future__ import annotations

import numpy as np


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): round(val_fraction * n_c) of each class c held out,
    drawn with ``np.random.default_rng(seed)``; both sorted."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    val = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        val[members[: round(len(members) * val_fraction)]] = True
    return np.flatnonzero(~val), np.flatnonzero(val)


__all__ = ["stratified_split"]
