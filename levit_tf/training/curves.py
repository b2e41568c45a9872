"""Training-curve PNG from a run's CSV log (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import csv
import os
from pathlib import Path


def read_log(path: str | os.PathLike) -> dict[str, list[float]]:
    """CSV log -> {column: values}; empty cells become NaN."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = rows[0].keys() if rows else []
    return {c: [float(r[c]) if r[c] not in ("", None) else float("nan") for r in rows]
            for c in columns}


def plot_curves(log_path: str | os.PathLike, png_path: str | os.PathLike,
                title: str = "") -> Path:
    """Loss and accuracy (train and validation) per epoch, side by side; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = read_log(log_path)
    epochs = [int(e) + 1 for e in log.get("epoch", [])]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, label in ((metric, "train"), (f"val_{metric}", "held-out")):
            if key in log:
                axis.plot(epochs, log[key], marker="o", markersize=3, label=label)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    png_path = Path(png_path)
    temporary = png_path.with_name(f".{png_path.name}.tmp.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    os.replace(temporary, png_path)
    return png_path


__all__ = ["plot_curves", "read_log"]
