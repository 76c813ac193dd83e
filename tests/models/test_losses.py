"""The ranking losses: values by hand and the direction of their gradients."""

from __future__ import annotations

import math

import pytest
import torch

from kgrec.models.losses import LOSSES, bce_loss, bpr_loss, softmax_loss


def test_values_by_hand():
    positive, negative = torch.tensor([2.0]), torch.tensor([[0.0, 1.0]])
    assert bpr_loss(positive, negative).item() == pytest.approx(
        -(math.log(1 / (1 + math.exp(-2))) + math.log(1 / (1 + math.exp(-1)))) / 2
    )
    assert softmax_loss(positive, negative).item() == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + 1 + math.e)))
    expected = -math.log(1 / (1 + math.exp(-2))) - (math.log(1 - 0.5) + math.log(1 - 1 / (1 + math.exp(-1)))) / 2
    assert bce_loss(positive, negative).item() == pytest.approx(expected)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_raise_positives_and_lower_negatives(name):
    positive = torch.zeros(4, requires_grad=True)
    negative = torch.zeros(4, 3, requires_grad=True)
    LOSSES[name](positive, negative).backward()
    assert (positive.grad < 0).all() and (negative.grad > 0).all()
