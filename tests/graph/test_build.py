"""Building the KG and the PyG graph from the tiny dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.config import GraphConfig, SplitConfig
from kgrec.errors import InputError
from kgrec.graph import build_graph, to_hetero, to_networkx, to_rdflib
from kgrec.graph.rdf import DATA_IRI, ONTOLOGY_IRI


def _facts(graph) -> set[tuple[str, str, str]]:
    return {tuple(row) for row in graph.labeled_triples().tolist()}


def test_catalog_and_external_facts(tiny_graph):
    facts = _facts(tiny_graph)
    assert ("item:3", "has_category", "entity:C") in facts
    assert ("item:5", "has_brand", "entity:StudioY") in facts
    # Linked entities are merged into their items; unlinked ones stay entities.
    assert ("item:1", "directed_by", "entity:m.nolan") in facts
    assert ("item:1", "sequel", "item:2") in facts
    assert ("entity:m.nolan", "born_in", "entity:m.london") in facts
    assert not any("m.alpha" in term for fact in facts for term in fact)
    assert tiny_graph.stats["categories"] == 3 and tiny_graph.stats["brands"] == 2
    assert tiny_graph.stats["kg_triples_external"] == 6
    kinds = dict(zip(tiny_graph.entities.ids, tiny_graph.entity_kinds))
    assert kinds["A"] == "category" and kinds["StudioX"] == "brand" and kinds["m.nolan"] == "entity"


def test_cold_item_is_in_the_kg(tiny_graph):
    assert "10" in tiny_graph.items
    assert tiny_graph.stats["items"] == 10 and tiny_graph.stats["items_with_train_interactions"] == 9
    assert ("item:10", "directed_by", "entity:m.nolan") in _facts(tiny_graph)


def test_propagation_graph_holds_training_interactions_only(tiny_dataset):
    graph = build_graph(tiny_dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))))
    edge_index = to_hetero(graph)["user", "interacts", "item"].edge_index
    pairs = set(zip(graph.users.to_ids(edge_index[0]), graph.items.to_ids(edge_index[1])))
    train = set(zip(graph.split.train["user_id"], graph.split.train["item_id"]))
    held_out = set(zip(graph.split.valid["user_id"], graph.split.valid["item_id"])) | set(
        zip(graph.split.test["user_id"], graph.split.test["item_id"])
    )
    assert held_out and pairs == train and not pairs & held_out
    reverse = to_hetero(graph)["item", "rev_interacts", "user"].edge_index
    assert torch.equal(reverse, edge_index.flip(0))


def test_hetero_kg_edges_match_triples(tiny_graph):
    data = to_hetero(tiny_graph)
    num_items = len(tiny_graph.items)
    rebuilt = []
    for (src, name, dst), store in data.edge_items():
        if name != "kg":
            continue
        heads = store.edge_index[0] + (0 if src == "item" else num_items)
        tails = store.edge_index[1] + (0 if dst == "item" else num_items)
        rebuilt += list(zip(heads.tolist(), store.relation.tolist(), tails.tolist()))
    assert sorted(rebuilt) == sorted(map(tuple, tiny_graph.triples.tolist()))
    assert data["entity"].num_nodes == len(tiny_graph.entities)


def test_no_reverse_edges_when_disabled(tiny_dataset):
    graph = build_graph(tiny_dataset, GraphConfig(reverse_edges=False))
    assert not any(name.startswith("rev_") for _, name, _ in to_hetero(graph).edge_types)


def test_relation_filter_and_attribute_columns(tiny_dataset):
    graph = build_graph(tiny_dataset, GraphConfig(relations=("directed_by",), attribute_columns=("description",)))
    relations = set(graph.relations.ids)
    assert relations == {"has_category", "has_brand", "directed_by", "description"}
    with pytest.raises(InputError, match="not in the triples"):
        build_graph(tiny_dataset, GraphConfig(relations=("nope",)))
    with pytest.raises(InputError, match="not a catalog column"):
        build_graph(tiny_dataset, GraphConfig(attribute_columns=("year",)))


def test_rdf_reads_back_with_rdflib(tiny_graph):
    import rdflib

    rdf = to_rdflib(tiny_graph)
    kgrec = rdflib.Namespace(ONTOLOGY_IRI)
    item1 = rdflib.URIRef(f"{DATA_IRI}item/1")
    assert (item1, rdflib.RDF.type, kgrec.Item) in rdf
    assert str(rdf.value(item1, rdflib.RDFS.label)) == "Alpha"
    assert (item1, kgrec.hasCategory, rdflib.URIRef(f"{DATA_IRI}entity/A")) in rdf
    relation_triples = [t for t in rdf if isinstance(t[2], rdflib.URIRef) and t[1] != rdflib.RDF.type]
    assert len(relation_triples) == len(tiny_graph.triples)
    answer = rdf.query(
        "SELECT ?title WHERE { ?item kgrec:hasBrand ?b . ?b rdfs:label 'StudioX' . ?item rdfs:label ?title }",
        initNs={"kgrec": kgrec, "rdfs": rdflib.RDFS},
    )
    assert {str(row.title) for row in answer} == {"Alpha", "Beta", "Theta", "Kappa"}


def test_networkx_view(tiny_graph):
    view = to_networkx(tiny_graph)
    assert view.number_of_nodes() == tiny_graph.num_kg_nodes
    assert view.number_of_edges() == len(tiny_graph.triples)
    assert view.nodes["item:1"] == {"kind": "item", "label": "Alpha"}
    assert view.has_edge("item:1", "entity:m.nolan", key="directed_by")


def test_triples_are_unique_and_in_range(tiny_graph):
    triples = tiny_graph.triples
    assert len(np.unique(triples, axis=0)) == len(triples)
    assert triples[:, [0, 2]].max() < tiny_graph.num_kg_nodes
    assert triples[:, 1].max() < len(tiny_graph.relations)
