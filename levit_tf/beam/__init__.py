"""Batch inference on Apache Beam: RunInference over the project's SavedModel.

``SavedModelImageHandler`` (``levit_tf.beam.handler``) is a RunInference ``ModelHandler`` for a
directory from ``levit-tf export-savedmodel``: ``tf.saved_model.load`` and its ``serve_images``
signature on encoded image bytes (the exact LeViT preprocessing runs inside the graph), loaded
once per worker process and warmed on the common image-size buckets at load.
``levit_tf.beam.pipeline`` builds the ready pipeline that ``python -m levit_tf.beam`` runs.
Needs ``pip install "levit-tf[beam]"``; names are imported lazily.
"""

from __future__ import annotations

from levit_tf.utils.lazy import lazy_exports

_EXPORTS = {
    "SavedModelImageHandler": ".handler",
    "ServedModel": ".served",
    "classify_images": ".pipeline",
}

__getattr__, __dir__ = lazy_exports("levit_tf.beam", globals(), _EXPORTS)

__all__ = sorted(_EXPORTS)
