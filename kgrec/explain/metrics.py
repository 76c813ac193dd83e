"""What a set of explanations is like, in the measures of Balloccu et al. (SIGIR 2022, "Post Processing Recommender
Systems with Knowledge Graphs for Recency, Popularity, and Diversity of Explanations").

- **SEP**, shared-entity popularity: how many items the entity a path goes through is linked to, on a log scale
  normalised to [0, 1] by the graph's most linked entity (``log(1 + degree) / log(1 + max degree)``). Low: the
  path names something few items share (a director); high: a hub (a country, a language). Balloccu et al. reward
  popular entities as better known; kgrec ranks the rarer first, as the more telling, and reports both ways.
- **ETD**, explanation-type diversity: the distinct path types (the relations a path travels, read without
  direction) among a user's explanations, over the number of explanations.
- How many of the paths are distinct facts (a path's entities; the same genre told three times counts once).

Every measure is computed per user over their top-k recommendations' best paths, then averaged over users.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kgrec.explain.paths import ExplanationPath

__all__ = ["ExplanationMetrics", "explanation_metrics", "path_type"]


@dataclass(frozen=True)
class ExplanationMetrics:
    """Averages over users (each user: the mean, or share, over their explained items).

    Attributes:
        users: Users with at least one explanation path.
        paths: Paths measured in all.
        sep: Mean shared-entity popularity of the paths that go through an entity (0 rare ... 1 the biggest hub).
        entity_degree: Median number of items the shared entity is linked to.
        etd: Distinct path types over paths, per user.
        distinct_facts: Distinct shared entities (or history items, for paths without one) over paths, per user.
        kg_share: Share of paths through at least one KG entity (the rest: the collaborative fallback, or the
            user's own use).
    """

    users: int
    paths: int
    sep: float
    entity_degree: float
    etd: float
    distinct_facts: float
    kg_share: float

    def to_dict(self) -> dict[str, float]:
        """JSON-ready fields."""
        return dict(self.__dict__)


def path_type(path: ExplanationPath) -> str:
    """The relations a path travels after the user's own interaction, without direction: ``genre > genre``."""
    return " > ".join(relation.removesuffix(" (inverse)") for relation in path.relations[1:])


def explanation_metrics(
    paths_by_user: Sequence[Sequence[ExplanationPath | None]], degree: np.ndarray, num_items: int
) -> ExplanationMetrics:
    """SEP, ETD and distinct facts of each user's explanations (one best path per recommended item; None where an
    item has none).

    Args:
        paths_by_user: For each user, the best path of each recommended item.
        degree: ``(num_kg_nodes,)`` number of KG edges of each node (items first, then entities).
        num_items: Items in the graph: KG nodes below it are items, not shared entities.
    """
    entity_degrees = degree[num_items:]
    top = math.log1p(float(entity_degrees.max())) if len(entity_degrees) and entity_degrees.max() > 0 else 1.0
    seps, etds, facts, kg_shares, all_degrees = [], [], [], [], []
    total = 0
    for paths in paths_by_user:
        found = [path for path in paths if path is not None]
        if not found:
            continue
        total += len(found)
        entities = [[node for node in path.kg_nodes[1:-1] if node >= num_items] for path in found]
        popularity = [max(math.log1p(float(degree[node])) / top for node in nodes) for nodes in entities if nodes]
        all_degrees += [float(max(degree[node] for node in nodes)) for nodes in entities if nodes]
        if popularity:
            seps.append(float(np.mean(popularity)))
        etds.append(len({path_type(path) for path in found}) / len(found))
        keys = {tuple(nodes) if nodes else ("history", path.history_item_id) for nodes, path in zip(entities, found)}
        facts.append(len(keys) / len(found))
        kg_shares.append(sum(1 for nodes in entities if nodes) / len(found))
    return ExplanationMetrics(
        users=len(etds),
        paths=total,
        sep=float(np.mean(seps)) if seps else float("nan"),
        entity_degree=float(np.median(all_degrees)) if all_degrees else float("nan"),
        etd=float(np.mean(etds)) if etds else float("nan"),
        distinct_facts=float(np.mean(facts)) if facts else float("nan"),
        kg_share=float(np.mean(kg_shares)) if kg_shares else float("nan"),
    )
