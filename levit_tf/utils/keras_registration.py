"""Our Keras classes are registered whenever Keras is loaded, so ``.keras`` files load in a fresh
process: ``import keras, levit_tf; keras.saving.load_model(path)``.

Keras finds a class of a ``.keras`` file by its registered name (``levit_tf>LevitModel``),
which exists once the module defining the class has run its ``register_keras_serializable``
decorator; Keras never imports a third-party module named in a file. The package root is lazy
(``import levit_tf`` loads no Keras), so ``import levit_tf`` calls ``install()``. For each
trigger package in ``REGISTRATIONS`` (``keras``; ``keras_hub`` for the keras-hub classes) it
imports that trigger's modules:

- at once, when the trigger package is already loaded;
- otherwise right after the trigger's own import finishes (a finder on ``sys.meta_path``
  wraps the trigger package's loader), so ``levit-tf --help`` and argument errors still load no
  Keras or TensorFlow.

When Keras is first imported from inside one of our own modules
(``import levit_tf.models.levit.layers`` runs ``import keras``), that module is still
half-initialized, and importing a module that needs it would fail. The finder therefore also
watches ``levit_tf.*`` imports and defers the registration until the outermost one of them has
finished.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from typing import Any

#: Trigger package -> the modules whose import registers our Keras classes for it: every
#: ``levit_tf>`` class (layers, models, folded inference layers, losses) once Keras loads.
#: tests/package/test_keras_registration.py checks the lists against every module of the
#: package that registers a class.
REGISTRATIONS: dict[str, tuple[str, ...]] = {
    "keras": (
        "levit_tf.models.levit.losses",
        "levit_tf.models.levit.layers",
        "levit_tf.models.levit.modeling_levit",
        "levit_tf.models.levit.inference",
    ),
    "keras_hub": (
        "levit_tf.keras_hub.backbone",
        "levit_tf.keras_hub.image_converter",
        "levit_tf.keras_hub.preprocessor",
        "levit_tf.keras_hub.image_classifier",
    ),
}

_WATCHED_PACKAGE = "levit_tf."
_lock = threading.RLock()
_depth = [0]  # our modules being executed right now (nested imports)
_loaded: set[str] = set()  # triggers whose import finished (importlib still flags them)
_registered: set[str] = set()
_registering: set[str] = set()


def _trigger_loaded(trigger: str) -> bool:
    """Whether ``trigger`` is imported completely (not just started)."""
    module = sys.modules.get(trigger)
    if module is None:
        return False
    spec = getattr(module, "__spec__", None)
    return trigger in _loaded or not getattr(spec, "_initializing", False)


def register_now(trigger: str = "keras") -> None:
    """Imports the modules of ``trigger`` (once): afterwards Keras resolves their classes."""
    with _lock:
        if trigger in _registered or trigger in _registering:
            return
        _registering.add(trigger)
    try:
        for name in REGISTRATIONS[trigger]:
            importlib.import_module(name)
        _registered.add(trigger)
    finally:
        _registering.discard(trigger)


def _maybe_register() -> None:
    if _depth[0]:
        return
    for trigger in REGISTRATIONS:
        if trigger not in _registered and _trigger_loaded(trigger):
            register_now(trigger)


class _NotifyingLoader(importlib.abc.Loader):
    """Wraps a module's loader: counts our modules in progress, and registers after the
    import of a trigger package or of the outermost ``levit_tf.*`` module has finished."""

    def __init__(self, loader: importlib.abc.Loader, name: str, ours: bool) -> None:
        self._loader = loader
        self._name = name
        self._ours = ours

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        if self._ours:
            with _lock:
                _depth[0] += 1
        try:
            self._loader.exec_module(module)
        finally:
            if self._ours:
                with _lock:
                    _depth[0] -= 1
        # reached only after a successful import (a failed one raised above)
        if not self._ours:
            _loaded.add(self._name)  # importlib still marks it initializing here
        _maybe_register()

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, get_code ...
        return getattr(self._loader, name)


class _TriggerWatcher(importlib.abc.MetaPathFinder):
    """Finds trigger packages and ``levit_tf.*`` with the other finders and wraps their
    loaders, until every trigger has registered."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        ours = fullname.startswith(_WATCHED_PACKAGE)
        pending = fullname in REGISTRATIONS and fullname not in _registered
        if not (ours or pending) or len(_registered) == len(REGISTRATIONS):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _NotifyingLoader(spec.loader, fullname, ours)
        return spec


_WATCHER = _TriggerWatcher()


def install() -> None:
    """Registers our classes for each trigger package now if it is loaded, else once it is
    (see the module text). Called by ``levit_tf/__init__.py``; idempotent."""
    _maybe_register()
    if len(_registered) < len(REGISTRATIONS) and _WATCHER not in sys.meta_path:
        sys.meta_path.insert(0, _WATCHER)


def registered(trigger: str = "keras") -> bool:
    """Whether the modules of ``trigger`` have been imported through this module."""
    return trigger in _registered


__all__ = ["REGISTRATIONS", "install", "register_now", "registered"]
