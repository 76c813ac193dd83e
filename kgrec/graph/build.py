"""build_graph: a validated Dataset split and turned into a :class:`~kgrec.graph.knowledge.KnowledgeGraph`."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from kgrec.config import GraphConfig
from kgrec.data.dataset import Dataset
from kgrec.data.ids import IdMap
from kgrec.data.split import split_interactions
from kgrec.errors import InputError
from kgrec.graph.knowledge import BRAND_RELATION, CATEGORY_RELATION, ENTITY_KINDS, KnowledgeGraph, index_triples
from kgrec.graph.stats import graph_stats

__all__ = ["build_graph"]


def _resolve_terms(dataset: Dataset, items: IdMap) -> dict[str, str]:
    """Map each raw triple term to ``item:<id>`` when it stands for an item, via links or by item id."""
    terms = pd.unique(pd.concat([dataset.triples["head"], dataset.triples["tail"]], ignore_index=True))
    linked = dict(zip(dataset.links["entity_id"], dataset.links["item_id"]))
    resolved = {}
    for term in terms:
        if term in linked:
            resolved[term] = f"item:{linked[term]}"
        elif term in items:
            resolved[term] = f"item:{term}"
        else:
            resolved[term] = f"entity:{term}"
    return resolved


def _reachable(facts: pd.DataFrame, num_external: int) -> pd.DataFrame:
    """Drop facts in connected parts of the KG that hold no item: no recommendation can ever use them.

    Raises:
        InputError: when there are external triples and none of them reaches an item (wrong ids or links).
    """
    if num_external == 0:
        return facts
    keys, codes = np.unique(
        np.concatenate([facts["head"].to_numpy(str), facts["tail"].to_numpy(str)]), return_inverse=True
    )
    heads, tails = codes[: len(facts)], codes[len(facts) :]
    adjacency = sp.coo_matrix((np.ones(len(facts)), (heads, tails)), shape=(len(keys), len(keys)))
    _, component = connected_components(adjacency, directed=False)
    with_item = np.zeros(component.max() + 1, dtype=bool)
    with_item[component[np.char.startswith(keys.astype(str), "item:")]] = True
    keep = with_item[component[heads]]
    if not keep[(facts["kind"] == "entity").to_numpy()].any():
        raise InputError(
            f"none of the {num_external:,} external triples reaches an item: a triple must name an item id, or an "
            "entity the link table maps to an item (check the ids and the `links` file)"
        )
    return facts[keep].reset_index(drop=True)


def build_graph(dataset: Dataset, config: GraphConfig | None = None, name: str | None = None) -> KnowledgeGraph:
    """Split the interactions and build the knowledge graph and the PyG graph from a Dataset.

    The KG holds catalog facts (``has_category``, ``has_brand``) and the external triples,
    with linked entities merged into their items. Interactions never enter the KG.

    Args:
        dataset: The validated inputs.
        config: Split and graph options.
        name: Graph name; defaults to the dataset's.

    Returns:
        The immutable :class:`KnowledgeGraph`.
    """
    started = time.perf_counter()
    config = config or GraphConfig()
    split = split_interactions(dataset, config.split)
    items = IdMap.from_ids(dataset.items["item_id"])
    catalog = dataset.items.set_index("item_id").loc[list(items.ids)].reset_index()
    users = IdMap.from_ids(split.interactions["user_id"])

    # Catalog facts, as (head key, relation, tail key, kind of tail).
    parts = []
    for column, relation, kind in (("categories", CATEGORY_RELATION, "category"), ("brands", BRAND_RELATION, "brand")):
        exploded = catalog[["item_id", column]].explode(column).dropna()
        parts.append(
            pd.DataFrame(
                {
                    "head": "item:" + exploded["item_id"],
                    "relation": relation,
                    "tail": "entity:" + exploded[column].astype(str),
                    "kind": kind,
                }
            )
        )
    for column in config.attribute_columns:
        if column not in catalog:
            raise InputError(f"graph.attribute_columns names '{column}', which is not a catalog column")
        values = catalog[column].astype(str).str.strip()
        present = values != ""
        parts.append(
            pd.DataFrame(
                {
                    "head": "item:" + catalog.loc[present, "item_id"],
                    "relation": column,
                    # Prefixed so that the year 1995 never collides with an item or entity called '1995'.
                    "tail": f"entity:{column}:" + values[present],
                    "kind": "attribute",
                }
            )
        )
    external = dataset.triples
    if config.relations is not None:
        unknown = set(config.relations) - set(external["relation"])
        if unknown:
            raise InputError(f"graph.relations names relations not in the triples: {sorted(unknown)}")
        external = external[external["relation"].isin(config.relations)]
    terms = _resolve_terms(dataset, items)
    parts.append(
        pd.DataFrame(
            {
                "head": external["head"].map(terms),
                "relation": external["relation"],
                "tail": external["tail"].map(terms),
                "kind": "entity",
            }
        )
    )
    facts = _reachable(pd.concat(parts, ignore_index=True), len(external))

    # Entities in a fixed order; kind by first use in ENTITY_KINDS order.
    entity_keys = pd.concat(
        [
            facts.loc[facts["head"].str.startswith("entity:"), ["head", "kind"]]
            .rename(columns={"head": "tail"})
            .assign(kind="entity"),
            facts.loc[facts["tail"].str.startswith("entity:"), ["tail", "kind"]],
        ],
        ignore_index=True,
    )
    entity_keys["rank"] = entity_keys["kind"].map({k: i for i, k in enumerate(ENTITY_KINDS)})
    kind_of = entity_keys.groupby("tail")["rank"].min()
    entities = IdMap.from_ids(key[len("entity:") :] for key in kind_of.index)
    kinds = tuple(ENTITY_KINDS[kind_of[f"entity:{e}"]] for e in entities.ids)
    relations = IdMap.from_ids(facts["relation"])

    triples = np.unique(index_triples(facts, items, entities, relations), axis=0)

    user_table = None
    if dataset.users is not None:
        user_table = dataset.users.set_index("user_id").loc[list(users.ids)].reset_index()
    graph = KnowledgeGraph(
        name=name or dataset.name,
        config=config,
        users=users,
        items=items,
        entities=entities,
        relations=relations,
        entity_kinds=kinds,
        triples=triples,
        split=split,
        catalog=catalog,
        user_table=user_table,
        entity_labels=dict(dataset.entity_labels),
    )
    stats = graph_stats(graph, dataset, facts, build_seconds=time.perf_counter() - started)
    return replace(graph, stats=stats)
