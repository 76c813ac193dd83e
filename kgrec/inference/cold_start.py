"""Cold start without retraining: new items into a trained run, and users the run does not know.

- :func:`add_items`: catalog rows become items with a text embedding, a KG embedding estimated from the entities
  they link to, EASE columns from their links and text, and no collaborative part.
- :func:`recommend_for_history`: a user who is not in the graph, from a few items and/or stated attributes.
- :func:`recommend_cold_start`: a user nothing is known of.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from kgrec.errors import InputError
from kgrec.graph import to_hetero
from kgrec.inference.results import Recommendation
from kgrec.models import PropagationGraph, top_k
from kgrec.models.ease import text_features

if TYPE_CHECKING:
    from kgrec.inference.recommender import Recommender

__all__ = ["add_items", "recommend_cold_start", "recommend_for_history"]


@torch.no_grad()
def add_items(recommender: Recommender, rows: pd.DataFrame) -> Recommender:
    """A copy of the run that can also recommend the catalog ``rows`` (new items), without retraining.

    Each new item gets its text embedding from the run's text encoder, a KG embedding estimated
    as the mean of the PyKEEN embeddings of the categories, brands and attribute values it links to
    (an inductive estimate: PyKEEN never saw it), and no collaborative part, exactly like an item
    that had no training interactions. ``rows`` comes from :func:`kgrec.data.read_catalog`.
    """
    from kgrec.embed import encode_item_texts

    graph = recommender.graph.with_items(rows)
    model = copy.deepcopy(recommender.model)
    old, count = len(recommender.graph.items), len(rows)
    kg_rows = text_rows = None
    if model.kg_emb is not None:
        kg_rows = torch.zeros(count, model.kg_emb.size(1), device=model.kg_emb.device)
        new = graph.triples[graph.triples[:, 0] >= old]
        new = new[new[:, 0] < old + count]
        for node in range(old, old + count):
            linked = new[new[:, 0] == node, 2] - count  # entity rows in the old KG order
            if len(linked):
                kg_rows[node - old] = model.kg_emb[torch.from_numpy(linked)].mean(0)
    if model.text_emb is not None:
        text_rows = encode_item_texts(
            graph.catalog.iloc[old:], recommender.config.text, device=str(recommender.device)
        ).text_emb
    try:
        model.add_items(count, kg_rows, text_rows)
    except ValueError as error:
        raise InputError(str(error)) from None
    # New items read their entities but do not change them: the trained items score as before.
    prop_graph = PropagationGraph.from_hetero(
        to_hetero(graph), len(graph.relations), listen_only=torch.arange(old, old + count)
    )
    extended = type(recommender)(
        model, graph, recommender.config, None, recommender.device, recommender.context, prop_graph
    )
    if extended.history_parts != recommender.history_parts:
        extended.use_history(*recommender.history_parts)
    ease = model.ease
    if ease is not None and (ease.kg_weight or ease.text_weight):
        # Their EASE columns from their KG links and text, as if they had been in the fit; the rest of B stays.
        ease.extend(
            count,
            extended.prop_graph.history,
            extended.prop_graph.item_links() if ease.kg_weight else None,
            text_features(model.text_emb, centre_rows=old) if ease.text_weight and model.text_emb is not None else None,
        )
    extended.graph_dir = recommender.graph_dir
    return extended


@torch.no_grad()
def recommend_for_history(
    recommender: Recommender,
    item_ids: list[str],
    k: int = 10,
    user_id: str = "new",
    context: dict[str, Any] | None = None,
) -> Recommendation:
    """Top-``k`` items for a user who is not in the graph, from a few items they interacted with
    and/or stated attributes and context (``{"age": 25, "occupation": "student"}``).

    No retraining: see :meth:`kgrec.models.RecommenderNetwork.score_history`. The given items are
    never recommended back. Attributes alone need a run trained with ``context.user`` fields.
    """
    graph = recommender.graph
    if not item_ids and not context:
        raise InputError("a new user needs at least one item id in the history, or stated attributes")
    if not item_ids and (recommender.context is None or not recommender.context.field_offsets("user")):
        raise InputError("recommending from attributes alone needs a run trained with context.user fields")
    unknown = [item for item in item_ids if item not in graph.items]
    if unknown:
        raise InputError(f"unknown item id '{unknown[0]}' in the history (the graph has {len(graph.items):,} items)")
    history = torch.zeros(1, len(graph.items), device=recommender.device)
    if item_ids:
        history[0, torch.from_numpy(graph.items.to_index(list(item_ids))).to(recommender.device)] = 1.0
    tokens = recommender.stated_context([user_id], context, attributes=False)
    scores = recommender.model.score_history(recommender.representations(), history, tokens)
    top = top_k(scores, k, history.bool())
    return recommender.recommendation(user_id, top.indices[0].cpu().numpy(), top.scores[0].cpu().numpy())


def recommend_cold_start(
    recommender: Recommender, user_id: str, k: int = 10, context: dict[str, Any] | None = None
) -> Recommendation:
    """The answer for a user nothing is known of: from stated attributes where the run learned user fields, else
    the ``k`` items with the most training interactions (their counts as scores). The one cold-start answer of
    the library, the command line and the server."""
    if context and recommender.context is not None and recommender.context.field_offsets("user"):
        return recommend_for_history(recommender, [], k, user_id=user_id, context=context)
    counts = np.asarray(recommender.interactions("train").sum(axis=0)).ravel().astype(float)
    top = np.argsort(-counts, kind="stable")[:k]
    return recommender.recommendation(user_id, top, counts[top])
