"""kgrec: a knowledge-graph-augmented recommender.

Data flows one way: ``data`` (read, validate, split) -> ``graph`` (RDF, NetworkX, PyG) ->
``embed`` (PyKEEN, text) -> ``models`` -> ``train`` -> ``evaluate`` / ``explain``.
"""

from kgrec._version import __version__

from kgrec.api import build_graph, load_dataset, read_dataset
from kgrec.config import RunConfig, load_config
from kgrec.data import Dataset
from kgrec.errors import InputError, KgrecError
from kgrec.graph import KnowledgeGraph

__all__ = [
    "Dataset",
    "InputError",
    "KgrecError",
    "KnowledgeGraph",
    "RunConfig",
    "__version__",
    "build_graph",
    "load_config",
    "load_dataset",
    "read_dataset",
]
