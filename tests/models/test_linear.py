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


def test_large_catalog_path_matches_the_exact_inverse():
    """Above DOUBLE_PRECISION_ITEMS the fit is a float32 Cholesky solve from a sparse Gram matrix; same B."""
    torch.manual_seed(0)
    interactions = (torch.rand(400, 120) < 0.1).float()
    exact = EASE(120, 50.0).fit(interactions.to_sparse()).weight.clone()
    large = EASE(120, 50.0)
    large.DOUBLE_PRECISION_ITEMS = 10  # take the large-catalog path on a small problem
    assert torch.allclose(large.fit(interactions.to_sparse()).weight, exact, atol=1e-5)
    assert torch.allclose(EASE(120, 50.0).fit(interactions).weight, exact)  # dense input, same result


def test_sparse_and_dense_history_rows_score_alike():
    """The scores are a sparse product (fast at 30k items); a dense history gives the same numbers."""
    torch.manual_seed(0)
    interactions = (torch.rand(50, 30) < 0.2).float()
    ease = EASE(30, 10.0).fit(interactions.to_sparse())
    dense = interactions[:7] @ ease.weight
    assert torch.allclose(ease(interactions[:7].to_sparse()), dense, atol=1e-6)
    assert torch.allclose(ease(interactions[:7]), dense, atol=1e-6)
    assert ease.weight.dtype == torch.float32 and ease.weight.shape == (30, 30)
