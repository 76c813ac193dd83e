"""Explanation paths: user -> an item from the user's training history -> one or two KG hops -> the item.

A path is scored by what the trained model says the history item contributes to the recommended
item's score:

- each blended score term that is a sum over history items, exactly: EASE's ``w * B[h, i]`` (removing the
  interaction (u, h) lowers the user's score for *i* by this much; see ``ScoreTerm.history_contributions``);
- the embedding part, to first order: LightGCN's user representation receives the history item's
  representation through the edge (u, h) with weight ``1 / sqrt(deg(u) deg(h))``, so the dot
  product with the item contributes ``<e_h, e_i> / sqrt(deg(u) deg(h))``.

Paths are ranked by contribution times specificity (``ranking="informative"``, the default): an entity shared
by few items (a director) explains before one shared by hundreds ("Drama", "a shared country"), unless the
hub's history item contributes far more; ``ranking="contribution"`` ranks by the contribution alone, the most
specific hop first among equals (kgrec before 2026-12). Each shared fact is told once: of the paths through the
same entities (the same genre reached from three history items, or a fact stored in both directions), only the
best stays. The search is bounded:
at most ``max_fanout`` entities are expanded per node (the most specific first), so dense nodes
cost one slice of an adjacency array, never a walk over their neighbourhood. Only training
interactions are used. Entities show with the user's labels, the graph's, or a description from
their relation (``a shared genre (m.02kdv5l)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from kgrec.errors import InputError
from kgrec.graph.rdf import node_iri
from kgrec.inference import Recommender
from kgrec.models import Representations

__all__ = ["ExplanationPath", "PathFinder", "RANKINGS", "path_text", "relation_label"]

INTERACTED = "interacted with"
CO_INTERACTED = "is often interacted with together with"


def relation_label(name: str) -> str:
    """A readable relation name: ``film.film.directed_by`` -> ``directed by``, ``has_category`` -> ``has category``."""
    return name.rsplit(".", 1)[-1].rsplit("/", 1)[-1].rsplit("#", 1)[-1].replace("_", " ")


@dataclass(frozen=True)
class ExplanationPath:
    """One path from a user to a recommended item.

    Attributes:
        user_id: The user.
        item_id: The recommended item.
        history_item_id: The item from the user's training history the path starts from.
        nodes: Node keys along the path (``user:<id>``, ``item:<id>``, ``entity:<id>``).
        labels: Human-readable label of each node (titles, entity labels).
        relations: Readable relation of each hop; ``(inverse)`` hops are read from the later node.
        score: The history item's contribution to the recommended item's score (model units).
        specificity: ``1 / log2(1 + degree)`` of the least specific entity on the path (1 without one).
        edges: The path's edges as ``(kind, a, b)`` index pairs, for the faithfulness check.
        kg_nodes: KG node indices of ``nodes[1:]``.
    """

    user_id: str
    item_id: str
    history_item_id: str
    nodes: tuple[str, ...]
    labels: tuple[str, ...]
    relations: tuple[str, ...]
    score: float
    specificity: float
    edges: tuple[tuple[str, int, int], ...]
    kg_nodes: tuple[int, ...]

    def text(self) -> str:
        """``user 196 -[interacted with]-> "A" -[genre]-> "a shared genre (m.x)" -[genre (inverse)]-> "B"``."""
        return path_text(self.user_id, self.relations, self.labels)

    def to_dict(self) -> dict:
        """JSON-ready fields (no internal edge indices)."""
        record = asdict(self)
        record.pop("edges")
        record.pop("kg_nodes")
        return {key: list(value) if isinstance(value, tuple) else value for key, value in record.items()}


# A relation name ending in one of these reads as a verb phrase ("directed by"), not a noun ("genre").
_PREPOSITIONS = {"by", "in", "of", "to", "with", "from", "for", "on", "at", "as"}


def _describe(path: ExplanationPath, position: int) -> str:
    """What the unlabelled entity at ``kg_nodes[position]`` is, read from the relations of its two hops.

    ``relations[position]`` leads into the entity, ``relations[position + 1]`` out of it. A forward hop
    in (``A -[genre]-> e``) or an inverse hop out (``e -[genre (inverse)]-> B``) says the entity is a
    genre; between two items it is a shared one. Verb-like relation names read as such
    (``directed by``: "what both are directed by"), ``has X`` as ``X``.
    """
    into, out = path.relations[position], path.relations[position + 1]
    if not into.endswith(" (inverse)"):
        kind = into
    elif out.endswith(" (inverse)"):
        kind = out.removesuffix(" (inverse)")
    else:
        return f"an entity linked by '{out}'"
    kind = kind.removeprefix("has ").removeprefix("has_")
    shared = len(path.kg_nodes) == 3  # item, entity, item
    if kind.rsplit(" ", 1)[-1] in _PREPOSITIONS:
        return f"what both are {kind}" if shared else f"what it is {kind}"
    if shared:
        return f"a shared {kind}"
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def path_text(user_id: str, relations: Sequence[str], labels: Sequence[str]) -> str:
    """A path as one line (:meth:`ExplanationPath.text`; also for paths that travel as dicts, e.g. in JSON)."""
    hops = [f'-[{relation}]-> "{label}"' for relation, label in zip(relations, labels[1:])]
    return " ".join([f"user {user_id}", *hops])


def _informative(path: ExplanationPath) -> tuple[bool, float, float]:
    # A positive contribution scaled by specificity; a path against the item (EASE can weigh negatively) after.
    return (path.score > 0, path.score * path.specificity if path.score > 0 else path.score, path.specificity)


#: How paths are ordered (best first): by contribution x specificity, or by contribution alone.
RANKINGS: dict[str, Callable[[ExplanationPath], tuple]] = {
    "informative": _informative,
    "contribution": lambda path: (path.score, path.specificity),
}


def _distinct_facts(paths: list[ExplanationPath]) -> list[ExplanationPath]:
    """The first (best) path of each shared fact: paths through the same KG entities tell the same thing about the
    item however many history items they start from; collaborative paths differ by their history item."""
    seen: set[tuple] = set()
    kept = []
    for path in paths:
        key = tuple(path.kg_nodes[1:-1]) or ("history", path.history_item_id)
        if key not in seen:
            seen.add(key)
            kept.append(path)
    return kept


class PathFinder:
    """Bounded path search and model-based path scores for one trained run.

    Args:
        recommender: A trained run.
        max_fanout: Entities expanded per node, most specific first.
        max_hops: KG hops between the history item and the recommended item (1 or 2 entities).
        labels: ``iri -> label`` lookup (e.g. ``LocalStore.labels`` over an endpoint); without it,
            the labels the graph was built with.
        entity_labels: ``entity id -> label`` given by the user (``--labels FILE``), used first.

    An entity with no label anywhere is described by the relation that links it to the path's items
    (``a shared genre (m.02kdv5l)``), so no explanation shows a bare id.
    """

    def __init__(
        self,
        recommender: Recommender,
        max_fanout: int = 50,
        max_hops: int = 2,
        labels: Callable[[list[str]], dict[str, str]] | None = None,
        entity_labels: dict[str, str] | None = None,
        ranking: str = "informative",
    ) -> None:
        if max_hops not in (1, 2):
            raise InputError(f"max_hops must be 1 or 2, not {max_hops}")
        if ranking not in RANKINGS:
            raise InputError(f"unknown path ranking '{ranking}' (known: {', '.join(RANKINGS)})")
        self.ranking = ranking
        self.recommender, self.max_fanout, self.max_hops = recommender, max_fanout, max_hops
        self._label_lookup = labels
        self._entity_labels = entity_labels or {}
        graph = recommender.graph
        self.num_items = len(graph.items)
        heads, relations, tails = graph.triples[:, 0], graph.triples[:, 1], graph.triples[:, 2]
        num_nodes = graph.num_kg_nodes
        # Both directions in one CSR-like layout (indptr, neighbour, signed triple id + 1). Built by hand:
        # scipy would add up the ids of two triples that join the same pair of nodes.
        ids = np.arange(1, len(heads) + 1)
        rows, cols, edges = np.concatenate([heads, tails]), np.concatenate([tails, heads]), np.concatenate([ids, -ids])
        order = np.argsort(rows, kind="stable")
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=num_nodes))])
        self.neighbours, self.edge_ids = cols[order], edges[order]
        self.degree = np.diff(self.indptr)
        self.relations = relations
        self.relation_names = [relation_label(name) for name in graph.relations.ids]
        self.history = recommender.interactions("train").tocsr()
        self.user_degree = np.asarray(self.history.getnnz(axis=1), dtype=float)
        self.item_degree = np.asarray(self.history.getnnz(axis=0), dtype=float)
        self._reps: Representations | None = None

    # -- model side -------------------------------------------------------------------------
    @torch.no_grad()
    def contributions(self, user: int, item: int, history: np.ndarray) -> np.ndarray:
        """``(len(history),)`` contribution of each history item to ``score(user, item)``."""
        model = self.recommender.model
        if self._reps is None:
            self._reps = self.recommender.representations()
        item_rep = self._reps.item.float().cpu()
        embedding = (item_rep[history] @ item_rep[item]).numpy()
        embedding = embedding / np.sqrt(np.maximum(self.user_degree[user] * self.item_degree[history], 1.0))
        for term in model.active_terms():
            part = term.history_contributions(torch.from_numpy(history).to(term.blend.device), item)
            if part is not None:
                embedding = embedding + float(term.blend) * part.float().cpu().numpy()
        return embedding

    # -- graph side -------------------------------------------------------------------------
    def _neighbours(self, node: int, entities_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(neighbour nodes, signed triple ids), the ``max_fanout`` most specific (lowest degree) first."""
        start, stop = self.indptr[node], self.indptr[node + 1]
        nodes, edges = self.neighbours[start:stop], self.edge_ids[start:stop]
        if entities_only:
            keep = nodes >= self.num_items
            nodes, edges = nodes[keep], edges[keep]
        order = np.argsort(self.degree[nodes], kind="stable")[: self.max_fanout]
        return nodes[order], edges[order]

    def find(self, user_id: str, item_id: str, max_paths: int = 5, distinct: bool = True) -> list[ExplanationPath]:
        """The top ``max_paths`` paths from ``user_id`` to ``item_id``, best first; with ``distinct``, one per shared
        fact (the faithfulness check asks for them all, to compare paths from different history items)."""
        graph = self.recommender.graph
        if user_id not in graph.users:
            raise InputError(f"unknown user id '{user_id}'")
        if item_id not in graph.items:
            raise InputError(f"unknown item id '{item_id}'")
        user, item = int(graph.users.to_index([user_id])[0]), int(graph.items.to_index([item_id])[0])
        history = self.history.indices[self.history.indptr[user] : self.history.indptr[user + 1]]
        used = bool((history == item).any())  # an in-context run recommends what the user already uses
        history = history[history != item]
        if len(history) == 0:
            return self._with_labels([self._used_path(user_id, user, item)]) if used else []
        contribution = dict(zip(history.tolist(), self.contributions(user, item, history).tolist()))
        in_history = np.zeros(graph.num_kg_nodes, dtype=bool)
        in_history[history] = True

        found: list[tuple[int, list[int], list[int]]] = []  # (history item, entity nodes, signed triple ids)
        for entity, last in zip(*self._neighbours(item, entities_only=False)):
            if entity < self.num_items:  # an item-item KG edge: history item -> item directly
                if in_history[entity]:
                    found.append((int(entity), [], [int(-last)]))
                continue
            nodes, edges = self._neighbours(entity, entities_only=False)
            for start, first in zip(nodes[in_history[nodes]], edges[in_history[nodes]]):
                found.append((int(start), [int(entity)], [int(first), int(last)]))
            if self.max_hops == 2:
                for middle, second in zip(*self._neighbours(entity)):
                    nodes, edges = self._neighbours(middle, entities_only=False)
                    for start, first in zip(nodes[in_history[nodes]], edges[in_history[nodes]]):
                        found.append((int(start), [int(middle), int(entity)], [int(first), int(second), int(last)]))
        paths = [
            self._path(user_id, user, item, start, entities, edges, contribution[start])
            for start, entities, edges in found
        ]
        if not paths:
            # No KG connection: the collaborative reason, from the history items that contribute most.
            best = sorted(contribution, key=lambda start: contribution[start], reverse=True)[:max_paths]
            paths = [self._path(user_id, user, item, start, [], [], contribution[start]) for start in best]
        paths = sorted(paths, key=RANKINGS[self.ranking], reverse=True)
        if distinct:
            paths = _distinct_facts(paths)
        if used:
            # The user's own use is the first reason, whatever the KG says: a shared language is no reason to
            # recommend the mail app its user opens every morning.
            return self._with_labels([self._used_path(user_id, user, item), *paths[: max_paths - 1]])
        return self._with_labels(paths[:max_paths])

    def _used_path(self, user_id: str, user: int, item: int) -> ExplanationPath:
        """The one-hop path user -> item of an item in the user's training history, scored by its own contribution
        (:meth:`contributions`, plus each weighted score term that is not a sum over history items, such as repeat use,
        without context)."""
        score = float(self.contributions(user, item, np.array([item]))[0])
        own = np.array([item])
        with torch.no_grad():
            for term in self.recommender.model.active_terms():
                if term.history_contributions(torch.from_numpy(own).to(term.blend.device), item) is None:
                    users = torch.tensor([user], device=self.recommender.device)
                    score += float(term.weighted(self.recommender.prop_graph, users, None)[0, item])
        graph = self.recommender.graph
        return ExplanationPath(
            user_id=user_id,
            item_id=graph.items.ids[item],
            history_item_id=graph.items.ids[item],
            nodes=(f"user:{user_id}", graph.node_key(item)),
            labels=(),
            relations=(INTERACTED,),
            score=score,
            specificity=1.0,
            edges=(("interaction", user, item),),
            kg_nodes=(item,),
        )

    def _path(
        self, user_id: str, user: int, item: int, start: int, entities: list[int], edges: list[int], score: float
    ) -> ExplanationPath:
        graph = self.recommender.graph
        nodes = (
            [f"user:{user_id}", graph.node_key(start)] + [graph.node_key(e) for e in entities] + [graph.node_key(item)]
        )
        if edges:
            # Each hop reads from the earlier node to the later one; "(inverse)" where the triple runs the other way.
            relations = [INTERACTED] + [
                self._relation_along(edge, a, b) for edge, a, b in zip(edges, [start, *entities], [*entities, item])
            ]
            kg_edges = [("kg", *self._triple_nodes(abs(edge) - 1)) for edge in edges]
        else:
            relations, kg_edges = [INTERACTED, CO_INTERACTED], []
        degrees = [self.degree[e] for e in entities]
        specificity = 1.0 / math.log2(1 + max(degrees)) if degrees else 1.0
        return ExplanationPath(
            user_id=user_id,
            item_id=graph.items.ids[item],
            history_item_id=graph.items.ids[start],
            nodes=tuple(nodes),
            labels=(),
            relations=tuple(relations),
            score=float(score),
            specificity=float(specificity),
            edges=(("interaction", user, start), *kg_edges),
            kg_nodes=(start, *entities, item),
        )

    def _triple_nodes(self, triple: int) -> tuple[int, int]:
        head, _, tail = self.recommender.graph.triples[triple]
        return int(head), int(tail)

    def _relation_along(self, edge: int, a: int, b: int) -> str:
        head, tail = self._triple_nodes(abs(edge) - 1)
        name = self.relation_names[self.relations[abs(edge) - 1]]
        return name if (head, tail) == (a, b) else f"{name} (inverse)"

    def _with_labels(self, paths: list[ExplanationPath]) -> list[ExplanationPath]:
        graph = self.recommender.graph
        nodes = sorted({node for path in paths for node in path.kg_nodes})
        iris = {node: node_iri(graph, node)[1:-1] for node in nodes}
        looked_up = self._label_lookup(list(iris.values())) if self._label_lookup else {}
        labels, unlabelled = {}, set()
        for node in nodes:
            own = graph.node_label(node)
            if node >= self.num_items:
                entity_id = graph.entities.ids[node - self.num_items]
                own = self._entity_labels.get(entity_id) or looked_up.get(iris[node]) or own
                # Catalog entities (categories, brands, attribute values) are named by their text already.
                if own == entity_id and graph.entity_kinds[node - self.num_items] == "entity":
                    unlabelled.add(node)
            labels[node] = own
        described = []
        for path in paths:
            names = [labels[node] for node in path.kg_nodes]
            for position, node in enumerate(path.kg_nodes):
                if node in unlabelled:
                    names[position] = f"{_describe(path, position)} ({labels[node]})"
            described.append(replace(path, labels=(path.user_id, *names)))
        return described
