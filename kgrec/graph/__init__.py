"""The knowledge graph (RDF, NetworkX) and the user-item-entity graph (PyG) built from a Dataset.

:class:`KnowledgeGraph` is a plain record; everything done with it is a function here: build it
(:func:`build_graph`), save and load it (:func:`save_graph`, :func:`load_graph`), view it as PyG
``HeteroData`` (:func:`to_hetero`), NetworkX (:func:`to_networkx`) or rdflib (:func:`to_rdflib`), export it
for RecBole (:func:`export_recbole`).
"""

from kgrec.graph.build import build_graph
from kgrec.graph.export import export_recbole
from kgrec.graph.hetero import to_hetero
from kgrec.graph.knowledge import KnowledgeGraph
from kgrec.graph.rdf import to_rdflib
from kgrec.graph.stats import format_stats
from kgrec.graph.store import load_graph, save_graph
from kgrec.graph.views import to_networkx

__all__ = [
    "KnowledgeGraph", "build_graph", "export_recbole", "format_stats", "load_graph", "save_graph", "to_hetero", "to_networkx",
    "to_rdflib",
]
