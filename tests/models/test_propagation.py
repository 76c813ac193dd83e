"""Propagation modules: shapes, edge-order invariance, use of the KG, determinism."""

from __future__ import annotations

import pytest
import torch

from kgrec.models import (
    PropagationGraph,
    RelationalAdjacency,
    RelationalMeanConv,
    propagation_resolver,
    resolve_propagation,
)


def _embeddings(prop_graph: PropagationGraph, dim: int = 8):
    generator = torch.Generator().manual_seed(3)
    return (
        torch.randn(prop_graph.num_users, dim, generator=generator),
        torch.randn(prop_graph.num_items, dim, generator=generator),
        torch.randn(prop_graph.num_entities, dim, generator=generator),
    )


@pytest.mark.parametrize("name", sorted(propagation_resolver.options))
def test_shapes_and_repr(name, small_inputs):
    module = propagation_resolver.make(name, dim=8, num_layers=2, num_relations=2, kg_layers=1)
    user, item = module(*_embeddings(small_inputs), small_inputs)
    assert user.shape == (5, 8) and item.shape == (7, 8)
    assert repr(module).startswith(f"{type(module).__name__}(8, num_layers=2")


@pytest.mark.parametrize("name", sorted(propagation_resolver.options))
def test_kg_edge_order_does_not_matter(name, small_inputs):
    torch.manual_seed(0)
    module = propagation_resolver.make(name, dim=8, num_layers=2, num_relations=2, kg_layers=1)
    permutation = torch.randperm(small_inputs.kg_edge_index.size(1))
    edge_index, edge_type = small_inputs.kg_edge_index[:, permutation], small_inputs.kg_edge_type[permutation]
    num_nodes = small_inputs.num_items + small_inputs.num_entities
    shuffled = small_inputs._replace(
        kg_edge_index=edge_index,
        kg_edge_type=edge_type,
        kg=RelationalAdjacency.from_edges(edge_index, edge_type, num_nodes, 4),
    )
    for a, b in zip(module(*_embeddings(small_inputs), small_inputs), module(*_embeddings(small_inputs), shuffled)):
        assert torch.allclose(a, b, atol=1e-5)


def test_zero_layers_is_identity(small_inputs):
    module = propagation_resolver.make("lightgcn", dim=8, num_layers=0)
    user, item, entity = _embeddings(small_inputs)
    out_user, out_item = module(user, item, entity, small_inputs)
    assert torch.equal(out_user, user) and torch.equal(out_item, item)


def test_lightgcn_is_mean_of_layers(small_inputs):
    module = propagation_resolver.make("lightgcn", dim=8, num_layers=1)
    user, item, entity = _embeddings(small_inputs)
    x = torch.cat([user, item])
    expected = (x + small_inputs.ui_adj @ x) / 2
    out_user, out_item = module(user, item, entity, small_inputs)
    assert torch.allclose(torch.cat([out_user, out_item]), expected, atol=1e-5)


def test_relational_reads_the_kg(small_inputs):
    torch.manual_seed(0)
    module = propagation_resolver.make("relational", dim=8, num_layers=1, num_relations=2, kg_layers=1)
    user, item, entity = _embeddings(small_inputs)
    _, fresh = module(user, item, entity, small_inputs)
    _, fresh_other = module(user, item, entity + 1.0, small_inputs)
    assert torch.equal(fresh, fresh_other)  # zero scales: starts as plain LightGCN
    with torch.no_grad():
        module.kg_scales.fill_(1.0)
    _, first = module(user, item, entity, small_inputs)
    _, second = module(user, item, entity + 1.0, small_inputs)
    assert not torch.allclose(first, second)
    lightgcn = propagation_resolver.make("lightgcn", dim=8, num_layers=1)
    _, third = lightgcn(user, item, entity + 1.0, small_inputs)
    _, fourth = lightgcn(user, item, entity, small_inputs)
    assert torch.equal(third, fourth)


def test_relational_mean_matches_a_per_edge_mean():
    generator = torch.Generator().manual_seed(1)
    num_nodes, num_types = 9, 3
    edge_index = torch.randint(0, num_nodes, (2, 40), generator=generator)
    edge_type = torch.randint(0, num_types, (40,), generator=generator)
    conv = RelationalMeanConv(4, num_types)
    with torch.no_grad():
        conv.relation.copy_(torch.randn(num_types, 4, generator=generator))
    x = torch.randn(num_nodes, 4, generator=generator)
    out = conv(x, RelationalAdjacency.from_edges(edge_index, edge_type, num_nodes, num_types))
    expected = torch.zeros(num_nodes, 4)
    for node in range(num_nodes):
        into = (edge_index[1] == node).nonzero().flatten()
        if len(into):
            expected[node] = (x[edge_index[0, into]] * conv.relation[edge_type[into]]).mean(0)
    assert torch.allclose(out, expected, atol=1e-5)


def test_knowledge_carries_an_item_without_interactions_by_its_entities():
    """item 0 has no user; it shares entity 0 with item 1. A change to item 1 must reach item 0 (2 hops)."""
    from torch_geometric.data import HeteroData

    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes, data["entity"].num_nodes = 2, 3, 1
    data["user", "interacts", "item"].edge_index = torch.tensor([[0, 1, 1], [1, 1, 2]])
    data["item", "kg", "entity"].edge_index = torch.tensor([[0, 1], [0, 0]])
    data["item", "kg", "entity"].relation = torch.tensor([0, 0])
    graph = PropagationGraph.from_hetero(data, num_relations=1)
    generator = torch.Generator().manual_seed(0)
    user, item, entity = (torch.randn(n, 4, generator=generator) for n in (2, 3, 1))
    changed = item.clone()
    changed[1] += 1.0
    knowledge = propagation_resolver.make("knowledge", dim=4, num_layers=2, num_relations=1)
    lightgcn = propagation_resolver.make("lightgcn", dim=4, num_layers=2)
    # Fresh, the KG scales are zero: the module is LightGCN; training opens them.
    for a, b in zip(knowledge(user, item, entity, graph), lightgcn(user, item, entity, graph)):
        assert torch.allclose(a, b)
    with torch.no_grad():
        knowledge.kg_scales.fill_(0.5)
    assert not torch.allclose(knowledge(user, item, entity, graph)[1][0], knowledge(user, changed, entity, graph)[1][0])
    assert torch.allclose(lightgcn(user, item, entity, graph)[1][0], lightgcn(user, changed, entity, graph)[1][0])
    # ... and users see the KG through their items: user 1's item 1 gathers entity 0 at layer 1.
    assert not torch.allclose(knowledge(user, item, entity, graph)[0][1], lightgcn(user, item, entity, graph)[0][1])


def test_knowledge_mean_trains_its_kg_scales_but_not_its_relations(small_inputs):
    """The relation-blind ablation: messages are neighbour means whatever the relation, and stay so while training."""
    user, item, entity = _embeddings(small_inputs)
    blind = propagation_resolver.make("knowledge-mean", dim=8, num_layers=2, num_relations=2)
    aware = propagation_resolver.make("knowledge", dim=8, num_layers=2, num_relations=2)
    with torch.no_grad():
        for module in (blind, aware):
            module.kg_scales.fill_(0.5)
    optimizer = torch.optim.AdamW([p for p in blind.parameters() if p.requires_grad] + list(aware.parameters()), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        loss = sum(
            output.square().sum() for module in (blind, aware) for output in module(user, item, entity, small_inputs)
        )
        loss.backward()
        optimizer.step()
    assert torch.equal(blind.kg_conv.relation, torch.ones_like(blind.kg_conv.relation))
    assert not torch.equal(aware.kg_conv.relation, torch.ones_like(aware.kg_conv.relation))
    assert not torch.allclose(blind.kg_scales, torch.full_like(blind.kg_scales, 0.5))  # the KG still speaks
    assert "frozen" in repr(blind.kg_conv) and "frozen" not in repr(aware.kg_conv)


def test_knowledge_without_entities_is_lightgcn(small_inputs):
    user, item, entity = _embeddings(small_inputs)
    knowledge = propagation_resolver.make("knowledge", dim=8, num_layers=2, num_relations=2)
    lightgcn = propagation_resolver.make("lightgcn", dim=8, num_layers=2)
    for a, b in zip(knowledge(user, item, None, small_inputs), lightgcn(user, item, None, small_inputs)):
        assert torch.allclose(a, b)


@pytest.mark.parametrize(
    ("name", "use_kg", "triples", "expected"),
    [
        ("auto", True, 10, "knowledge"),
        ("auto", True, 0, "lightgcn"),
        ("auto", False, 10, "lightgcn"),
        ("relational", True, 10, "relational"),
    ],
)
def test_auto_propagation_follows_the_kg(name, use_kg, triples, expected):
    assert resolve_propagation(name, use_kg, triples) == expected


def test_the_cheap_backward_gives_lgconvs_gradient(small_inputs):
    """The user-item adjacency is its own transpose, so the backward may reuse the forward product (4x faster on CPU)."""
    from kgrec.models.propagation import LightGCNPropagation

    adj = small_inputs.ui_adj.to_dense()
    assert torch.equal(adj, adj.T)
    propagation = LightGCNPropagation(4, num_layers=3)
    x = torch.randn(adj.size(0), 4, generator=torch.Generator().manual_seed(0))
    grads = []
    for symmetric in (False, True):
        leaf = x.clone().requires_grad_(True)
        out = propagation.layer_mean(leaf, small_inputs.ui_adj, symmetric=symmetric)
        (out * torch.arange(out.numel()).reshape(out.shape)).sum().backward()
        grads.append((out.detach(), leaf.grad))
    assert torch.allclose(grads[0][0], grads[1][0]) and torch.allclose(grads[0][1], grads[1][1], atol=1e-5)
