"""Context encoder (models/context_encoder.py), rating head and task weighting (models/multitask.py)."""

from __future__ import annotations

import torch

from kgrec.models import ContextEncoder, RatingHead, TaskWeighting


def test_context_encoder_starts_silent_and_sums_fields():
    encoder = ContextEncoder(num_tokens=7, num_fields=2, dim=4, field_offsets=torch.tensor([0, 3]))
    tokens = torch.tensor([[1, 4], [2, 6]])
    assert torch.equal(encoder(tokens), torch.zeros(2, 4))
    with torch.no_grad():
        encoder.embedding.weight.copy_(torch.arange(28.0).view(7, 4))
    assert torch.equal(encoder(tokens)[0], encoder.embedding.weight[1] + encoder.embedding.weight[4])
    assert "2 fields, 7 tokens" in repr(encoder)


def test_context_dropout_hides_fields_as_their_unknown_token():
    encoder = ContextEncoder(num_tokens=7, num_fields=2, dim=4, field_offsets=torch.tensor([0, 3]))
    with torch.no_grad():
        encoder.embedding.weight.copy_(torch.randn(7, 4))
    tokens = torch.tensor([[1, 4]]).expand(1000, -1)
    hidden = encoder(tokens, dropout=0.999, generator=torch.Generator().manual_seed(0))
    unknown = encoder.embedding.weight[0] + encoder.embedding.weight[3]
    assert (hidden == unknown).all(1).float().mean() > 0.99


def test_rating_head_adds_mean_biases_and_scaled_score():
    head = RatingHead(num_users=2, num_items=3, mean=3.5)
    with torch.no_grad():
        head.user_bias.weight[1] = 0.5
        head.item_bias.weight[2] = -1.0
        head.scale.fill_(2.0)
    predicted = head(torch.tensor([1, 0]), torch.tensor([2, 0]), torch.tensor([0.25, 0.0]))
    assert torch.allclose(predicted, torch.tensor([3.5 + 0.5 - 1.0 + 0.5, 3.5]))


def test_fixed_weighting_is_a_weighted_sum():
    weighting = TaskWeighting(("rank", "rating"), {"rating": 0.5}, learned=False)
    total = weighting({"rank": torch.tensor(2.0), "rating": torch.tensor(4.0)})
    assert torch.isclose(total, torch.tensor(4.0))
    assert not weighting.log_variance.requires_grad


def test_uncertainty_weighting_down_weights_the_noisier_task():
    weighting = TaskWeighting(("rank", "rating"), {}, learned=True)
    optimizer = torch.optim.SGD(weighting.parameters(), lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        weighting({"rank": torch.tensor(0.2), "rating": torch.tensor(5.0)}).backward()
        optimizer.step()
    weights = weighting.weights()
    # The optimum of exp(-s) L + s is exp(-s) = 1 / L.
    assert abs(weights["rank"] - 5.0) < 0.5 and abs(weights["rating"] - 0.2) < 0.05
