"""Evaluating a trained run: full rankings on validation or test, the blend search's one-pass metrics, and the
rating head's errors, each over the ranking tasks of :mod:`kgrec.inference.tasks`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from kgrec.errors import InputError
from kgrec.evaluate import EvaluationResult, evaluate_ranking
from kgrec.evaluate import evaluate_blends as _evaluate_blends
from kgrec.evaluate import rating_errors as _rating_errors

if TYPE_CHECKING:
    from kgrec.inference.recommender import Recommender

__all__ = [
    "ScoreFunction",
    "check_evaluation",
    "evaluate",
    "evaluate_blends",
    "name_rows",
    "rating_errors",
    "score_function",
]

#: ``rows (B,) -> scores (B, I)``: users, or (user, context) queries.
ScoreFunction = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def score_function(
    recommender: Recommender, users: np.ndarray | None = None, tokens: np.ndarray | None = None
) -> ScoreFunction:
    """A function ``rows (B,) -> scores (B, I)`` over one forward pass of the model.

    Rows are user indices; with ``users (Q,)`` and context ``tokens (Q, F)``, rows are those queries.
    """
    recommender.model.eval()
    reps = recommender.model(recommender.prop_graph)
    if users is None:
        return lambda rows: recommender.model.score_all(reps, recommender.prop_graph, rows)
    users_t = torch.from_numpy(users).to(recommender.device)
    if tokens is None:  # queries in context for a run without a context encoder
        return lambda rows: recommender.model.score_all(reps, recommender.prop_graph, users_t[rows])
    tokens_t = torch.from_numpy(tokens).to(recommender.device)
    return lambda rows: recommender.model.score_all(reps, recommender.prop_graph, users_t[rows], tokens_t[rows])


def evaluate(
    recommender: Recommender,
    split: str = "test",
    ks: tuple[int, ...] | None = None,
    candidates: str = "all",
    topk_only: bool = False,
) -> EvaluationResult:
    """Full ranking on ``valid`` (training items masked) or ``test`` (training and validation items masked).

    ``candidates="unseen"`` ranks only the items with no interaction in the masked parts (the
    cold-start question: among items never seen in training, which will this user pick?).
    ``topk_only`` skips AUC, coverage and diversity (validation during training needs only @K).
    """
    check_evaluation(recommender, split, candidates, ks)
    truth, exclude, candidate_items, users, tokens = recommender.tasks.ranking(split, candidates)
    result = evaluate_ranking(
        score_function(recommender, users, tokens),
        truth,
        exclude,
        ks=ks or recommender.config.eval.ks,
        batch_size=recommender.config.eval.batch_size,
        item_features=recommender.tasks.category_features,
        device=recommender.device,
        candidates=candidate_items,
        topk_only=topk_only,
    )
    if result.per_user is not None:
        result = dataclasses.replace(result, per_user=name_rows(recommender, result.per_user, users))
    return result


def check_evaluation(recommender: Recommender, split: str, candidates: str, ks: tuple[int, ...] | None) -> None:
    """Raises InputError for a split, candidates or cut-offs a full ranking does not take, or an empty split."""
    if split not in ("valid", "test"):
        raise InputError(f"evaluate takes split 'valid' or 'test', not '{split}'")
    if candidates not in ("all", "unseen"):
        raise InputError(f"evaluate takes candidates 'all' or 'unseen', not '{candidates}'")
    if ks is not None and (not ks or min(ks) < 1):
        raise InputError(f"cut-offs K must be at least 1, got {list(ks)}")
    if not recommender.interactions(split).nnz:
        raise InputError(
            f"the {split} split of graph {recommender.graph.name} has no interactions: there is nothing to evaluate"
        )


def name_rows(recommender: Recommender, per_row: pd.DataFrame, users: np.ndarray | None) -> pd.DataFrame:
    """A per-row metric table with each row's user id (``user``) and its row as ``query``: rows of a ranking are users,
    or (user, context) queries of a context-aware run."""
    rows = per_row["row"].to_numpy()
    table = per_row.rename(columns={"row": "query"})
    table.insert(0, "user", recommender.graph.users.to_ids(rows if users is None else users[rows]))
    return table


@torch.no_grad()
def evaluate_blends(
    recommender,
    weights: list[float],
    split: str = "valid",
    candidates: str = "all",
    per_user: str | None = None,
    part: str = "ease",
    per_item: bool = False,
) -> list[dict[str, Any]]:
    """The @K metrics :meth:`evaluate` (``topk_only``) would give with each blend weight of the score term ``part``
    (``ease``, ``repeat``), in one pass.

    The learned score and the term are computed once per batch of users (see :func:`kgrec.evaluate.evaluate_blends`),
    not once per candidate weight.
    """
    truth, exclude, candidate_items, users, tokens = recommender.tasks.ranking(split, candidates)
    recommender.model.eval()
    reps = recommender.model(recommender.prop_graph)
    if users is None:
        parts = lambda rows: recommender.model.score_parts(reps, recommender.prop_graph, rows, part=part)  # noqa: E731
    else:
        users_t = torch.from_numpy(users).to(recommender.device)
        tokens_t = None if tokens is None else torch.from_numpy(tokens).to(recommender.device)
        parts = lambda rows: recommender.model.score_parts(  # noqa: E731
            reps, recommender.prop_graph, users_t[rows], None if tokens_t is None else tokens_t[rows], part=part
        )
    return _evaluate_blends(
        parts,
        truth,
        exclude,
        weights,
        ks=recommender.config.eval.ks,
        batch_size=recommender.config.eval.batch_size,
        device=recommender.device,
        candidates=candidate_items,
        per_user=per_user,
        per_item=per_item,
    )


@torch.no_grad()
def rating_errors(recommender: Recommender, split: str = "test") -> dict[str, float]:
    """RMSE and MAE of the rating head on a split's interactions (empty without a rating head or ratings)."""
    log = recommender.graph.split.interactions
    if recommender.model.rating is None or "rating" not in log:
        return {}
    rows = (log["split"] == split).to_numpy()
    users = torch.from_numpy(recommender.graph.users.to_index(log["user_id"].to_numpy()[rows])).to(recommender.device)
    items = torch.from_numpy(recommender.graph.items.to_index(log["item_id"].to_numpy()[rows])).to(recommender.device)
    context = (
        None
        if recommender.log_context is None
        else torch.from_numpy(recommender.log_context[rows]).to(recommender.device)
    )
    recommender.model.eval()
    reps = recommender.model(recommender.prop_graph)
    score = recommender.model.scorer(recommender.model.user_vectors(reps, users, context), reps.item[items])
    predicted = recommender.model.rating(users, items, score)
    return _rating_errors(predicted, torch.from_numpy(log["rating"].to_numpy()[rows]).float())
