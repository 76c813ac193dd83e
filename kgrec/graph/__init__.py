"""The knowledge graph (RDF, NetworkX) and the user-item-entity graph (PyG) built from a Dataset.

:class:`KnowledgeGraph` is a plain record; everything done with it is a function here: build it
(:func:`build_graph`), save and load it (:func:`save_graph`, :func:`load_graph`), view it as PyG
``HeteroData`` (:func:`to_hetero`), NetworkX (:func:`to_networkx`) or rdflib (:func:`to_rdflib`), export it
for RecBole (:func:`export_recbole`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kgrec._lazy import lazy_exports

if TYPE_CHECKING:
    from kgrec.graph.build import build_graph
    from kgrec.graph.export import export_recbole
    from kgrec.graph.features import kg_tfidf
    from kgrec.graph.hetero import to_hetero
    from kgrec.graph.knowledge import KnowledgeGraph
    from kgrec.graph.rdf import to_rdflib
    from kgrec.graph.stats import format_stats
    from kgrec.graph.store import load_graph, save_graph
    from kgrec.graph.views import to_networkx

# name -> the module that defines it. Loaded on first use, so that kgrec.graph.sparql (``kgrec query``) does not
# wait seconds for torch and PyG, which only the PyG view needs.
_EXPORTS = {
    "build_graph": "kgrec.graph.build",
    "export_recbole": "kgrec.graph.export",
    "to_hetero": "kgrec.graph.hetero",
    "KnowledgeGraph": "kgrec.graph.knowledge",
    "to_rdflib": "kgrec.graph.rdf",
    "format_stats": "kgrec.graph.stats",
    "kg_tfidf": "kgrec.graph.features",
    "load_graph": "kgrec.graph.store",
    "save_graph": "kgrec.graph.store",
    "to_networkx": "kgrec.graph.views",
}

__all__ = [
    "KnowledgeGraph",
    "build_graph",
    "export_recbole",
    "format_stats",
    "kg_tfidf",
    "load_graph",
    "save_graph",
    "to_hetero",
    "to_networkx",
    "to_rdflib",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
