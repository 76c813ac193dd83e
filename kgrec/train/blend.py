"""Choosing the EASE penalty, its KG-row weight and the blend weight of the linear model on validation (never on test)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from kgrec.models import PropagationGraph, RecommenderNetwork
from kgrec.models.ease import text_features

__all__ = ["BLEND_RULES", "fit_linear", "choose_blend"]

# Multiples of the scale ratio (embedding-score spread / EASE-score spread) tried as blend weights;
# the largest makes the blend EASE alone in all but ties, so EASE by itself is one of the candidates.
BLEND_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 1000.0)
BLEND_RULES = ("best", "one-se", "one-se-blend")


def fit_linear(
    model: RecommenderNetwork, prop_graph: PropagationGraph, l2: float, kg_weight: float = 0.0, text_weight: float = 0.0
) -> None:
    """Solve the model's EASE component on the graph's user rows with penalty ``l2``.

    ``kg_weight`` > 0 stacks the KG's item links under the interactions with that weight
    (:meth:`~kgrec.models.PropagationGraph.item_links`; collective EASE); ``text_weight`` > 0 adds
    the items' centred text similarities (:func:`~kgrec.models.ease.text_features`).
    """
    linear, text = model.ease, model.text_emb
    if linear is None:
        raise ValueError("the model has no linear part to fit (model.linear=none)")
    if text_weight and text is None:
        raise ValueError("EASE text rows need the model's text embeddings")
    linear.l2, linear.kg_weight, linear.text_weight = l2, kg_weight, text_weight
    linear.fit(
        prop_graph.history,
        prop_graph.item_links() if kg_weight else None,
        text_features(text) if text is not None and text_weight else None,
    )


@torch.no_grad()
def choose_blend(
    model: RecommenderNetwork,
    prop_graph: PropagationGraph,
    *,
    l2_grid: tuple[float, ...],
    validate: Callable[[RecommenderNetwork], float] | None,
    baseline: float,
    validate_blends: Callable[[RecommenderNetwork, list[float]], list[Any]] | None = None,
    kg_weights: tuple[float, ...] = (0.0,),
    text_weights: tuple[float, ...] = (0.0,),
    rule: str = "best",
) -> dict[str, float]:
    """Pick EASE's penalty, KG-row and text-row weights and the blend weight by validation; keep blend weight 0 unless it helps.

    Args:
        model: Trained model with an EASE component.
        prop_graph: Propagation inputs (training interactions only).
        l2_grid: Penalties to try.
        validate: Validation metric of the model as it stands; without one, the first penalty and
            the equal-spread weight are used.
        baseline: Validation metric of the model without the linear part.
        validate_blends: The validation metric for each of several blend weights at once (one pass
            over the users instead of one per weight); gives the same choice as ``validate``. Each
            entry is a score, ``(score, per-user values)`` for the ``one-se`` rule, or ``(score,
            per-user values, per-item totals)`` for ``one-se-blend``.
        kg_weights: Weights of the KG's item links in EASE's Gram matrix to try with every penalty
            (0: interactions only).
        text_weights: Weights of the items' text rows, likewise (0: none).
        rule: ``best`` (highest validation score) or ``one-se``: among the blends whose per-user scores are
            within one paired standard error of the best blend's, the simplest (largest blend factor, i.e.
            most EASE, then the fewest KG and text rows, then the largest penalty). Needs per-user values;
            without them it is ``best``. ``one-se-blend``: the best candidate's EASE (penalty, KG and text
            rows) stays, and of its blends the one with the most weight on EASE within one standard error
            of the best, the larger of two: paired over users and paired over the held-out items (the
            metric summed by item). Where validation's items are few and not test's (a cold-items split),
            which items happen to be held out is the noise that matters, and the learned model's scores of
            new items are what varies with the seed; EASE's rows are deterministic and stay as chosen.

    Returns:
        ``{"l2", "kg_weight", "text_weight", "weight", "valid"}`` as chosen (also set on the model).
    """
    if rule not in BLEND_RULES:
        raise ValueError(f"blend rule is one of {', '.join(BLEND_RULES)}, not {rule!r}")
    model.eval()
    reps = model(prop_graph)
    users = torch.arange(min(prop_graph.num_users, 2048), device=reps.user.device)
    embedding_spread = model.scorer.score_all(reps.user[users], reps.item).std()
    best = {
        "l2": l2_grid[0],
        "kg_weight": kg_weights[0],
        "text_weight": text_weights[0],
        "weight": 0.0,
        "valid": baseline,
    }
    measured: list[
        tuple[dict, float, tuple[np.ndarray, ...]]
    ] = []  # (choice, blend factor, paired values) for the one-se rules
    for l2, kg_weight, text_weight in itertools.product(l2_grid, kg_weights, text_weights):
        fit_linear(model, prop_graph, l2, kg_weight, text_weight)
        assert model.ease is not None  # fit_linear raised otherwise
        ratio = float(embedding_spread / model.ease(prop_graph.history_rows(users)).std().clamp(min=1e-12))
        solved = {"l2": l2, "kg_weight": kg_weight, "text_weight": text_weight}
        if validate is None:
            best = {**solved, "weight": ratio, "valid": float("nan")}
            break
        weights = [factor * ratio for factor in BLEND_FACTORS]
        paired: list[tuple[np.ndarray, ...] | None] = [None] * len(weights)
        if validate_blends is not None:
            entries = validate_blends(model, weights)
            scores = [float(entry[0]) if isinstance(entry, tuple) else float(entry) for entry in entries]
            paired = [tuple(entry[1:]) if isinstance(entry, tuple) else None for entry in entries]
        else:
            scores = []
            for weight in weights:
                model.ease.blend.fill_(weight)
                scores.append(validate(model))
        for factor, weight, score, values in zip(BLEND_FACTORS, weights, scores, paired):
            choice = {**solved, "weight": weight, "valid": score}
            if values is not None:
                measured.append((choice, factor, values))
            if score > best["valid"]:
                best = choice
    if rule != "best" and measured and best["weight"] != 0.0:
        best = _rule_choice(rule, measured, best)
    assert model.ease is not None
    if (model.ease.l2, model.ease.kg_weight, model.ease.text_weight) != (
        best["l2"],
        best["kg_weight"],
        best["text_weight"],
    ):
        # not the last one solved (ten minutes at 30k items)
        fit_linear(model, prop_graph, best["l2"], best["kg_weight"], best["text_weight"])
    model.ease.blend.fill_(best["weight"])
    return best


def _rule_choice(rule: str, measured: list[tuple[dict, float, tuple[np.ndarray, ...]]], best: dict) -> dict:
    """The candidate a one-standard-error rule takes instead of the best (``one-se`` or ``one-se-blend``)."""
    if rule == "one-se-blend":  # only the blend weight is in question; EASE's rows stay the best's
        keys = ("l2", "kg_weight", "text_weight")
        measured = [entry for entry in measured if all(entry[0][key] == best[key] for key in keys)]
    return _simplest_near_best(measured, best)


def _paired_standard_error(difference: np.ndarray, num_users: int) -> float:
    """Standard error of the mean over ``num_users`` of a metric's difference, paired over ``difference``'s units.

    Units are users (one value each) or items (each item's total over users): the sum of the
    differences is the same, and its variance is estimated from the spread over the units.
    """
    units = len(difference)
    if units < 2:
        return 0.0
    return float(np.sqrt(units / (units - 1) * ((difference - difference.mean()) ** 2).sum()) / num_users)


def _simplest_near_best(measured: list[tuple[dict, float, tuple[np.ndarray, ...]]], best: dict) -> dict:
    """The one-standard-error rule over blends: the simplest whose mean paired difference to the best is within one SE.

    The SE is paired over users, and with per-item totals also over items (the larger of the two).
    """
    reference = next(values for choice, _, values in measured if choice is best)
    num_users = len(reference[0])
    near = []
    for choice, factor, values in measured:
        differences = [mine - theirs for mine, theirs in zip(values, reference)]
        standard_error = max(_paired_standard_error(difference, num_users) for difference in differences)
        if differences[0].mean() >= -standard_error:
            near.append((choice, factor))
    # Simpler: more of the blend on EASE (deterministic given the data), then fewer side rows, then a stronger penalty.
    choice, _ = max(near, key=lambda pair: (pair[1], -pair[0]["kg_weight"], -pair[0]["text_weight"], pair[0]["l2"]))
    return choice
