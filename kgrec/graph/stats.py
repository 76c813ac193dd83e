"""The counts build-graph prints and saves as stats.json (``graph_stats``, ``format_stats``)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kgrec.data.dataset import Dataset
from kgrec.data.split import split_warnings

if TYPE_CHECKING:
    from kgrec.graph.knowledge import KnowledgeGraph

__all__ = ["graph_stats", "format_stats"]


def graph_stats(graph: KnowledgeGraph, dataset: Dataset, facts: pd.DataFrame, build_seconds: float) -> dict[str, Any]:
    """Count what the graph holds and what validation changed, for ``stats.json``."""
    kinds = Counter(graph.entity_kinds)
    num_items = len(graph.items)
    train = graph.split.train
    counts = graph.split.counts()
    item_nodes_in_kg = np.unique(graph.triples[:, [0, 2]])
    return {
        "name": graph.name,
        "users": len(graph.users),
        "items": num_items,
        "items_with_train_interactions": int(train["item_id"].nunique()),
        "categories": kinds.get("category", 0),
        "brands": kinds.get("brand", 0),
        "attribute_values": kinds.get("attribute", 0),
        "other_entities": kinds.get("entity", 0),
        "entities": len(graph.entities),
        "relations": len(graph.relations),
        "kg_triples": int(len(graph.triples)),
        "kg_triples_catalog": int((facts["kind"] != "entity").sum()),  # categories, brands, attributes
        "kg_triples_external": int((facts["kind"] == "entity").sum()),
        "external_triples_read": int(len(dataset.triples)),
        "items_linked_to_entities": int(len(dataset.links)),
        "items_in_kg": int((item_nodes_in_kg < num_items).sum()),
        "interactions": {**counts, "total": int(sum(counts.values()))},
        "density_train": round(len(train) / max(1, len(graph.users) * num_items), 6),
        "split": graph.split.config.model_dump(mode="json"),
        "cold_items_held_out": len(graph.split.cold_items),
        "notes": [*dataset.notes, *split_warnings(graph.split, dataset.interactions)],
        "build_seconds": round(build_seconds, 3),
    }


def format_stats(stats: dict[str, Any]) -> str:
    """A short human-readable summary of :func:`graph_stats` output."""
    inter = stats["interactions"]
    lines = [
        f"graph {stats['name']}: {stats['users']:,} users, {stats['items']:,} items "
        f"({stats['items_with_train_interactions']:,} with training interactions)",
        f"  entities {stats['entities']:,}: {stats['categories']:,} categories, {stats['brands']:,} brands, "
        f"{stats['attribute_values']:,} attribute values, {stats['other_entities']:,} other; "
        f"{stats['relations']} relations",
        f"  KG triples {stats['kg_triples']:,} ({stats['kg_triples_catalog']:,} from the catalog, "
        f"{stats['kg_triples_external']:,} external of {stats['external_triples_read']:,} read, deduplicated); "
        f"{stats['items_in_kg']:,} items in the KG",
        f"  interactions {inter['total']:,}: train {inter['train']:,}, valid {inter['valid']:,}, test {inter['test']:,} "
        f"({stats['split']['kind']} split, seed {stats['split']['seed']})",
    ]
    lines += [f"  {note}" if note.startswith("warning: ") else f"  note: {note}" for note in stats["notes"]]
    return "\n".join(lines)
