"""Accuracy of every artefact (.keras, SavedModel, each .tflite mode) on the user's labelled data.

``evaluate(["best.keras", "serving/1", "levit_int8.tflite"], "heldout/")`` returns an
``Evaluation`` whose ``results`` hold one ``ArtefactResult`` per model (top-1, top-5, per-class
accuracy, agreement with the first model, latency, size); ``levit-tf evaluate`` prints it as a
table. Lazy (PEP 562): importing the package, or its ``cli`` module, loads no TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from levit_tf.utils.lazy import lazy_exports

_EXPORTS = {
    "ArtefactResult": ".results",
    "Evaluation": ".results",
    "EvaluationError": ".sources",
    "evaluate": ".runner",
}

if TYPE_CHECKING:
    from levit_tf.evaluation.results import ArtefactResult, Evaluation
    from levit_tf.evaluation.runner import evaluate
    from levit_tf.evaluation.sources import EvaluationError


__getattr__, __dir__ = lazy_exports("levit_tf.evaluation", globals(), _EXPORTS)


__all__ = ["ArtefactResult", "Evaluation", "EvaluationError", "evaluate"]
