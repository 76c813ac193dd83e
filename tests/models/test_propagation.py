"""Propagation modules: shapes, edge-order invariance, use of the KG, determinism."""

from __future__ import annotations

import pytest
import torch

from kgrec.models import PropagationGraph, propagation_resolver


def _embeddings(inputs: PropagationGraph, dim: int = 8):
    generator = torch.Generator().manual_seed(3)
    return (
        torch.randn(inputs.num_users, dim, generator=generator),
        torch.randn(inputs.num_items, dim, generator=generator),
        torch.randn(inputs.num_entities, dim, generator=generator),
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
    shuffled = small_inputs._replace(
        kg_edge_index=small_inputs.kg_edge_index[:, permutation], kg_edge_type=small_inputs.kg_edge_type[permutation]
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
