"""Timing helpers shared by the benchmarks: the median of timed runs after warm-up, and the
``ROW {json}`` lines worker processes report through."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any


def median_ms(run: Callable[[], Any], warmup: int, runs: int) -> float:
    """Median wall time of ``run()`` in ms over ``runs`` calls, after ``warmup`` untimed ones."""
    import numpy as np

    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def emit(**row: Any) -> None:
    """Prints one result row for the coordinating process (``ROW {json}``)."""
    print("ROW " + json.dumps(row), flush=True)


__all__ = ["emit", "median_ms"]
