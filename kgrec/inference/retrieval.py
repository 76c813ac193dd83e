"""Approximate candidates from a FAISS HNSW inner-product index of the item vectors (``retrieval="faiss"``).

For large catalogs: scores only the items the index returns instead of every item. It needs scores that are a dot
product of one user vector and one item vector, so a dot scorer and no blended score term (EASE, repeat use).
"""

from __future__ import annotations

from typing import Any

import torch

from kgrec.errors import InputError
from kgrec.models import DotScorer, RecommenderNetwork, Representations, TopK

__all__ = ["item_index", "retrieve"]


def item_index(model: RecommenderNetwork, reps: Representations) -> Any:
    """A FAISS HNSW inner-product index of the final item vectors.

    Raises:
        InputError: without faiss, or for a model whose scores are not user · item.
    """
    try:
        import faiss
    except ImportError:
        raise InputError("retrieval 'faiss' needs the faiss-cpu package: pip install 'kgrec[faiss]'") from None
    if not isinstance(model.scorer, DotScorer):
        raise InputError("retrieval 'faiss' needs a dot scorer (train with model.scorer=dot)")
    for term in model.active_terms():
        raise InputError(f"retrieval 'faiss' needs no blended {term.title} term (train with {term.switch_off})")
    items = reps.item.detach().float().cpu().numpy()
    index = faiss.IndexHNSWFlat(items.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = 128
    index.add(items)
    return index


def retrieve(index: Any, users: torch.Tensor, k: int, exclude: torch.Tensor | None) -> TopK:
    """Top-``k`` by the index, asking for enough extra candidates to skip each user's seen items."""
    extra = 0 if exclude is None else int(exclude.sum(1).max())
    scores, items = index.search(users.detach().float().cpu().numpy(), min(index.ntotal, k + extra))
    scores, items = torch.from_numpy(scores), torch.from_numpy(items)
    if exclude is not None:
        hide = exclude.cpu().gather(1, items.clamp(min=0)) | (items < 0)
        scores = scores.masked_fill(hide, float("-inf"))
    best = scores.topk(min(k, scores.size(1)), dim=1)
    return TopK(items.gather(1, best.indices), best.values)
