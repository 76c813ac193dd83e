"""Are explanation paths faithful to the model? Remove a path's edges, re-score, compare with a random path.

For each user, the top recommended item is explained; the model is re-run (propagation included)
on the training graph without the top path's edges (the user's interaction with the path's
history item and the path's KG edges), and again without a random path's edges. A faithful
explainer's top path lowers the score more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kgrec.explain.paths import ExplanationPath, PathFinder
from kgrec.graph import to_hetero
from kgrec.models import PropagationGraph

__all__ = ["FaithfulnessResult", "graph_without", "path_faithfulness"]


@dataclass(frozen=True)
class FaithfulnessResult:
    """Mean score drops (model units) over the users that had at least two distinct paths."""

    users: int
    top_path_drop: float
    random_path_drop: float
    top_beats_random: float  # share of users where the top path's drop is larger

    def to_dict(self) -> dict:
        """The result as plain JSON types."""
        return self.__dict__.copy()


def graph_without(finder: PathFinder, path: ExplanationPath) -> PropagationGraph:
    """The run's propagation inputs with ``path``'s interaction and KG edges removed."""
    data = to_hetero(finder.recommender.graph).clone()
    interactions = {(a, b) for kind, a, b in path.edges if kind == "interaction"}
    kg_pairs = {(a, b) for kind, a, b in path.edges if kind == "kg"}
    num_items = finder.num_items
    for (src, name, dst), edges in data.edge_items():
        if name == "interacts":
            heads, tails = edges.edge_index
            pairs = interactions
        elif name == "kg":
            heads = edges.edge_index[0] + (0 if src == "item" else num_items)
            tails = edges.edge_index[1] + (0 if dst == "item" else num_items)
            pairs = kg_pairs
        else:
            continue  # reverse edge types are rebuilt from the forward ones
        drop = torch.zeros(heads.numel(), dtype=torch.bool)
        for a, b in pairs:
            drop |= (heads == a) & (tails == b)
        num_edges = heads.numel()
        for key in list(edges.keys()):  # edge_index and every per-edge attribute (relation, rating, timestamp)
            value = edges[key]
            if isinstance(value, torch.Tensor) and value.size(-1) == num_edges:
                edges[key] = value[..., ~drop]
    return PropagationGraph.from_hetero(data, len(finder.recommender.graph.relations)).to(finder.recommender.device)


@torch.no_grad()
def _score(finder: PathFinder, prop_graph: PropagationGraph, user: int, item: int) -> float:
    model = finder.recommender.model
    reps = model(prop_graph)
    return float(model.score_all(reps, prop_graph, torch.tensor([user], device=finder.recommender.device))[0, item])


def path_faithfulness(
    finder: PathFinder, user_ids: list[str], seed: int = 0, max_paths: int = 1000
) -> FaithfulnessResult:
    """Score drop of the top path vs a random other path (from a different history item), averaged over users."""
    recommender = finder.recommender
    rng = np.random.default_rng(seed)
    base_graph = recommender.prop_graph
    top_drops, random_drops = [], []
    for user_id in user_ids:
        (recommendation,) = recommender.recommend([user_id], k=1)
        if not recommendation.item_ids:
            continue
        item_id = recommendation.item_ids[0]
        paths = finder.find(user_id, item_id, max_paths=max_paths, distinct=False)
        others = [p for p in paths[1:] if p.history_item_id != paths[0].history_item_id] if paths else []
        if not others:
            continue
        user = int(recommender.graph.users.to_index([user_id])[0])
        item = int(recommender.graph.items.to_index([item_id])[0])
        base = _score(finder, base_graph, user, item)
        random_path = others[rng.integers(len(others))]
        top_drops.append(base - _score(finder, graph_without(finder, paths[0]), user, item))
        random_drops.append(base - _score(finder, graph_without(finder, random_path), user, item))
    top, rand = np.array(top_drops), np.array(random_drops)
    return FaithfulnessResult(
        users=len(top),
        top_path_drop=float(top.mean()) if len(top) else float("nan"),
        random_path_drop=float(rand.mean()) if len(rand) else float("nan"),
        top_beats_random=float((top > rand).mean()) if len(top) else float("nan"),
    )
