"""Pass or fail for ``levit-tf verify``: may this .tflite file stand in for its Keras model?

Two checks per file, on the same inputs (held-out images, or seeded N(0, 1) pixel_values):

1. **Logit error** = RMS(export - keras) / std(keras logits), over every image and class: the
   error in units of the logits' own spread, so one bound serves any model, class count or
   logit scale. Its bound depends on the quantization mode (``MAX_LOGIT_ERROR``). An unrelated
   model of the same architecture (independent logits of a similar spread) scores about
   sqrt(2) = 1.41, far above every bound.
2. **Decisive top-1**: every image whose Keras top-1 margin (best minus second logit) is at
   least ``DECISIVE_MARGIN`` times the allowed error (bound x std) keeps its class. An export
   within its error bound only flips images the Keras model itself barely separates; these are
   excluded, so a random-weight model (tiny margins) is judged as fairly as a fine-tuned one.

Bounds (normalized logit error), each well above the worst correct export measured and well
below an unrelated model's (docs/guides/verify.md; ``tests/tflite/test_verdict.py``):
float32 1e-4, float16 1e-2, dynamic 0.15, int16x8 0.15, int8 0.3. Override per mode with
``bounds={"int8": 0.2}`` (CLI: ``--max-error int8=0.2``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

#: Largest allowed normalized logit error per quantization mode (see the module text).
MAX_LOGIT_ERROR: dict[str, float] = {
    "float32": 1e-4,
    "float16": 1e-2,
    "dynamic": 0.15,
    "int16x8": 0.15,
    "int8": 0.3,
}
#: Images whose Keras top-1 margin is at least this many allowed errors must keep their class.
DECISIVE_MARGIN = 4.0


@dataclass
class Verdict:
    """The outcome of both checks on one file. ``agreement`` is None when no image was
    decisive (then the error check decides alone)."""

    passed: bool
    mode: str
    logit_error: float
    bound: float
    decisive_images: int
    decisive_kept: int
    reasons: list[str] = field(default_factory=list)

    @property
    def agreement(self) -> float | None:
        return self.decisive_kept / self.decisive_images if self.decisive_images else None

    def summary(self) -> str:
        """``PASS`` or ``FAIL (reason; reason)``."""
        return "PASS" if self.passed else f"FAIL ({'; '.join(self.reasons)})"

    def as_dict(self) -> dict:
        return {**asdict(self), "agreement": self.agreement}


def logit_error(keras_logits: np.ndarray, logits: np.ndarray) -> float:
    """RMS(logits - keras_logits) / std(keras_logits); both (N, K)."""
    reference = np.asarray(keras_logits, np.float64)
    difference = np.asarray(logits, np.float64) - reference
    spread = reference.std()
    if spread == 0:
        return 0.0 if not difference.any() else float("inf")
    return float(np.sqrt(np.mean(difference ** 2)) / spread)


def mode_bound(mode: str, bounds: dict[str, float] | None = None) -> float:
    """The error bound of ``mode`` (``bounds`` overriding ``MAX_LOGIT_ERROR``). A file without
    our metadata (mode "unknown") is held to the float32 bound."""
    table = {**MAX_LOGIT_ERROR, **(bounds or {})}
    return table.get(mode, table["float32"])


def judge(keras_logits: np.ndarray, logits: np.ndarray, mode: str,
          bounds: dict[str, float] | None = None) -> Verdict:
    """Both checks of the module text for one file: ``logits`` (N, K) of the export and
    ``keras_logits`` (N, K) of its Keras model on the same N inputs."""
    reference = np.asarray(keras_logits, np.float64)
    logits = np.asarray(logits, np.float64)
    bound = mode_bound(mode, bounds)
    error = logit_error(reference, logits)
    ranked = np.sort(reference, axis=1)
    margin = ranked[:, -1] - ranked[:, -2] if reference.shape[1] > 1 else np.full(
        len(reference), np.inf)
    decisive = margin >= DECISIVE_MARGIN * bound * reference.std()
    kept = int(np.sum(logits[decisive].argmax(1) == reference[decisive].argmax(1)))
    reasons = []
    if not error <= bound:
        reasons.append(f"logit error {error:.3g} > {bound:g}")
    if kept < int(decisive.sum()):
        reasons.append(f"top-1 changed on {int(decisive.sum()) - kept} of "
                       f"{int(decisive.sum())} decisive images")
    return Verdict(not reasons, mode, error, bound, int(decisive.sum()), kept, reasons)


def parse_bounds(items: list[str] | None) -> dict[str, float]:
    """``["int8=0.2", ...]`` (``--max-error``) -> ``{"int8": 0.2}``; ValueError names the
    item that is not MODE=POSITIVE_NUMBER with a known mode."""
    bounds: dict[str, float] = {}
    for item in items or ():
        mode, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or mode not in MAX_LOGIT_ERROR or not number > 0:
            raise ValueError(f"--max-error {item}: expected MODE=NUMBER > 0 with MODE one of "
                             f"{', '.join(MAX_LOGIT_ERROR)}")
        bounds[mode] = number
    return bounds


__all__ = ["DECISIVE_MARGIN", "MAX_LOGIT_ERROR", "Verdict", "judge", "logit_error", "mode_bound",
           "parse_bounds"]
