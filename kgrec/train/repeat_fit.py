"""Training the repeat-use term after the learned model: its count weights on training, its blend on validation."""

from __future__ import annotations

import time

import numpy as np
import torch

from kgrec.config import RunConfig
from kgrec.inference import Recommender
from kgrec.train.blend import BLEND_FACTORS

__all__ = ["train_repeat_use"]


@torch.no_grad()
def _spread_ratio(recommender: Recommender) -> float:
    """Spread of the model's scores over that of the repeat term's, on up to 2,048 users (a scale for the blend grid)."""
    model, repeat = recommender.model, recommender.model.repeat
    assert repeat is not None
    users = torch.arange(min(model.num_users, 2048), device=recommender.device)
    tokens = recommender.stated_context([recommender.graph.users.ids[int(u)] for u in users], None)
    rest, part = model.score_parts(recommender.representations(), recommender.prop_graph, users, tokens, part="repeat")
    return float(rest.std() / part.std().clamp(min=1e-12))


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
    ratio = _spread_ratio(recommender)
    chosen, valid = ratio, float("nan")
    if len(recommender.graph.split.valid) and "rank" in config.train.tasks:
        select = config.eval.select_metric
        weights = [0.0] + [factor * ratio for factor in BLEND_FACTORS]
        scores = [
            m[select] for m in recommender.evaluate_blends(weights, "valid", config.eval.candidates, part="repeat")
        ]
        best = int(np.argmax(scores))  # the first of equal scores: 0 (no term) unless the term helps
        chosen, valid = weights[best], float(scores[best])
    repeat.blend.fill_(chosen)
    return {
        "repeat_weight": chosen,
        "repeat_valid": valid,
        "repeat_loss": losses[-1] if losses else float("nan"),
        "repeat_seconds": time.perf_counter() - started,
    }
