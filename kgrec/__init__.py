"""kgrec: a knowledge-graph-augmented recommender.

Data flows one way: ``data`` (read, validate, split) -> ``graph`` (RDF, NetworkX, PyG) ->
``embed`` (PyKEEN, text) -> ``models`` -> ``train`` -> ``evaluate`` / ``explain``.
"""

from kgrec._version import __version__
from kgrec.api import build_graph, evaluate, load_dataset, read_dataset, recommend, train
from kgrec.config import RunConfig, load_config
from kgrec.data import Dataset
from kgrec.errors import InputError, KgrecError
from kgrec.evaluate import EvaluationResult
from kgrec.graph import KnowledgeGraph
from kgrec.inference import Recommendation, Recommender

__all__ = [
    "Dataset",
    "EvaluationResult",
    "Recommendation",
    "Recommender",
    "InputError",
    "KgrecError",
    "KnowledgeGraph",
    "RunConfig",
    "__version__",
    "build_graph",
    "evaluate",
    "load_config",
    "load_dataset",
    "read_dataset",
    "recommend",
    "train",
]
