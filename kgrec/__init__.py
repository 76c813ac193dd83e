"""kgrec: a knowledge-graph-augmented recommender.

Data flows one way, and imports follow it (the import-linter contract in ``pyproject.toml``): ``data`` (read,
validate, split) -> ``graph`` (RDF, NetworkX, PyG) -> ``embed`` (PyKEEN, text) and ``models`` -> ``evaluate`` (metrics)
-> ``inference`` (a trained run) -> ``train``, ``explain`` and ``baselines`` -> ``api`` -> ``serve``, ``tune`` -> ``cli``.

The public API is :mod:`kgrec.api` (``api.build_graph``, ``api.train``, ``api.evaluate``,
``api.recommend``, ...); the names below are re-exported for convenience. They load on first use,
so ``import kgrec`` (and ``kgrec --help``) does not wait for torch, PyG, PyKEEN and transformers.
``train`` and ``evaluate`` are not re-exported: ``kgrec.train`` and ``kgrec.evaluate`` are the
subpackages of those names.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from kgrec._version import __version__

if TYPE_CHECKING:
    from kgrec import api
    from kgrec.api import build_graph, load_dataset, read_dataset, recommend
    from kgrec.config import RunConfig, load_config
    from kgrec.data import Dataset
    from kgrec.errors import InputError, KgrecError
    from kgrec.evaluate import EvaluationResult
    from kgrec.graph import KnowledgeGraph, load_graph
    from kgrec.inference import Recommendation, Recommender

# name -> the module that defines it
_EXPORTS = {
    "build_graph": "kgrec.api",
    "load_dataset": "kgrec.api",
    "read_dataset": "kgrec.api",
    "recommend": "kgrec.api",
    "RunConfig": "kgrec.config",
    "load_config": "kgrec.config",
    "Dataset": "kgrec.data",
    "InputError": "kgrec.errors",
    "KgrecError": "kgrec.errors",
    "EvaluationResult": "kgrec.evaluate",
    "KnowledgeGraph": "kgrec.graph",
    "load_graph": "kgrec.graph",
    "Recommendation": "kgrec.inference",
    "Recommender": "kgrec.inference",
}

__all__ = [
    "Dataset",
    "EvaluationResult",
    "InputError",
    "KgrecError",
    "KnowledgeGraph",
    "Recommendation",
    "Recommender",
    "RunConfig",
    "__version__",
    "api",
    "build_graph",
    "load_config",
    "load_dataset",
    "load_graph",
    "read_dataset",
    "recommend",
]
assert set(__all__) == {"__version__", "api", *_EXPORTS}  # one list to keep, checked at import


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        if not name.startswith("_") and importlib.util.find_spec(f"kgrec.{name}") is not None:
            return importlib.import_module(f"kgrec.{name}")  # a subpackage, e.g. kgrec.api, kgrec.train
        raise AttributeError(f"module 'kgrec' has no attribute '{name}'")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
