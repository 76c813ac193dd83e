"""Names a package re-exports, imported on first use: ``import kgrec.graph`` (for ``kgrec query``) or
``kgrec.inference`` (for the stored ranking) must not wait seconds for torch and PyG that only some names need."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each name of ``exports`` (name -> defining module) when it
    is first read, and keeps it in the package so the next read is a plain lookup."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
