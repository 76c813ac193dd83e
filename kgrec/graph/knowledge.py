"""KnowledgeGraph: the built graph as a plain record (id maps, KG triples, split, catalog).

It imports none of its conversions: the PyG graph (:func:`kgrec.graph.hetero.to_hetero`), NetworkX
(:func:`kgrec.graph.views.to_networkx`), rdflib (:func:`kgrec.graph.rdf.to_rdflib`), files
(:func:`kgrec.graph.store.save_graph` / ``load_graph``) and the build itself (:mod:`kgrec.graph.build`) are
functions of it, as PyG's ``torch_geometric.utils.to_networkx`` is of a ``Data``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from kgrec.config import GraphConfig
from kgrec.data.ids import IdMap
from kgrec.data.split import SPLIT_NAMES, Split
from kgrec.errors import InputError

__all__ = ["KnowledgeGraph", "index_triples", "CATEGORY_RELATION", "BRAND_RELATION", "ENTITY_KINDS"]

CATEGORY_RELATION = "has_category"
BRAND_RELATION = "has_brand"
# Order matters: an entity used both as a category and a brand is typed by the first kind.
ENTITY_KINDS = ("category", "brand", "attribute", "entity")


@dataclass(frozen=True)
class KnowledgeGraph:
    """The output of ``build-graph``: everything later stages read, and nothing they may not.

    KG node indices: item *i* is KG node *i*; entity *j* is KG node ``num_items + j``. So row *i*
    of any item tensor and of any KG-entity tensor (PyKEEN's, once issued) is the same item.

    Attributes:
        name: Graph name (the dataset's, by default).
        config: The :class:`~kgrec.config.GraphConfig` it was built with.
        users: Users with at least one interaction.
        items: Every catalog item, interacted or not.
        entities: Non-item KG entities (categories, brands, external entities).
        relations: KG relation names.
        entity_kinds: For each entity, one of :data:`ENTITY_KINDS`.
        triples: ``(num_triples, 3)`` int64 ``(head node, relation, tail node)``, deduplicated.
        split: The train/valid/test interactions; only train ever enters a propagation graph.
        catalog: Item metadata in ``items`` order (title, description, categories, brands, ...).
        user_table: User attributes in ``users`` order, or ``None``.
        entity_labels: Human-readable labels for entities where the input had them.
        stats: Counts written to ``stats.json``.
    """

    name: str
    config: GraphConfig
    users: IdMap
    items: IdMap
    entities: IdMap
    relations: IdMap
    entity_kinds: tuple[str, ...]
    triples: np.ndarray
    split: Split
    catalog: pd.DataFrame
    user_table: pd.DataFrame | None = None
    entity_labels: dict[str, str] = field(default_factory=dict)
    stats: dict = field(default_factory=dict)

    @property
    def num_kg_nodes(self) -> int:
        """Items plus entities."""
        return len(self.items) + len(self.entities)

    def node_key(self, node: int) -> str:
        """A readable unique key of a KG node: ``item:<id>`` or ``entity:<id>``."""
        if node < len(self.items):
            return f"item:{self.items.ids[node]}"
        return f"entity:{self.entities.ids[node - len(self.items)]}"

    def node_label(self, node: int) -> str:
        """A human-readable label: the item's title, the entity's label, else its id."""
        if node < len(self.items):
            title = self.catalog["title"].iat[node]
            return title or self.items.ids[node]
        entity_id = self.entities.ids[node - len(self.items)]
        return self.entity_labels.get(entity_id, entity_id)

    def with_items(self, rows: pd.DataFrame) -> KnowledgeGraph:
        """This graph plus catalog ``rows`` (the columns ``read_catalog`` returns) as new items without interactions.

        New items go after the existing ones, so every existing item keeps its index; entities move
        up by the number of new items (KG node order is items, then entities). Each new item is linked
        to the categories, brands and attribute values it names *that the graph already has*;
        unknown ones are counted in ``stats["new_items"]`` (a new entity would have no embedding).
        """
        taken = [item for item in rows["item_id"] if item in self.items]
        if taken:
            raise InputError(f"new item id '{taken[0]}' is already in the graph")
        count = len(rows)
        items = IdMap(self.items.ids + tuple(rows["item_id"]))
        catalog = pd.concat([self.catalog, rows.drop(columns=["_line"], errors="ignore")], ignore_index=True)
        catalog = catalog[self.catalog.columns]
        shifted = self.triples.copy()
        shifted[:, [0, 2]] += np.where(shifted[:, [0, 2]] >= len(self.items), count, 0)
        new, missing = [], 0
        for offset, (_, row) in enumerate(rows.iterrows()):
            node = len(self.items) + offset
            facts = [(CATEGORY_RELATION, value) for value in row.get("categories", ())]
            facts += [(BRAND_RELATION, value) for value in row.get("brands", ())]
            facts += [
                (column, f"{column}:{str(row[column]).strip()}")
                for column in self.config.attribute_columns
                if column in row and str(row[column]).strip()
            ]
            for relation, entity in facts:
                if entity in self.entities and relation in self.relations:
                    new.append((node, self.relations.index_of(relation), len(items) + self.entities.index_of(entity)))
                else:
                    missing += 1
        triples = np.concatenate([shifted, np.array(new, dtype=np.int64).reshape(-1, 3)])
        stats = {**self.stats, "new_items": {"items": count, "links": len(new), "unknown_entities": missing}}
        return replace(self, items=items, catalog=catalog, triples=triples, stats=stats)

    def with_interactions(self, log: pd.DataFrame) -> KnowledgeGraph:
        """This graph plus ``log`` (``user_id, item_id`` [, rating, timestamp, context columns]) as *training* interactions.

        For ``kgrec update``: new users go after the existing ones (every existing user and item keeps
        its index), their attribute rows are empty; validation and test stay as they were, so an
        updated model is selected and evaluated like the one it starts from. Pairs already in the
        graph (any part) and rows below ``split.min_rating`` are left out and counted in
        ``stats["update"]``.

        Raises:
            InputError: naming the first row whose item is not in the catalog.
        """
        unknown = ~log["item_id"].isin(list(self.items.ids))
        if unknown.any():
            row = log[unknown].iloc[0]
            where = f"row {int(row['_line'])}: " if "_line" in log else ""
            raise InputError(
                f"{where}unknown item id '{row['item_id']}' (not in the run's catalog; add it as a new item first)"
            )
        rows = log.drop(columns=["_line"], errors="ignore")
        below = 0
        if self.config.split.min_rating is not None and "rating" in rows:
            keep = rows["rating"] >= self.config.split.min_rating
            below, rows = int((~keep).sum()), rows[keep]
        old = self.split.interactions
        known = pd.MultiIndex.from_frame(old[["user_id", "item_id"]])
        fresh = ~pd.MultiIndex.from_frame(rows[["user_id", "item_id"]]).isin(known)
        repeated, rows = int((~fresh).sum()), rows[fresh]
        new_users = [user for user in dict.fromkeys(rows["user_id"]) if user not in self.users]
        users = IdMap(self.users.ids + tuple(new_users))
        split_log = pd.concat([old, rows.assign(split="train")], ignore_index=True)
        split_log["split"] = pd.Categorical(split_log["split"].astype(str), categories=list(SPLIT_NAMES))
        user_table = self.user_table
        if user_table is not None and new_users:
            empty = {column: "" for column in user_table.columns if column != "user_id"}  # unknown attributes
            user_table = pd.concat([user_table, pd.DataFrame({"user_id": new_users, **empty})], ignore_index=True)
        stats = {
            **self.stats,
            "update": {
                "added": len(rows),
                "new_users": len(new_users),
                "already_known": repeated,
                "below_min_rating": below,
            },
        }
        return replace(
            self, users=users, split=replace(self.split, interactions=split_log), user_table=user_table, stats=stats
        )

    @cached_property
    def digest(self) -> str:
        """A checksum of what a trained model depends on: the id maps, the split and the KG triples.

        A run records it and refuses a graph whose digest differs (rebuilt with another seed, other
        data or other items), which would otherwise evaluate a model on its own training data.
        """
        import hashlib

        digest = hashlib.sha256(b"kgrec-graph-digest-1")
        for ids in (self.users.ids, self.items.ids, self.entities.ids, self.relations.ids):
            digest.update(len(ids).to_bytes(8, "little"))
            digest.update("\x00".join(ids).encode("utf-8", "surrogatepass"))
        log = self.split.interactions
        digest.update(self.users.to_index(log["user_id"].to_numpy()).tobytes())
        digest.update(self.items.to_index(log["item_id"].to_numpy()).tobytes())
        digest.update(
            pd.Categorical(log["split"].astype(str), categories=list(SPLIT_NAMES)).codes.astype(np.int8).tobytes()
        )
        digest.update(np.ascontiguousarray(self.triples, dtype=np.int64).tobytes())
        return digest.hexdigest()[:20]

    @cached_property
    def split_digest(self) -> str:
        """A checksum of the interactions and which split part each is in, by external ids (order-free).

        Two runs evaluated on graphs with the same split digest were ranked against the same held-out
        interactions, whatever their KG, catalog text or item order: what a paired comparison needs.
        """
        import hashlib

        log = self.split.interactions
        rows = sorted(zip(log["user_id"].astype(str), log["item_id"].astype(str), log["split"].astype(str)))
        digest = hashlib.sha256(b"kgrec-split-digest-1")
        digest.update("\n".join("\t".join(row) for row in rows).encode("utf-8", "surrogatepass"))
        return digest.hexdigest()[:20]

    def labeled_triples(self) -> np.ndarray:
        """``(num_triples, 3)`` strings ``(node key, relation, node key)``, the form PyKEEN reads."""
        keys = np.array([self.node_key(n) for n in range(self.num_kg_nodes)], dtype=object)
        relations = np.array(self.relations.ids, dtype=object)
        return np.stack([keys[self.triples[:, 0]], relations[self.triples[:, 1]], keys[self.triples[:, 2]]], axis=1)


def index_triples(keyed: pd.DataFrame, items: IdMap, entities: IdMap, relations: IdMap) -> np.ndarray:
    """``(n, 3)`` int64 KG node/relation indices of triples given as ``head``/``relation``/``tail`` node keys.

    Raises:
        KeyError: naming the first key that is no node (or relation) of the maps.
    """
    node_of = {f"item:{item}": i for i, item in enumerate(items.ids)}
    node_of.update({f"entity:{e}": len(items) + j for j, e in enumerate(entities.ids)})
    columns = []
    for column in ("head", "tail"):
        nodes = keyed[column].map(node_of)
        if nodes.isna().any():
            raise KeyError(f"unknown node {keyed[column][nodes.isna()].iloc[0]!r}")
        columns.append(nodes.to_numpy(np.int64))
    return np.stack([columns[0], relations.to_index(keyed["relation"].to_numpy()), columns[1]], axis=1).reshape(-1, 3)
