"""Saving and loading graph directories: round trip, atomicity, corruption and version checks."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from kgrec.errors import InputError
from kgrec.graph import KnowledgeGraph
from kgrec.graph import store as store_module


def test_round_trip(tmp_path, tiny_graph):
    tiny_graph.save(tmp_path / "g")
    loaded = KnowledgeGraph.load(tmp_path / "g")
    assert loaded.items == tiny_graph.items and loaded.users == tiny_graph.users
    assert loaded.entities == tiny_graph.entities and loaded.relations == tiny_graph.relations
    assert loaded.entity_kinds == tiny_graph.entity_kinds
    assert (loaded.triples == tiny_graph.triples).all()
    pd.testing.assert_frame_equal(loaded.split.interactions, tiny_graph.split.interactions)
    pd.testing.assert_frame_equal(loaded.catalog, tiny_graph.catalog)
    for edge_type in tiny_graph.hetero.edge_types:
        assert torch.equal(loaded.hetero[edge_type].edge_index, tiny_graph.hetero[edge_type].edge_index)
    assert loaded.stats == json.loads(json.dumps(tiny_graph.stats))
    assert loaded.config == tiny_graph.config


def test_failed_save_leaves_previous_graph(tmp_path, tiny_graph, monkeypatch):
    out = tmp_path / "out"
    tiny_graph.save(out / "g")
    before = {p.name: p.read_bytes() for p in (out / "g").iterdir()}

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store_module, "write_networkx", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        tiny_graph.save(out / "g")
    assert {p.name: p.read_bytes() for p in (out / "g").iterdir()} == before
    assert [p.name for p in out.iterdir()] == ["g"]  # no temporary directory left


def test_failed_first_save_leaves_nothing(tmp_path, tiny_graph, monkeypatch):
    monkeypatch.setattr(store_module, "write_networkx", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        tiny_graph.save(tmp_path / "out" / "g")
    assert list((tmp_path / "out").iterdir()) == []


def test_refuses_to_overwrite_foreign_directory(tmp_path, tiny_graph):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="not a kgrec graph directory"):
        tiny_graph.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_corrupted_file_is_detected(tmp_path, tiny_graph):
    tiny_graph.save(tmp_path / "g")
    with open(tmp_path / "g" / "kg_triples.tsv", "a") as handle:
        handle.write("item:1\thas_category\tentity:B\n")
    with pytest.raises(InputError, match="kg_triples.tsv: checksum differs"):
        KnowledgeGraph.load(tmp_path / "g")


def test_other_format_version_is_refused(tmp_path, tiny_graph):
    tiny_graph.save(tmp_path / "g")
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "g" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="rebuild it with 'kgrec build-graph'"):
        KnowledgeGraph.load(tmp_path / "g")


def test_not_a_graph_directory(tmp_path):
    with pytest.raises(InputError, match="no manifest.json"):
        KnowledgeGraph.load(tmp_path)


def test_saved_ntriples_parse_with_rdflib(tmp_path, tiny_graph):
    import rdflib

    tiny_graph.save(tmp_path / "g")
    rdf = rdflib.Graph().parse(tmp_path / "g" / "kg.nt", format="nt")
    assert len(rdf) == len(tiny_graph.to_rdf())
    ontology = rdflib.Graph().parse(tmp_path / "g" / "ontology.ttl", format="turtle")
    assert len(ontology) > 20
