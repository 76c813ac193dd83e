"""EASE against its definition on a small matrix."""

from __future__ import annotations

import torch

from kgrec.models.linear import EASE


def test_ease_solves_the_constrained_ridge_problem():
    generator = torch.Generator().manual_seed(0)
    matrix = (torch.rand(40, 9, generator=generator) < 0.3).double()
    matrix[:, 8] = 0  # an item nobody interacted with
    ease = EASE(9, l2=5.0).fit(matrix.to_sparse())
    weight = ease.weight.double()
    assert weight.diagonal().abs().max() == 0
    assert weight[:, 8].abs().max() == 0  # a cold item gets no score from EASE
    # Stationarity of the Lagrangian: (X^T X + l2 I) B - X^T X is diagonal.
    gram = matrix.T @ matrix
    residual = (gram + 5.0 * torch.eye(9, dtype=torch.double)) @ weight - gram
    off_diagonal = residual - torch.diag(residual.diagonal())
    assert off_diagonal.abs().max() < 1e-4
    assert repr(ease) == "EASE(9, l2=5)"
