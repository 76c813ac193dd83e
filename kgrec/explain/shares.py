"""Score shares: how a recommended item's score divides among the parts of the model that made it."""

from __future__ import annotations

from typing import Any

import torch

from kgrec.inference import Recommender

__all__ = ["score_shares"]


@torch.no_grad()
def score_shares(
    recommender: Recommender,
    user_ids: list[str],
    item_ids: list[list[str]],
    context: dict[str, Any] | None = None,
) -> list[list[dict[str, float]]]:
    """For each user and each of their items, each part's signed share of what lifts the item's score above an average item's.

    Parts: ``graph`` (the propagated graph view, KG included) and ``text`` (the text view), split by their Shapley
    values in the learned score (see :meth:`~kgrec.models.RecommenderNetwork.score_shares`), and each blended score
    term by its name (``ease``, ``repeat``; :mod:`kgrec.models.terms`). Shares are divided by the sum of the parts'
    absolute contributions, so they sum to 1 when every part raises the score; a negative share lowered it. Only
    the parts the run has are given. All users are scored in one model call (one propagation), whatever their number.
    """
    recommender.check_users(list(user_ids))
    recommender.check_items([item for items in item_ids for item in items])
    width = max((len(items) for items in item_ids), default=0)
    if not width:
        return [[] for _ in item_ids]
    graph, device = recommender.graph, recommender.device
    # Rows shorter than the widest repeat their first item (or item 0); the padding is dropped below.
    padded = [list(graph.items.to_index(list(items))) for items in item_ids]
    padded = [row + [row[0] if row else 0] * (width - len(row)) for row in padded]
    users = torch.from_numpy(graph.users.to_index(list(user_ids))).to(device)
    items = torch.tensor(padded, dtype=torch.long, device=device)
    parts = recommender.model.score_shares(
        recommender.prop_graph, users, items, recommender.stated_context(list(user_ids), context)
    )
    names = (
        ["graph"]
        + (["text"] if recommender.model.fusion is not None else [])
        + [t.name for t in recommender.model.active_terms()]
    )
    values = torch.stack([parts[name] for name in names]).double().cpu()  # (parts, B, K)
    shares = values / values.abs().sum(0).clamp(min=1e-12)
    return [
        [{name: float(shares[p, row, column]) for p, name in enumerate(names)} for column in range(len(items_of_user))]
        for row, items_of_user in enumerate(item_ids)
    ]
