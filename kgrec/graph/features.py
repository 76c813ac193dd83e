"""Item features read off the knowledge graph: each item as a TF-IDF row of the KG entities it links to."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kgrec.graph.knowledge import KnowledgeGraph

__all__ = ["kg_tfidf"]


def kg_tfidf(graph: KnowledgeGraph) -> sp.csr_matrix:
    """``(I, N)`` sparse L2-normalised TF-IDF rows of each item's KG neighbours (1-hop, either direction, any relation).

    An entity shared by few items (a director) weighs more than one shared by hundreds (a genre): idf = log(I / items
    linking it). Items without KG links get an all-zero row.
    """
    num_items, num_nodes = len(graph.items), len(graph.items) + len(graph.entities)
    head, tail = graph.triples[:, 0], graph.triples[:, 2]
    rows = np.concatenate([head[head < num_items], tail[tail < num_items]])
    cols = np.concatenate([tail[head < num_items], head[tail < num_items]])
    keep = rows != cols
    binary = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(num_items, num_nodes))
    binary.data[:] = 1.0  # duplicates (two relations to one entity) count once
    idf = np.log(num_items / np.maximum(binary.getnnz(axis=0), 1))
    features = (binary @ sp.diags(idf)).tocsr()
    norms = np.sqrt(np.asarray(features.multiply(features).sum(axis=1))).ravel().clip(min=1e-12)
    return sp.csr_matrix(sp.diags(1.0 / norms) @ features)
