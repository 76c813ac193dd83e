"""A run's metrics by segment: users by their training activity, held-out items by their training popularity
(definitions in :mod:`kgrec.evaluate.segments`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kgrec.evaluate import ITEM_POPULARITY, USER_ACTIVITY, Segment
from kgrec.evaluate.segments import rank_by_segment
from kgrec.inference.evaluation import check_evaluation, name_rows, score_function

if TYPE_CHECKING:
    from kgrec.inference.recommender import Recommender

__all__ = ["SegmentEvaluation", "evaluate_segments", "item_segment_name"]


def item_segment_name(evaluation: str, label: str) -> str:
    """The name a per-user table of an item segment is stored under: ``test@items:1-5``."""
    return f"{evaluation}@items:{label}"


@dataclass(frozen=True)
class SegmentEvaluation:
    """Metrics by segment.

    Attributes:
        table: One row per segment: ``by`` (``user activity`` or ``item popularity``), ``segment`` (its label),
            ``users`` (users with a target in it), ``targets`` (held-out interactions in it) and the metrics (NaN
            for an empty segment).
        segments: The bounds used, ``{"user activity": [(1, 5), ...], "item popularity": [...]}``.
        per_user: Per-user tables: the overall ranking (with each user's ``train_interactions``) under
            ``"overall"``, each item segment under its label, for paired comparisons by segment.
    """

    table: pd.DataFrame
    segments: dict[str, list[Segment]]
    per_user: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """``{by: {label: {"users", "targets", metrics...}}, "segments": bounds}`` for ``metrics.json``."""
        out: dict[str, Any] = {"segments": {by: [list(s) for s in bounds] for by, bounds in self.segments.items()}}
        for row in self.table.to_dict("records"):
            out.setdefault(row.pop("by"), {})[row.pop("segment")] = row
        return out


def evaluate_segments(
    recommender: Recommender,
    split: str = "test",
    ks: tuple[int, ...] | None = None,
    candidates: str = "all",
    user_segments: tuple[Segment, ...] = USER_ACTIVITY,
    item_segments: tuple[Segment, ...] = ITEM_POPULARITY,
) -> SegmentEvaluation:
    """The full ranking of ``split`` measured by user activity and by held-out item popularity (training counts);
    see :func:`kgrec.evaluate.segments.rank_by_segment`."""
    check_evaluation(recommender, split, candidates, ks)
    train = recommender.interactions("train")
    truth, exclude, candidate_items, users, tokens = recommender.tasks.ranking(split, candidates)
    row_users = np.arange(truth.shape[0]) if users is None else users
    table, per_row = rank_by_segment(
        score_function(recommender, users, tokens),
        truth,
        exclude,
        train.getnnz(axis=1)[row_users],
        train.getnnz(axis=0),
        ks=ks or recommender.config.eval.ks,
        batch_size=recommender.config.eval.batch_size,
        device=recommender.device,
        candidates=candidate_items,
        row_users=row_users,
        user_segments=user_segments,
        item_segments=item_segments,
    )
    tables = {name: name_rows(recommender, rows, users) for name, rows in per_row.items()}
    bounds = {"user activity": list(user_segments), "item popularity": list(item_segments)}
    return SegmentEvaluation(table, bounds, tables)
