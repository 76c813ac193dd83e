"""The knowledge graph (RDF, NetworkX) and the user-item-entity graph (PyG) built from a Dataset."""

from kgrec.graph.export import export_recbole
from kgrec.graph.knowledge import KnowledgeGraph, build_graph
from kgrec.graph.stats import format_stats

__all__ = ["KnowledgeGraph", "build_graph", "export_recbole", "format_stats"]
