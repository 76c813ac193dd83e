"""Segments: the metrics of a full ranking by how much evidence users and items have.

An average over all users is dominated by active users and head items, where collaborative evidence is plentiful
and side information can add little. Segments say where a model wins or loses:

- **user activity**: a user's training interactions. A segment's metrics are the mean over its users (each user's
  ranking as in the overall figure).
- **item popularity**: a held-out item's training interactions (0: nobody touched it in training). The ranking is
  the same full ranking; only the targets are restricted to the segment's items. For segment ``B`` and a user ``u``
  whose held-out items ``T_u`` include some of ``B``: Recall@K = ``|top-K(u) ∩ T_u ∩ B| / |T_u ∩ B|``, NDCG@K is
  the DCG of the hits in ``T_u ∩ B`` over the ideal DCG of ``|T_u ∩ B|`` items, Hit@K, Precision@K and MRR@K count
  only those targets, and the segment's figure is the mean over the users who have any (other held-out items stay
  in the ranking and may sit above them; nothing is re-ranked). "How well are tail items found" is then
  Recall@K of the ``1-5`` segment.

Segments are closed ranges of training interactions, ``(low, high)`` with ``high`` None for "and above"; the
defaults are :data:`USER_ACTIVITY` and :data:`ITEM_POPULARITY`, and the bounds used are recorded with the figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from kgrec.evaluate.ranking import evaluate_ranking

__all__ = [
    "ITEM_POPULARITY",
    "USER_ACTIVITY",
    "Segment",
    "quantile_segments",
    "rank_by_segment",
    "segment_labels",
    "segment_of",
]

#: ``(low, high)`` training interactions, both included; ``high`` None: no upper bound.
Segment = tuple[int, int | None]

#: Users by training interactions.
USER_ACTIVITY: tuple[Segment, ...] = ((1, 5), (6, 20), (21, 100), (101, None))
#: Held-out items by training interactions (0: an item nobody touched in training).
ITEM_POPULARITY: tuple[Segment, ...] = ((0, 0), (1, 5), (6, 20), (21, 100), (101, None))


def segment_labels(segments: Sequence[Segment]) -> list[str]:
    """``"1-5"``, ``"0"``, ``">100"``: one label per segment."""
    return [str(low) if high == low else f">{low - 1}" if high is None else f"{low}-{high}" for low, high in segments]


def segment_of(counts: np.ndarray, segments: Sequence[Segment]) -> np.ndarray:
    """The index of each count's segment in ``segments``, -1 for a count in none of them.

    Raises:
        ValueError: segments that overlap or are not in increasing order.
    """
    bounds = [(low, np.inf if high is None else high) for low, high in segments]
    for (low, high), (next_low, _) in zip(bounds, bounds[1:]):
        if not low <= high < next_low:
            raise ValueError(f"segments must be increasing and disjoint, got {list(segments)}")
    found = np.full(len(counts), -1, dtype=np.int64)
    for index, (low, high) in enumerate(bounds):
        found[(counts >= low) & (counts <= high)] = index
    return found


def quantile_segments(counts: np.ndarray, parts: int = 4) -> tuple[Segment, ...]:
    """``parts`` segments of about equal size by the counts' quantiles (ties keep equal counts in one segment)."""
    if parts < 1:
        raise ValueError(f"parts must be at least 1, not {parts}")
    edges = np.unique(np.floor(np.quantile(counts, np.linspace(0, 1, parts + 1)[1:-1])).astype(int))
    lows = [int(counts.min())] + [int(edge) + 1 for edge in edges]
    highs: list[int | None] = [int(edge) for edge in edges] + [None]
    return tuple((low, high) for low, high in zip(lows, highs) if high is None or high >= low)


def rank_by_segment(
    score_users: Callable[[torch.Tensor], torch.Tensor],
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix,
    row_activity: np.ndarray,
    item_popularity: np.ndarray,
    *,
    ks: tuple[int, ...] = (10, 20),
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    candidates: np.ndarray | None = None,
    row_users: np.ndarray | None = None,
    user_segments: Sequence[Segment] = USER_ACTIVITY,
    item_segments: Sequence[Segment] = ITEM_POPULARITY,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """A full ranking's metrics by user activity and by held-out item popularity.

    Args:
        score_users: Rows ``(B,)`` to scores ``(B, I)``, as :func:`~kgrec.evaluate.evaluate_ranking` takes.
        truth: ``(R, I)`` held-out targets; rows are users, or (user, context) queries.
        exclude: ``(R, I)`` pairs never ranked.
        row_activity: ``(R,)`` training interactions of each row's user.
        item_popularity: ``(I,)`` training interactions of each item.
        ks: Cut-offs.
        batch_size: Rows scored at a time.
        device: Where scores are ranked.
        candidates: ``(I,)`` bool: only these items are ranked (cold-start evaluation), or None for all.
        row_users: ``(R,)`` each row's user, where rows are queries (users are then counted once).
        user_segments: Bounds of the user-activity segments.
        item_segments: Bounds of the item-popularity segments.

    Returns:
        One row per segment (``by``, ``segment``, ``users``, ``targets``, the metrics; NaN for an empty segment), and
        the per-row tables (column ``row``): the overall ranking's, with ``train_interactions``, under ``"overall"``,
        each non-empty item segment's under its label.
    """
    overall = evaluate_ranking(
        score_users, truth, exclude, ks=ks, batch_size=batch_size, device=device, candidates=candidates
    )
    assert overall.per_user is not None
    per_row = overall.per_user.copy()
    per_row.insert(1, "train_interactions", row_activity[per_row["row"].to_numpy()])
    metrics = [column for column in per_row.columns if column not in ("row", "train_interactions")]
    users_of = (lambda rows: rows) if row_users is None else (lambda rows: row_users[rows])
    rows = []
    which = segment_of(per_row["train_interactions"].to_numpy(), user_segments)
    for index, label in enumerate(segment_labels(user_segments)):
        members = per_row[which == index]
        ranked = members["row"].to_numpy()
        rows.append(
            {
                "by": "user activity",
                "segment": label,
                "users": len(np.unique(users_of(ranked))),
                "targets": int(truth[ranked].nnz),
                **members[metrics].mean().to_dict(),
            }
        )
    tables = {"overall": per_row}
    item_of = segment_of(item_popularity, item_segments)
    for index, label in enumerate(segment_labels(item_segments)):
        restricted = sp.csr_matrix(truth.multiply((item_of == index)[None, :]), dtype=np.bool_)
        restricted.eliminate_zeros()  # an explicit False is no target
        if not restricted.nnz:
            rows.append(
                {
                    "by": "item popularity",
                    "segment": label,
                    "users": 0,
                    "targets": 0,
                    **dict.fromkeys(metrics, float("nan")),
                }
            )
            continue
        result = evaluate_ranking(
            score_users, restricted, exclude, ks=ks, batch_size=batch_size, device=device, candidates=candidates
        )
        assert result.per_user is not None
        tables[label] = result.per_user
        ranked = result.per_user["row"].to_numpy()
        rows.append(
            {
                "by": "item popularity",
                "segment": label,
                "users": len(np.unique(users_of(ranked))),
                "targets": int(restricted.nnz),
                **{name: result.metrics.get(name, float("nan")) for name in metrics},
            }
        )
    return pd.DataFrame(rows), tables
