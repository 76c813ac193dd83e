"""The NetworkX view of the KG: a MultiDiGraph keyed by node key, for path search, drawing and export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import networkx

    from kgrec.graph.knowledge import KnowledgeGraph

__all__ = ["to_networkx", "write_networkx", "read_networkx"]


def to_networkx(graph: KnowledgeGraph) -> networkx.MultiDiGraph:
    """Nodes ``item:<id>`` / ``entity:<id>`` with ``kind`` and ``label``; one edge per triple, keyed by relation."""
    import networkx as nx

    view = nx.MultiDiGraph(name=graph.name)
    num_items = len(graph.items)
    for node in range(graph.num_kg_nodes):
        kind = "item" if node < num_items else graph.entity_kinds[node - num_items]
        view.add_node(graph.node_key(node), kind=kind, label=graph.node_label(node))
    keys = [graph.node_key(n) for n in range(graph.num_kg_nodes)]
    relations = graph.relations.ids
    view.add_edges_from(
        (keys[h], keys[t], relations[r], {"relation": relations[r]}) for h, r, t in graph.triples.tolist()
    )
    return view


def write_networkx(view: networkx.MultiDiGraph, handle) -> None:  # noqa: ANN001 - a text file handle
    """Write the view as NetworkX node-link JSON (``networkx.node_link_graph`` reads it back)."""
    import networkx as nx

    json.dump(nx.node_link_data(view, edges="edges"), handle)


def read_networkx(path: str | Path) -> networkx.MultiDiGraph:
    """Read a view written by :func:`write_networkx`."""
    import networkx as nx

    with open(path, encoding="utf-8") as handle:
        return nx.node_link_graph(json.load(handle), directed=True, multigraph=True, edges="edges")
