"""Scores computed once for serving: the frozen representations, the whole score table when it fits, and each
user's best unseen items ranked ahead of time.

Propagation is the costly part of a request (one pass over the whole graph); a model that no longer trains gives
the same representations every time, so :func:`freeze` computes them once. Training never freezes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.models import PropagationGraph, RecommenderNetwork, Representations, TopK, top_k

__all__ = ["FrozenScores", "best_unseen", "freeze", "row_mask"]


def row_mask(matrix: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """``(B, I)`` bool mask of the nonzeros of ``rows`` of a CSR matrix (a slice per row; no scipy fancy indexing)."""
    starts, stops = matrix.indptr[rows], matrix.indptr[rows + 1]
    counts = stops - starts
    columns = matrix.indices[np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())]
    mask = torch.zeros(len(rows), matrix.shape[1], dtype=torch.bool)
    mask[torch.from_numpy(np.repeat(np.arange(len(rows)), counts)), torch.from_numpy(columns)] = True
    return mask.to(device)


def best_unseen(
    score_rows: Callable[[torch.Tensor], torch.Tensor],
    seen: sp.csr_matrix,
    depth: int,
    batch_size: int,
    device: torch.device,
) -> TopK:
    """Every user's best ``depth`` items outside ``seen``, best first, scored ``batch_size`` users at a time.

    A request for ``k <= depth`` of them is then a slice, not a mask and a top-k over the catalog (which cost ~25 us
    a user on ml-1m, half of a batch answer). Slots past a user's unseen items hold ``-inf`` scores, which answers drop.
    """
    num_users = seen.shape[0]
    depth = min(depth, seen.shape[1])
    indices = torch.empty(num_users, depth, dtype=torch.int64, device=device)
    scores = torch.empty(num_users, depth, device=device)
    for start in range(0, num_users, batch_size):
        rows = np.arange(start, min(start + batch_size, num_users))
        top = top_k(score_rows(torch.from_numpy(rows).to(device)), depth, row_mask(seen, rows, device))
        indices[start : start + len(rows)], scores[start : start + len(rows)] = top.indices, top.scores
    return TopK(indices, scores)


@dataclass(frozen=True)
class FrozenScores:
    """What :func:`freeze` computed: the final representations, and without a context encoder (scores then depend on
    the request) the ``(U, I)`` score table and each user's ranked unseen items, when the table fits its budget."""

    reps: Representations
    table: torch.Tensor | None = None
    ranked: TopK | None = None


@torch.no_grad()
def freeze(
    model: RecommenderNetwork,
    prop_graph: PropagationGraph,
    seen: sp.csr_matrix,
    *,
    batch_size: int,
    table_bytes: int,
    depth: int,
) -> FrozenScores:
    """The model's answers computed once: representations always; the score table (float32) when it fits
    ``table_bytes`` and the model has no context encoder; then also each user's best ``depth`` unseen items.

    A known user's request is then a row lookup and a top-k, instead of a sparse product with the EASE matrix (most of
    a request's time on ml-1m), and the usual request (``k`` up to ``depth``, seen items excluded) is a slice.
    """
    model.eval()
    reps = model(prop_graph)
    device = reps.user.device
    if model.context is not None or model.num_users * model.num_items * 4 > table_bytes:
        return FrozenScores(reps)
    table = torch.empty(model.num_users, model.num_items, device=device)
    for start in range(0, model.num_users, batch_size):
        users = torch.arange(start, min(start + batch_size, model.num_users), device=device)
        table[users] = model.score_all(reps, prop_graph, users)
    return FrozenScores(reps, table, best_unseen(lambda users: table[users], seen, depth, batch_size, device))
