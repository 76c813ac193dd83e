"""Fitting the score terms after the learned model: the repeat-use term's count weights on training, and each
term's blend weight on validation (:func:`blend_term`; EASE's has its own search, :mod:`kgrec.train.blend`)."""

from __future__ import annotations

import time

import numpy as np
import torch

from kgrec.config import RunConfig
from kgrec.inference import Recommender
from kgrec.train.blend import BLEND_FACTORS, _paired_standard_error

__all__ = ["blend_term", "train_kg_neighbours", "train_repeat_use"]


#: Extra multiples of the spread ratio the one-standard-error rule tries below EASE's grid.
FINE_FACTORS = (0.01, 0.03, 0.1)


@torch.no_grad()
def _spread_ratio(recommender: Recommender, name: str) -> float:
    """Spread of the rest of the score over that of the term ``name``, on up to 2,048 users (a scale for the grid)."""
    model = recommender.model
    users = torch.arange(min(model.num_users, 2048), device=recommender.device)
    tokens = recommender.stated_context([recommender.graph.users.ids[int(u)] for u in users], None)
    rest, part = model.score_parts(recommender.representations(), recommender.prop_graph, users, tokens, part=name)
    return float(rest.std() / part.std().clamp(min=1e-12))


def blend_term(recommender: Recommender, config: RunConfig, name: str, rule: str = "best") -> tuple[float, float]:
    """Choose the score term ``name``'s blend weight among 0 and multiples of the scores' spread ratio
    (:data:`~kgrec.train.blend.BLEND_FACTORS`, and :data:`FINE_FACTORS` for ``one-se``) on validation: ``best``, the
    highest score (0 unless the term helps); ``one-se``, the largest weight within one paired standard error (over
    users) of the best. A run without validation or ranking task takes the equal-spread weight. Sets it; returns
    ``(weight, validation score)``."""
    ratio = _spread_ratio(recommender, name)
    chosen, valid = ratio, float("nan")
    if len(recommender.graph.split.valid) and "rank" in config.train.tasks:
        select = config.eval.select_metric
        # Finer steps near 0 than EASE's grid: a term for a few items may only move them a little and still be found.
        factors = (FINE_FACTORS if rule == "one-se" else ()) + BLEND_FACTORS
        weights = [0.0] + [factor * ratio for factor in factors]
        measured = recommender.evaluate_blends(
            weights, "valid", config.eval.candidates, part=name, per_user=select if rule == "one-se" else None
        )
        scores = [m[select] for m in measured]
        best = int(np.argmax(scores))  # the first of equal scores: 0 (no term) unless the term helps
        if rule == "one-se":
            reference = measured[best]["per_user"]
            within = [
                i
                for i, m in enumerate(measured)
                if (m["per_user"] - reference).mean()
                >= -_paired_standard_error(m["per_user"] - reference, len(reference))
            ]
            best = max(within, key=lambda i: weights[i])
        chosen, valid = weights[best], float(scores[best])
    recommender.model.term(name).blend.fill_(chosen)
    return chosen, valid


def train_kg_neighbours(recommender: Recommender, config: RunConfig) -> dict[str, float] | None:
    """Choose the blend weight of the model's :class:`~kgrec.models.KGNeighbourTerm` (:func:`blend_term`, with
    ``model.kg_neighbours_rule``); None without one. Returns ``{"kg_neighbours_weight", "kg_neighbours_valid"}``."""
    if recommender.model.kg_neighbours is None:
        return None
    chosen, valid = blend_term(recommender, config, "kg-knn", config.model.kg_neighbours_rule)
    return {"kg_neighbours_weight": chosen, "kg_neighbours_valid": valid}


def train_repeat_use(recommender: Recommender, config: RunConfig) -> dict[str, float] | None:
    """Fit the model's :class:`~kgrec.models.RepeatUse` weights and choose its blend weight; None without one.

    The weights are learned on the training observations, each left out of its own counts (the term
    reads the training split's counts here); the blend weight is the one among multiples of the
    scores' spread ratio (:data:`~kgrec.train.blend.BLEND_FACTORS`, and 0) with the best validation
    metric, 0 unless it helps. A run without validation or ranking task takes the equal-spread weight.

    Returns:
        ``{"repeat_weight", "repeat_valid", "repeat_loss", "repeat_seconds"}``.
    """
    repeat = recommender.model.repeat
    if repeat is None:
        return None
    started = time.perf_counter()
    if recommender.history_parts != ("train",):
        raise ValueError("the repeat-use term is fitted on training counts: use_history('train') first")
    log = recommender.graph.split.interactions
    train = (log["split"] == "train").to_numpy()
    tokens = None
    if repeat.num_fields:
        assert recommender.log_context is not None  # the counts were set from it
        tokens = recommender.log_context[train]
    with torch.enable_grad():
        losses = repeat.fit(
            recommender.graph.users.to_index(log["user_id"].to_numpy()[train]),
            recommender.graph.items.to_index(log["item_id"].to_numpy()[train]),
            tokens,
            seed=config.train.seed,
        )
    chosen, valid = blend_term(recommender, config, "repeat")
    return {
        "repeat_weight": chosen,
        "repeat_valid": valid,
        "repeat_loss": losses[-1] if losses else float("nan"),
        "repeat_seconds": time.perf_counter() - started,
    }
