"""Every registered fusion: shape, gradients to both views, repr, weights; unknown names list the choices."""

from __future__ import annotations

import pytest
import torch

from kgrec.models import fusion_resolver


@pytest.mark.parametrize("name", sorted(fusion_resolver.options))
def test_fusion_contract(name):
    torch.manual_seed(0)
    fusion = fusion_resolver.make(name, graph_dim=8, text_dim=12)
    graph = torch.randn(5, 8, requires_grad=True)
    text = torch.randn(5, 12, requires_grad=True)
    degree = torch.tensor([0.0, 1.0, 3.0, 10.0, 100.0])
    out = fusion(graph, text, degree)
    assert out.shape == (5, 8)
    # Fresh, the text view is silent: the output is the graph view times one scale for all items.
    scale = (out / graph).detach()
    assert torch.allclose(scale, scale[0, 0].expand_as(scale), atol=1e-6)
    target = torch.randn(5, 8)
    optimizer = torch.optim.SGD(fusion.parameters(), lr=0.1)
    for _ in range(2):  # one step opens the text projection's output; the next reaches the text itself
        optimizer.zero_grad()
        graph.grad = text.grad = None
        (fusion(graph, text, degree) - target).pow(2).sum().backward()
        optimizer.step()
    assert graph.grad.abs().sum() > 0 and text.grad.abs().sum() > 0
    assert repr(fusion) == f"{type(fusion).__name__}(8, 12, out_dim=8)"
    weights = fusion.weights(graph, text, degree)
    assert weights.shape == (5,)
    if name in ("gated", "attention"):
        assert ((weights >= 0) & (weights <= 1)).all()


@pytest.mark.parametrize("name", sorted(fusion_resolver.options))
def test_reset_parameters_is_deterministic(name):
    torch.manual_seed(1)
    first = fusion_resolver.make(name, graph_dim=8, text_dim=12)
    torch.manual_seed(1)
    second = fusion_resolver.make(name, graph_dim=8, text_dim=12)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


def test_gated_starts_near_graph_view():
    fusion = fusion_resolver.make("gated", graph_dim=4, text_dim=6)
    gate, _ = fusion.gate_values(torch.zeros(3, 4), torch.zeros(3, 6), torch.zeros(3))
    assert torch.allclose(gate, torch.sigmoid(torch.tensor(2.0)).expand_as(gate), atol=0.05)


def test_unknown_fusion_lists_choices():
    with pytest.raises(KeyError, match="gated"):
        fusion_resolver.make("fancy", graph_dim=4, text_dim=4)
