"""build-graph on the real ml-100k (skipped without KGREC_DATA_DIR)."""

from __future__ import annotations

import pytest

from kgrec.data import load_dataset
from kgrec.graph import build_graph, load_graph, save_graph, to_hetero


@pytest.fixture(scope="module")
def ml100k_graph(data_dir, tmp_path_factory):
    graph = build_graph(load_dataset("ml-100k", data_dir))
    out = tmp_path_factory.mktemp("graphs") / "ml-100k"
    save_graph(graph, out)
    return graph, out


def test_counts(ml100k_graph):
    graph, _ = ml100k_graph
    stats = graph.stats
    assert stats["items"] == 1682 and stats["users"] == 943
    assert stats["categories"] == 19
    assert stats["brands"] == 251  # distinct production companies of linked films
    assert stats["external_triples_read"] == 91_631 and stats["kg_triples_external"] == 91_631
    assert stats["relations"] == 24 + 2
    assert stats["interactions"]["total"] == 100_000
    assert stats["interactions"]["valid"] == stats["interactions"]["test"] == 9_596


def test_no_held_out_interaction_in_propagation_graph(ml100k_graph):
    graph, _ = ml100k_graph
    edge_index = to_hetero(graph)["user", "interacts", "item"].edge_index.numpy()
    propagated = set(zip(edge_index[0].tolist(), edge_index[1].tolist()))
    for part in (graph.split.valid, graph.split.test):
        held_out = zip(
            graph.users.to_index(part["user_id"].to_numpy()), graph.items.to_index(part["item_id"].to_numpy())
        )
        assert not propagated & set(held_out)
    assert len(propagated) == len(graph.split.train)


def test_reload_equals(ml100k_graph):
    graph, out = ml100k_graph
    loaded = load_graph(out)
    assert (loaded.triples == graph.triples).all()
    assert loaded.stats["kg_triples"] == graph.stats["kg_triples"]
