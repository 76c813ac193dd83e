"""Inference: a trained model bound to its graph (load, score, recommend, evaluate, add items), and where models are assembled."""

from kgrec.inference.assemble import ModelShapes, assemble_model, resolve_device
from kgrec.inference.recommender import RUN_FORMAT_VERSION, Recommendation, Recommender, split_matrix

__all__ = ["ModelShapes", "RUN_FORMAT_VERSION", "Recommendation", "Recommender", "assemble_model", "resolve_device", "split_matrix"]
