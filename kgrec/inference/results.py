"""What a recommendation is: :class:`Recommendation` (one user's top-K) and its long-table form.

Plain numpy and pandas, nothing of torch: the quick answers of a saved run (:mod:`kgrec.inference.ranked`) are
made of these too.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["Recommendation", "recommendations_frame"]


@dataclass(frozen=True)
class Recommendation:
    """Top-K items for one user: external ids, titles and scores, best first.

    With explanations (``kgrec recommend --explain``): the best path for each item (a dict, see
    :class:`kgrec.explain.ExplanationPath`, or None without one) and how the item's score divides
    among the parts the run has (``{"graph": .., "text": .., "ease": ..}``, see
    :func:`kgrec.explain.score_shares`).
    """

    user_id: str
    item_ids: list[str]
    titles: list[str]
    scores: list[float]
    explanations: list[dict | None] | None = None
    shares: list[dict[str, float]] | None = None


def recommendations_frame(recommendations: list[Recommendation]) -> pd.DataFrame:
    """Recommendations as one long DataFrame: ``user_id, rank, item_id, title, score`` (rank 1 is best)."""
    rows = [
        (rec.user_id, rank, item, title, score)
        for rec in recommendations
        for rank, (item, title, score) in enumerate(zip(rec.item_ids, rec.titles, rec.scores), start=1)
    ]
    return pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "title", "score"])
