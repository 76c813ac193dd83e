"""Inference: a trained model bound to its graph (load, score, recommend, evaluate, add items), and where models are assembled.

:class:`Recommender` is the facade; its parts are small modules (``run_store``, ``tasks``, ``serving``,
``retrieval``, ``cold_start``, ``ranked``). Names load on first use, so the quick answer of a saved run
(:mod:`kgrec.inference.ranked`, numpy and pandas only) does not wait seconds for torch and PyG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kgrec._lazy import lazy_exports

if TYPE_CHECKING:
    from kgrec.inference.assemble import ModelShapes, assemble_model, repeat_enabled, resolve_device
    from kgrec.inference.recommender import Recommender
    from kgrec.inference.results import Recommendation, recommendations_frame
    from kgrec.inference.run_files import PER_USER_NAME, RUN_FORMAT_VERSION
    from kgrec.inference.run_store import read_per_user, write_per_user
    from kgrec.inference.tasks import split_matrix

# name -> the module that defines it
_EXPORTS = {
    "ModelShapes": "kgrec.inference.assemble",
    "assemble_model": "kgrec.inference.assemble",
    "repeat_enabled": "kgrec.inference.assemble",
    "resolve_device": "kgrec.inference.assemble",
    "Recommender": "kgrec.inference.recommender",
    "Recommendation": "kgrec.inference.results",
    "recommendations_frame": "kgrec.inference.results",
    "PER_USER_NAME": "kgrec.inference.run_files",
    "RUN_FORMAT_VERSION": "kgrec.inference.run_files",
    "read_per_user": "kgrec.inference.run_store",
    "write_per_user": "kgrec.inference.run_store",
    "split_matrix": "kgrec.inference.tasks",
}

__all__ = [
    "PER_USER_NAME",
    "RUN_FORMAT_VERSION",
    "ModelShapes",
    "Recommendation",
    "Recommender",
    "assemble_model",
    "read_per_user",
    "recommendations_frame",
    "repeat_enabled",
    "resolve_device",
    "split_matrix",
    "write_per_user",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
