"""The user-item-entity graph as PyG HeteroData, built from training interactions and the KG only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from kgrec.graph.knowledge import KnowledgeGraph

__all__ = ["to_hetero", "build_hetero", "keep_hetero", "hetero_to_tensors", "hetero_from_tensors", "INTERACTS"]

INTERACTS = ("user", "interacts", "item")


# Where a graph keeps its PyG view once built or loaded (the record is frozen; building it again costs seconds at scale).
_CACHE = "_hetero"


def to_hetero(graph: KnowledgeGraph) -> HeteroData:
    """The propagation graph of ``graph``, built once and kept with it (a loaded graph reads it from ``hetero.pt``).

    See :func:`build_hetero` for what it holds.
    """
    cached = graph.__dict__.get(_CACHE)
    if cached is None:
        cached = graph.__dict__[_CACHE] = build_hetero(graph)
    return cached


def keep_hetero(graph: KnowledgeGraph, data: HeteroData) -> None:
    """Give ``graph`` its propagation graph as read from disk, so :func:`to_hetero` does not build it again."""
    graph.__dict__[_CACHE] = data


def build_hetero(graph: KnowledgeGraph) -> HeteroData:
    """Build the propagation graph: ``user``, ``item`` and ``entity`` nodes.

    Edge types: ``(user, interacts, item)`` from *training* interactions (with ``rating`` and
    ``timestamp`` edge attributes where the log has them), and ``(src, kg, dst)`` for KG
    triples between items and entities, with the relation index in ``relation``. With
    ``config.reverse_edges``, each edge type also gets its reverse (``rev_interacts``, ``rev_kg``).
    Validation and test interactions are never added.
    """
    from torch_geometric.data import HeteroData

    data = HeteroData()
    num_items = len(graph.items)
    data["user"].num_nodes = len(graph.users)
    data["item"].num_nodes = num_items
    data["entity"].num_nodes = len(graph.entities)

    # One edge per (user, item): the same item used in several contexts is one link of the graph (its latest row).
    train = graph.split.train.drop_duplicates(["user_id", "item_id"], keep="last")
    users = torch.from_numpy(graph.users.to_index(train["user_id"].to_numpy()))
    items = torch.from_numpy(graph.items.to_index(train["item_id"].to_numpy()))
    store = data[INTERACTS]
    store.edge_index = torch.stack([users, items])
    for column in ("rating", "timestamp"):
        if column in train:
            store[column] = torch.from_numpy(train[column].to_numpy().copy())

    head, relation, tail = (torch.from_numpy(np.ascontiguousarray(graph.triples[:, i])) for i in range(3))
    head_is_item, tail_is_item = head < num_items, tail < num_items
    for src, src_mask in (("item", head_is_item), ("entity", ~head_is_item)):
        for dst, dst_mask in (("item", tail_is_item), ("entity", ~tail_is_item)):
            mask = src_mask & dst_mask
            if not mask.any():
                continue
            src_index = head[mask] - (0 if src == "item" else num_items)
            dst_index = tail[mask] - (0 if dst == "item" else num_items)
            data[src, "kg", dst].edge_index = torch.stack([src_index, dst_index])
            data[src, "kg", dst].relation = relation[mask]

    if graph.config.reverse_edges:
        for (src, name, dst), edge_store in list(data.edge_items()):
            reverse = data[dst, f"rev_{name}", src]
            reverse.edge_index = edge_store.edge_index.flip(0)
            for key in ("relation", "rating", "timestamp"):
                if key in edge_store:
                    reverse[key] = edge_store[key]
    return data


def hetero_to_tensors(data: HeteroData) -> dict:
    """Plain nested dicts of tensors, which ``torch.load(weights_only=True)`` reads back safely."""
    return {
        "num_nodes": {node_type: int(data[node_type].num_nodes) for node_type in data.node_types},
        "edges": {
            "__".join(edge_type): {key: value for key, value in data[edge_type].items()}
            for edge_type in data.edge_types
        },
    }


def hetero_from_tensors(tensors: dict) -> HeteroData:
    """Rebuild the HeteroData written by :func:`hetero_to_tensors`."""
    from torch_geometric.data import HeteroData

    data = HeteroData()
    for node_type, count in tensors["num_nodes"].items():
        data[node_type].num_nodes = int(count)
    for key, attributes in tensors["edges"].items():
        edge_store = data[tuple(key.split("__"))]
        for name, value in attributes.items():
            edge_store[name] = value
    return data
