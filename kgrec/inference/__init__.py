"""Inference: a trained model bound to its graph (load, score, recommend, evaluate, add items), and where models are assembled."""

from kgrec.inference.assemble import ModelShapes, assemble_model, repeat_enabled, resolve_device
from kgrec.inference.recommender import (
    PER_USER_NAME,
    RUN_FORMAT_VERSION,
    Recommendation,
    Recommender,
    read_per_user,
    recommendations_frame,
    split_matrix,
    write_per_user,
)

__all__ = [
    "ModelShapes", "PER_USER_NAME", "RUN_FORMAT_VERSION", "Recommendation", "Recommender", "assemble_model", "read_per_user", "recommendations_frame",
    "repeat_enabled", "resolve_device", "split_matrix", "write_per_user",
]
