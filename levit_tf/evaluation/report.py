"""An ``Evaluation`` as a table (stdout), JSON and a plot (matplotlib: the ``plots`` extra)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from levit_tf.evaluation.results import OTHER, Evaluation, short_names
from levit_tf.utils.files import atomic_path, atomic_write_text

#: More data classes than this: the per-class table is left to --json.
MAX_CLASS_ROWS = 50
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _size(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(header: list[str], rows: list[list[str]], left: int) -> list[str]:
    """Columns padded to their widest cell: the first ``left`` left-aligned, the rest right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) if i < left else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in [header, *rows]]


def format_table(evaluation: Evaluation) -> str:
    """The summary table (one row per model), the CPU line and the per-class table."""
    results = evaluation.results
    skipped = (f", {evaluation.skipped} unreadable files skipped" if evaluation.skipped
               else "")
    lines = [f"{evaluation.data}: {len(evaluation.image_ids)} images, "
             f"{len(evaluation.class_names)} classes{skipped}"]
    header = ["model", "kind", "mode", "input", "runs on", "top-1", "top-5", "agree",
              "ms/image", "MB"]
    rows = [[r.path, r.kind, r.variant, r.input, r.device, _percent(r.top1), _percent(r.top5),
             _percent(r.agreement), f"{r.latency_ms:.2f}", _size(r.size_mb)] for r in results]
    lines += _table(header, rows, left=5)
    notes = [f"agree: top-1 label equal to {results[0].path}'s"] if len(results) > 1 else []
    fewer = sorted({r.top_k for r in results if r.top_k < 5})
    if fewer:
        notes.append(f"top-5 is top-{'/'.join(map(str, fewer))} for models with fewer labels")
    notes.append("ms/image: mean wall time of one image per call; .keras / .tflite: "
                 "pixels -> logits,\n  SavedModel: encoded image -> probabilities (its "
                 "decode and resize included)")
    lines += [f"  {note}" for note in notes]
    lines.append(f"CPU: {evaluation.cpu}")
    lines.append("")
    if len(evaluation.class_names) > MAX_CLASS_ROWS:
        lines.append(f"per-class top-1 accuracy: {len(evaluation.class_names)} classes, in "
                     "--json")
        return "\n".join(lines)
    names = short_names([r.path for r in results])
    rows = [[name, str(count), *(_percent(r.per_class[name]) for r in results)]
            for name, count in zip(evaluation.class_names, evaluation.class_counts,
                                   strict=True)]
    lines.append("per-class top-1 accuracy:")
    lines += _table(["class", "images", *names], rows, left=1)
    return "\n".join(lines)


def write_json(evaluation: Evaluation, path: str | os.PathLike) -> None:
    """The whole evaluation as JSON (``Evaluation.as_dict``), written atomically."""
    atomic_write_text(path, json.dumps(evaluation.as_dict(), indent=1) + "\n")


def write_plot(evaluation: Evaluation, path: str | os.PathLike) -> None:
    """Top-1 / top-5 accuracy and latency per model, and the first model's confusion matrix
    (rows normalized per true class), written atomically to ``path`` (.png / .svg / .pdf)."""
    from levit_tf.utils.optional import require

    require("matplotlib", "--plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    results = evaluation.results
    names = short_names([r.path for r in results])
    x = np.arange(len(results))
    fig = plt.figure(figsize=(13, 6.5), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(1.1, 1))
    accuracy, latency, confusion = (fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0]),
                                    fig.add_subplot(grid[:, 1]))
    # points, not bars: exports of one model differ by tenths of a percent, which bars from 0
    # would hide; the axis spans the values measured
    top1, top5 = [r.top1 * 100 for r in results], [r.top5 * 100 for r in results]
    accuracy.plot(x, top1, "o", markersize=7, label="top-1")
    accuracy.plot(x, top5, "^", markersize=6, label="top-5")
    for i, value in enumerate(top1):
        accuracy.annotate(f"{value:.2f}", (i, value), textcoords="offset points",
                          xytext=(0, -13), ha="center", fontsize=7)
    low, high = min(top1 + top5), max(top1 + top5)
    pad = max(0.5, (high - low) * 0.15)
    accuracy.set(ylabel="accuracy (%)", ylim=(max(0, low - 2 * pad), min(100, high) + pad),
                 xticks=x, xticklabels=[], xlim=(-0.5, len(results) - 0.5))
    accuracy.grid(axis="y", alpha=0.3)
    accuracy.legend(loc="best", fontsize=8)
    accuracy.set_title(f"{len(evaluation.image_ids)} images, {len(evaluation.class_names)} "
                       "classes", fontsize=10)
    times = [r.latency_ms for r in results]
    latency.bar(x, times, 0.6, color="tab:gray")
    for i, ms in enumerate(times):
        latency.annotate(f"{ms:.3g}", (i, ms), ha="center", va="bottom", fontsize=7)
    if max(times) > 20 * max(min(times), 1e-9):  # e.g. TensorFlow's call overhead vs LiteRT
        latency.set_yscale("log")
    latency.set(ylabel="ms per image (batch 1)", xticks=x)
    latency.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    first = np.asarray(results[0].confusion, float)
    columns = [*evaluation.class_names, OTHER]
    if not first[:, -1].any():  # no prediction outside the data's classes: no such column
        first, columns = first[:, :-1], columns[:-1]
    rates = first / np.maximum(first.sum(axis=1, keepdims=True), 1)
    image = confusion.imshow(rates, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    if len(evaluation.class_names) <= 30:
        confusion.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
        confusion.set_yticks(range(len(evaluation.class_names)), evaluation.class_names,
                             fontsize=7)
    if len(columns) <= 16:  # the counts themselves, where they fit
        for (row, column), count in np.ndenumerate(first):
            if count:
                confusion.text(column, row, f"{count:.0f}", ha="center", va="center",
                               fontsize=7, color="white" if rates[row, column] > 0.5 else "black")
    confusion.set(xlabel="predicted", ylabel="true class")
    confusion.set_title(f"confusion, {names[0]} (counts; colour: share of the class)",
                        fontsize=10)
    fig.colorbar(image, ax=confusion, fraction=0.04)
    path = Path(path)
    with atomic_path(path, suffix=path.suffix) as temporary:
        fig.savefig(temporary, dpi=110, format=path.suffix[1:])
    plt.close(fig)


__all__ = ["MAX_CLASS_ROWS", "PLOT_SUFFIXES", "format_table", "write_json", "write_plot"]
