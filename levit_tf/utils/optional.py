"""Optional dependencies: which extra brings each one, checked without importing it.

``pip install "levit-tf[cpu]"`` runs every main path (convert safetensors / HF dirs, predict,
finetune on a folder, export-savedmodel, export-tflite, verify). Pieces beyond that name the
extra that brings them: a missing one is one clear message, never a crash mid-run.
"""

from __future__ import annotations

import importlib.util

#: import name -> (PyPI package, levit-tf extra that installs it)
OPTIONAL = {
    "matplotlib": ("matplotlib", "plots"),
    "sklearn": ("scikit-learn", "digits"),
    "tensorflow_datasets": ("tensorflow-datasets", "tfds"),
    "torch": ("torch", "torch"),
    "huggingface_hub": ("huggingface_hub", "hub"),
    "ai_edge_litert": ("ai-edge-litert", "cpu"),
    "apache_beam": ("apache-beam", "beam"),
    "keras_hub": ("keras-hub", "keras-hub"),
}


class MissingDependency(ImportError):
    """An optional package is not installed; the message names it and its extra."""


def is_available(module: str) -> bool:
    """Whether ``module`` can be imported (found on the path; not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def install_hint(module: str) -> str:
    """'scikit-learn (pip install "levit-tf[digits]")'."""
    package, extra = OPTIONAL[module]
    return f'{package} (pip install "levit-tf[{extra}]")'


def require(module: str, purpose: str) -> None:
    """Raises MissingDependency '<purpose> needs <package> (pip install ...)' if missing."""
    if not is_available(module):
        raise MissingDependency(f"{purpose} needs {install_hint(module)}")


__all__ = ["OPTIONAL", "MissingDependency", "install_hint", "is_available", "require"]
