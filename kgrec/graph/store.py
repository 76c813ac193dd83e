"""Saving and loading a KnowledgeGraph directory atomically, with a manifest of versions and checksums.

Layout of ``graphs/<name>/``::

    manifest.json       format version, kgrec version, graph config, sha256 of every file
    stats.json          counts (see kgrec.graph.stats)
    ids.json            users, items, entities (+ kinds, labels), relations in index order
    kg.nt               the RDF knowledge graph (N-Triples), ontology.ttl beside it
    kg_triples.tsv      the same KG as head/relation/tail node keys (what PyKEEN reads)
    networkx.json       the NetworkX view (node-link JSON)
    hetero.pt           the PyG user-item-entity graph as plain tensors (training interactions only)
    interactions.parquet, items.parquet, users.parquet    the split log and the catalog
"""

from __future__ import annotations

import csv
import datetime
import json
from pathlib import Path

import pandas as pd

from kgrec._version import __version__
from kgrec.config import GraphConfig
from kgrec.data.ids import IdMap
from kgrec.data.split import SPLIT_NAMES, Split
from kgrec.errors import InputError
from kgrec.graph.knowledge import KnowledgeGraph, index_triples
from kgrec.graph.rdf import iter_ntriples, ontology_turtle
from kgrec.graph.views import to_networkx, write_networkx
from kgrec.io import MARKER_NAME, atomic_dir, load_tensors, save_tensors, sha256_file

__all__ = ["save_graph", "load_graph", "GRAPH_FORMAT_VERSION"]

GRAPH_FORMAT_VERSION = 1
_LIST_COLUMNS = ("categories", "brands")


def save_graph(graph: KnowledgeGraph, directory: str | Path) -> Path:
    """Write ``graph`` to ``directory``; an existing graph there is replaced only once the new one is complete.

    Raises:
        InputError: if ``directory`` exists and is not a kgrec graph (a folder kgrec did not create is never touched).
    """
    from kgrec.graph.hetero import hetero_to_tensors, to_hetero

    directory = Path(directory)
    # The embedding cache is keyed by content, so it stays valid across rebuilds and moves into the new folder.
    with atomic_dir(directory, "graph", keep=("cache",)) as tmp:
        (tmp / "ontology.ttl").write_text(ontology_turtle(), encoding="utf-8")
        with open(tmp / "kg.nt", "w", encoding="utf-8") as handle:
            handle.writelines(iter_ntriples(graph))
        # Quoted where a key holds a tab, quote or newline; load_graph reads it with the same rule.
        pd.DataFrame(graph.labeled_triples(), columns=["head", "relation", "tail"]).to_csv(
            tmp / "kg_triples.tsv", sep="\t", index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n"
        )
        ids = {
            "users": list(graph.users.ids),
            "items": list(graph.items.ids),
            "entities": list(graph.entities.ids),
            "entity_kinds": list(graph.entity_kinds),
            "relations": list(graph.relations.ids),
            "entity_labels": graph.entity_labels,
        }
        (tmp / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
        with open(tmp / "networkx.json", "w", encoding="utf-8") as handle:
            write_networkx(to_networkx(graph), handle)
        save_tensors(hetero_to_tensors(to_hetero(graph)), tmp / "hetero.pt")
        interactions = graph.split.interactions.assign(split=graph.split.interactions["split"].astype(str))
        interactions.to_parquet(tmp / "interactions.parquet", index=False)
        catalog = graph.catalog.copy()
        for column in _LIST_COLUMNS:
            catalog[column] = catalog[column].map(list)
        catalog.to_parquet(tmp / "items.parquet", index=False)
        if graph.user_table is not None:
            graph.user_table.to_parquet(tmp / "users.parquet", index=False)
        (tmp / "stats.json").write_text(json.dumps(graph.stats, indent=2), encoding="utf-8")
        manifest = {
            "format": "kgrec-graph",
            "format_version": GRAPH_FORMAT_VERSION,
            "kgrec_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "name": graph.name,
            "config": graph.config.model_dump(mode="json"),
            "cold_items": list(graph.split.cold_items),
            "digest": graph.digest,
            "files": {path.name: sha256_file(path) for path in sorted(tmp.iterdir()) if path.name != MARKER_NAME},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return directory


def _read_manifest(directory: Path) -> dict:
    path = directory / "manifest.json"
    if not path.is_file():
        raise InputError(
            "not a kgrec graph directory (no manifest.json); build one with 'kgrec build-graph'", directory
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"corrupted manifest: {error}", path) from None
    if manifest.get("format") != "kgrec-graph" or manifest.get("format_version") != GRAPH_FORMAT_VERSION:
        raise InputError(
            f"graph format {manifest.get('format')} v{manifest.get('format_version')} written by kgrec "
            f"{manifest.get('kgrec_version')}; this kgrec reads v{GRAPH_FORMAT_VERSION}: rebuild it with 'kgrec build-graph'",
            path,
        )
    for name, expected in manifest["files"].items():
        file = directory / name
        if Path(name).name != name or name in ("", ".", ".."):  # only files of the folder itself are read
            raise InputError(
                f"manifest.json lists '{name}', which is not a file of the graph folder; rebuild the graph", path
            )
        if not file.is_file():
            raise InputError("file listed in manifest.json is missing; rebuild the graph", file)
        if sha256_file(file) != expected:
            raise InputError("checksum differs from manifest.json (file changed or corrupted); rebuild the graph", file)
    return manifest


def load_graph(directory: str | Path) -> KnowledgeGraph:
    """Read a graph written by :func:`save_graph`, verifying its format version and checksums."""
    from kgrec.graph.hetero import hetero_from_tensors, keep_hetero

    directory = Path(directory)
    manifest = _read_manifest(directory)
    ids = json.loads((directory / "ids.json").read_text(encoding="utf-8"))
    items, entities = IdMap(tuple(ids["items"])), IdMap(tuple(ids["entities"]))
    relations = IdMap(tuple(ids["relations"]))
    labeled = pd.read_csv(
        directory / "kg_triples.tsv",
        sep="\t",
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        quoting=csv.QUOTE_MINIMAL,
    )
    try:
        triples = index_triples(labeled, items, entities, relations)
    except KeyError as error:
        raise InputError(
            f"names a node or relation not in ids.json ({error.args[0]}); rebuild the graph",
            directory / "kg_triples.tsv",
        ) from None
    interactions = pd.read_parquet(directory / "interactions.parquet")
    interactions["split"] = pd.Categorical(interactions["split"], categories=list(SPLIT_NAMES))
    catalog = pd.read_parquet(directory / "items.parquet")
    for column in _LIST_COLUMNS:
        catalog[column] = catalog[column].map(tuple)
    users_path = directory / "users.parquet"
    config = GraphConfig.model_validate(manifest["config"])
    graph = KnowledgeGraph(
        name=manifest["name"],
        config=config,
        users=IdMap(tuple(ids["users"])),
        items=items,
        entities=entities,
        relations=relations,
        entity_kinds=tuple(ids["entity_kinds"]),
        triples=triples,
        split=Split(interactions, config.split, tuple(manifest.get("cold_items", ()))),
        catalog=catalog,
        user_table=pd.read_parquet(users_path) if users_path.is_file() else None,
        entity_labels=ids["entity_labels"],
        stats=json.loads((directory / "stats.json").read_text(encoding="utf-8")),
    )
    # The PyG view from disk, so loading never rebuilds it.
    keep_hetero(graph, hetero_from_tensors(load_tensors(directory / "hetero.pt")))
    if "digest" in manifest:  # graphs written before digests were recorded compute theirs on first use
        graph.__dict__["digest"] = manifest["digest"]
    return graph
