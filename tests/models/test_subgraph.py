"""Sampled subgraphs: exact with a large fan-out, bounded with a small one, unbiased edge weights."""

from __future__ import annotations

import torch

from kgrec.config import ModelConfig
from kgrec.graph import to_hetero
from kgrec.models import PropagationGraph, RecommenderNetwork
from kgrec.models.subgraph import sample_subgraph


def _model(tiny_graph, **overrides):
    torch.manual_seed(0)
    graph = PropagationGraph.from_hetero(to_hetero(tiny_graph), len(tiny_graph.relations))
    kg = torch.randn(tiny_graph.num_kg_nodes, 6)
    text = torch.randn(len(tiny_graph.items), 5)
    config = ModelConfig(dim=4, **overrides)
    model = RecommenderNetwork.from_config(
        config, len(tiny_graph.users), len(tiny_graph.items), len(tiny_graph.relations), kg, text
    ).eval()
    with torch.no_grad():
        model.kg_proj.weight.normal_()
    return model, graph


def test_large_fanout_gives_the_full_graph_representations_of_the_seeds(tiny_graph):
    model, graph = _model(tiny_graph)
    seeds = torch.tensor([0, 3, graph.num_users + 1, graph.num_users + 4])
    sub = sample_subgraph(graph, seeds, (1000, 1000, 1000), torch.Generator().manual_seed(0))
    with torch.no_grad():
        full, part = model(graph), model.forward_sampled(graph, sub)
    users = sub.local(seeds[:2])
    items = sub.local(seeds[2:]) - sub.num_users
    assert torch.allclose(part.user[users], full.user[seeds[:2]], atol=1e-5)
    assert torch.allclose(part.item[items], full.item[seeds[2:] - graph.num_users], atol=1e-5)


def test_small_fanout_bounds_the_subgraph_and_keeps_aggregations_unbiased(tiny_graph):
    _, graph = _model(tiny_graph)
    seeds = torch.tensor([0])
    sub = sample_subgraph(graph, seeds, (2,), torch.Generator().manual_seed(0))
    assert len(sub.nodes) <= 1 + 2 and sub.nodes[0] == 0
    # Over many draws, the sampled row of a seed averages to its full adjacency row.
    row = graph.ui_adj.to_dense()[0]
    total = torch.zeros_like(row)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3000):
        sub = sample_subgraph(graph, seeds, (2,), generator)
        dense = sub.adj.to_dense()[0]
        total[sub.nodes] += dense
    assert torch.allclose(total / 3000, row, atol=0.02)
