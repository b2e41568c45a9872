"""PEP 562 lazy exports: a package names what it exports; each name imports its module on
first use. A leaf module (stdlib only), so ``import levit_tf`` stays free of TensorFlow."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, namespace: dict[str, Any], exports: dict[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a public name to the module
    that defines it (absolute, or relative to ``package`` when it starts with '.'). A resolved
    name is stored in ``namespace`` (the package's globals()), so a submodule of the same name
    never shadows it and later look-ups skip the hook."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *exports])

    return __getattr__, __dir__


__all__ = ["lazy_exports"]
