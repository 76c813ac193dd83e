"""Scoring given pairs with a trained run: ``(user, item)`` pairs on external ids, and a log's rows each in its own
context (the score click-through protocols read), batched by query so memory is one batch x items."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from kgrec.errors import InputError

if TYPE_CHECKING:
    from kgrec.inference.recommender import Recommender

__all__ = ["score_log", "score_pairs", "score_queries"]


@torch.no_grad()
def score_pairs(
    recommender: Recommender, user_ids: list[str], item_ids: list[str], context: dict[str, Any] | None = None
) -> np.ndarray:
    """Scores of given ``(user, item)`` pairs, on external ids: the score :meth:`recommend` ranks by.

    ``user_ids[n]`` is paired with ``item_ids[n]``; seen items are scored like any other. Users
    are scored in batches of ``eval.batch_size`` distinct users, so memory is one batch x items.

    Raises:
        InputError: on lists of different lengths or an unknown user or item id.
    """
    if len(user_ids) != len(item_ids):
        raise InputError(
            f"`user_ids` has {len(user_ids)} entries and `item_ids` {len(item_ids)}: give one item per user"
        )
    recommender.check_users(list(user_ids))
    recommender.check_items(list(item_ids))
    users = recommender.graph.users.to_index(list(user_ids))
    items = recommender.graph.items.to_index(list(item_ids))
    distinct, row_of_pair = np.unique(users, return_inverse=True)
    tokens = recommender.stated_context(recommender.graph.users.to_ids(distinct), context)
    return score_queries(recommender, distinct, tokens, row_of_pair.ravel(), items)


@torch.no_grad()
def score_log(recommender: Recommender, log: pd.DataFrame) -> np.ndarray:
    """Scores of a log's ``(user_id, item_id)`` rows, each in the row's own context: the score the in-context ranking
    ranks by.

    The log has the columns of the run's context fields (``daytime``, ``homework``, a ``timestamp`` for time
    fields; user attributes come from the user table); a run without a context encoder scores each row by its
    user. For labeled rows (click-through protocols: AUC, log loss), a row's score is comparable across rows.
    Rows sharing a user and context are one query: one batch of queries scores every item once.

    Raises:
        InputError: on a missing column or an unknown user or item id.
    """
    needed = ["user_id", "item_id"]
    if recommender.context is not None:
        needed += [f.name for f in recommender.context.fields if f.source == "column"]
        needed += ["timestamp"] if any(f.source == "time" for f in recommender.context.fields) else []
    missing = [column for column in needed if column not in log.columns]
    if missing:
        raise InputError(f"the log to score has no '{missing[0]}' column (this run needs {', '.join(needed)})")
    user_ids, item_ids = log["user_id"].astype(str).tolist(), log["item_id"].astype(str).tolist()
    recommender.check_users(user_ids)
    recommender.check_items(item_ids)
    users = recommender.graph.users.to_index(user_ids)
    items = recommender.graph.items.to_index(item_ids)
    if recommender.context is None:
        distinct, query_of_pair = np.unique(users, return_inverse=True)
        return score_queries(recommender, distinct, None, query_of_pair.ravel(), items)
    encoded = recommender.context.encode_log(log.reset_index(drop=True), recommender.graph.user_table)
    keys, query_of_pair = np.unique(np.column_stack([users, encoded]).astype(np.int64), axis=0, return_inverse=True)
    tokens = torch.from_numpy(keys[:, 1:]).to(recommender.device)
    return score_queries(recommender, keys[:, 0], tokens, query_of_pair.ravel(), items)


def score_queries(
    recommender: Recommender,
    users: np.ndarray,
    tokens: torch.Tensor | None,
    query_of_pair: np.ndarray,
    items: np.ndarray,
) -> np.ndarray:
    """Scores of pairs ``(query_of_pair[n], items[n])``: queries are ``users (Q,)`` in ``tokens (Q, F)`` (or none).

    Queries are scored in batches of ``eval.batch_size``, so memory is one batch x items.
    """
    reps = recommender.representations()
    out = np.empty(len(items), dtype=np.float32)
    batch = recommender.config.eval.batch_size
    by_query = np.argsort(query_of_pair, kind="stable")  # pairs grouped by query: each batch is one slice
    bounds = np.searchsorted(query_of_pair[by_query], np.arange(0, len(users) + batch, batch))
    for number, start in enumerate(range(0, len(users), batch)):
        chunk = torch.from_numpy(users[start : start + batch]).to(recommender.device)
        scores = recommender.model.score_all(
            reps, recommender.prop_graph, chunk, None if tokens is None else tokens[start : start + batch]
        )
        pairs = by_query[bounds[number] : bounds[number + 1]]
        rows = torch.from_numpy(query_of_pair[pairs] - start).to(recommender.device)
        out[pairs] = scores[rows, torch.from_numpy(items[pairs]).to(recommender.device)].float().cpu().numpy()
    return out
