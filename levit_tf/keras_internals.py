"""The Keras private APIs this package uses, in one place (checked against Keras 3.15.1).

Keras has no public equivalent for these two; everything else goes through public API
(regularization losses, for instance, come from the public ``Model.losses``).

- ``sublayers(layer)``: every layer nested in ``layer``, recursively. The public
  ``Model.layers`` lists direct children only; Keras walks the tree with
  ``Layer._flatten_layers``.
- ``compiled_loss(model)``: the loss object ``compile()`` built (``Trainer._compile_loss``: the
  compiled loss with its loss weights, output structure and reduction), or None before
  ``compile``. The public ``Model.compute_loss`` also adds the regularization losses, which a
  two-head objective must add once, not once per head.
"""

from __future__ import annotations

from typing import Any

import keras


def sublayers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """Every layer inside ``layer`` (not ``layer`` itself), depth first."""
    return list(layer._flatten_layers(include_self=False, recursive=True))


def compiled_loss(model: keras.Model) -> Any | None:
    """``model``'s compiled loss, callable as ``loss(y_true, y_pred, sample_weight)``."""
    return getattr(model, "_compile_loss", None)


__all__ = ["compiled_loss", "sublayers"]
