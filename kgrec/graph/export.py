"""Export a built graph's split as RecBole atomic benchmark files, so peers train on the identical split."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kgrec.graph.knowledge import KnowledgeGraph
from kgrec.io import atomic_dir, safe_name

__all__ = ["export_recbole"]


def _write_atomic(frame: pd.DataFrame, types: dict[str, str], path: Path) -> None:
    """One RecBole atomic file: tab-separated, a ``name:type`` header, one record per line.

    RecBole reads fields unquoted, so tabs and line breaks inside values become spaces.
    """
    header = "\t".join(f"{column}:{types[column]}" for column in frame.columns)
    frame = frame.copy()
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype(str).str.replace(r"[\t\r\n]+", " ", regex=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(header + "\n")
        frame.to_csv(handle, sep="\t", header=False, index=False, lineterminator="\n")


def export_recbole(graph: KnowledgeGraph, directory: str | Path, name: str | None = None) -> Path:
    """Write ``<name>.{train,valid,test}.inter``, ``.item``, ``.kg`` and ``.link`` into ``directory/<name>/``.

    ``name`` defaults to the graph's. (RecBole swaps in its own bundled copy for a dataset called
    ``ml-100k``, so peers need another name, e.g. ``kgrec-ml-100k``.) An existing ``directory/<name>/``
    is replaced only if it is an earlier export holding nothing else (kgrec's marker says so); any
    other folder there is refused, never deleted.

    Items stand for themselves as KG entities (``item:<id>`` keys), so the ``.link`` table maps
    each item id to its own key and the ``.kg`` file holds the whole KG, catalog facts included.
    """
    name = safe_name(name or graph.name, "export name")
    target = Path(directory) / name
    with atomic_dir(target, "export") as tmp:
        log = graph.split.interactions
        columns = ["user_id", "item_id"] + [c for c in ("rating", "timestamp") if c in log]
        types = {"user_id": "token", "item_id": "token", "rating": "float", "timestamp": "float"}
        for part in ("train", "valid", "test"):
            _write_atomic(log.loc[log["split"] == part, columns], types, tmp / f"{name}.{part}.inter")
        items = pd.DataFrame(
            {
                "item_id": list(graph.items.ids),
                "title": graph.catalog["title"].str.replace(r"\s+", " ", regex=True),
                "categories": graph.catalog["categories"].map(
                    lambda values: " ".join(v.replace(" ", "_") for v in values)
                ),
            }
        )
        _write_atomic(
            items, {"item_id": "token", "title": "token_seq", "categories": "token_seq"}, tmp / f"{name}.item"
        )
        kg = pd.DataFrame(graph.labeled_triples(), columns=["head_id", "relation_id", "tail_id"])
        kg_types = {"head_id": "token", "relation_id": "token", "tail_id": "token"}
        _write_atomic(kg, kg_types, tmp / f"{name}.kg")
        links = pd.DataFrame({"item_id": list(graph.items.ids), "entity_id": [f"item:{i}" for i in graph.items.ids]})
        _write_atomic(links, {"item_id": "token", "entity_id": "token"}, tmp / f"{name}.link")
    return target
