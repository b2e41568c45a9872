"""Old import paths kept working after a module moved: the old name becomes the new module."""

from __future__ import annotations

import importlib
import sys
import warnings


def alias_module(old: str, new: str) -> None:
    """Makes ``old`` (being imported now) the module ``new``, with a FutureWarning naming both:
    ``import old`` then returns the very module ``new``, so every name and class is the same
    object (``.keras`` files keep their registered names)."""
    warnings.warn(f"{old} moved to {new}; the old path will be removed in levit-tf 0.3",
                  FutureWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)


__all__ = ["alias_module"]
