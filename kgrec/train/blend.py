"""Choosing the EASE penalty, its KG-row weight and the blend weight of the linear model on validation (never on test)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

from kgrec.models import KGRecommender, PropagationGraph
from kgrec.models.linear import text_features

__all__ = ["fit_linear", "choose_blend"]

# Multiples of the scale ratio (embedding-score spread / EASE-score spread) tried as blend weights;
# the largest makes the blend EASE alone in all but ties, so EASE by itself is one of the candidates.
BLEND_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 1000.0)


def fit_linear(model: KGRecommender, graph: PropagationGraph, l2: float, kg_weight: float = 0.0, text_weight: float = 0.0) -> None:
    """Solve the model's EASE component on the graph's user rows with penalty ``l2``.

    ``kg_weight`` > 0 stacks the KG's item links under the interactions with that weight
    (:meth:`~kgrec.models.PropagationGraph.item_links`; collective EASE); ``text_weight`` > 0 adds
    the items' centred text similarities (:func:`~kgrec.models.linear.text_features`).
    """
    if text_weight and model.text_emb is None:
        raise ValueError("EASE text rows need the model's text embeddings")
    model.linear.l2, model.linear.kg_weight, model.linear.text_weight = l2, kg_weight, text_weight
    model.linear.fit(graph.history, graph.item_links() if kg_weight else None, text_features(model.text_emb) if text_weight else None)


@torch.no_grad()
def choose_blend(
    model: KGRecommender,
    graph: PropagationGraph,
    l2_grid: tuple[float, ...],
    validate: Callable[[KGRecommender], float] | None,
    baseline: float,
    validate_blends: Callable[[KGRecommender, list[float]], list[float]] | None = None,
    kg_weights: tuple[float, ...] = (0.0,),
    text_weights: tuple[float, ...] = (0.0,),
) -> dict[str, float]:
    """Pick EASE's penalty, KG-row and text-row weights and the blend weight by validation; keep blend weight 0 unless it helps.

    Args:
        model: Trained model with an EASE component.
        graph: Propagation inputs (training interactions only).
        l2_grid: Penalties to try.
        validate: Validation metric of the model as it stands; without one, the first penalty and
            the equal-spread weight are used.
        baseline: Validation metric of the model without the linear part.
        validate_blends: The validation metric for each of several blend weights at once (one pass
            over the users instead of one per weight); gives the same choice as ``validate``.
        kg_weights: Weights of the KG's item links in EASE's Gram matrix to try with every penalty
            (0: interactions only).
        text_weights: Weights of the items' text rows, likewise (0: none).

    Returns:
        ``{"l2", "kg_weight", "text_weight", "weight", "valid"}`` as chosen (also set on the model).
    """
    model.eval()
    reps = model(graph)
    users = torch.arange(min(graph.num_users, 2048), device=reps.user.device)
    embedding_spread = model.scorer.score_all(reps.user[users], reps.item).std()
    best = {"l2": l2_grid[0], "kg_weight": kg_weights[0], "text_weight": text_weights[0], "weight": 0.0, "valid": baseline}
    for l2, kg_weight, text_weight in itertools.product(l2_grid, kg_weights, text_weights):
        fit_linear(model, graph, l2, kg_weight, text_weight)
        ratio = float(embedding_spread / model.linear(graph.history_rows(users)).std().clamp(min=1e-12))
        solved = {"l2": l2, "kg_weight": kg_weight, "text_weight": text_weight}
        if validate is None:
            best = {**solved, "weight": ratio, "valid": float("nan")}
            break
        weights = [factor * ratio for factor in BLEND_FACTORS]
        if validate_blends is not None:
            scores = validate_blends(model, weights)
        else:
            scores = []
            for weight in weights:
                model.linear_weight.fill_(weight)
                scores.append(validate(model))
        for weight, score in zip(weights, scores):
            if score > best["valid"]:
                best = {**solved, "weight": weight, "valid": score}
    if (model.linear.l2, model.linear.kg_weight, model.linear.text_weight) != (best["l2"], best["kg_weight"], best["text_weight"]):
        # not the last one solved (ten minutes at 30k items)
        fit_linear(model, graph, best["l2"], best["kg_weight"], best["text_weight"])
    model.linear_weight.fill_(best["weight"])
    return best
