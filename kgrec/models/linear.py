"""A closed-form linear item-item model (EASE) that the learned embeddings are blended with."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["EASE"]


class EASE(nn.Module):
    r"""Embarrassingly Shallow Autoencoder (Steck, 2019): item-item weights in closed form.

    .. math::
        P = (X^\top X + \lambda I)^{-1},\qquad B = I - P\,\mathrm{diag}(1/\mathrm{diag}(P)),\qquad
        s(u, \cdot) = X_u B

    :math:`B` has a zero diagonal, so an item never recommends itself, and an item without
    training interactions gets a zero column (its score comes from the other views).

    Args:
        num_items: Items (rows and columns of :math:`B`).
        l2: The ridge penalty :math:`\lambda`.

    Shapes:
        history (B, I) 0/1 training rows -> (B, I) scores
    """

    def __init__(self, num_items: int, l2: float = 250.0) -> None:
        super().__init__()
        self.num_items, self.l2 = num_items, l2
        self.register_buffer("weight", torch.zeros(num_items, num_items))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero weights until :meth:`fit`."""
        self.weight.zero_()

    @torch.no_grad()
    def fit(self, interactions: torch.Tensor) -> EASE:
        """Solve for :math:`B` from the ``(U, I)`` training interaction matrix (dense or sparse), in float64."""
        matrix = interactions.to_dense().double() if interactions.is_sparse else interactions.double()
        gram = matrix.T @ matrix  # (I, I)
        gram.diagonal().add_(self.l2)
        precision = torch.linalg.inv(gram)
        weight = -precision / precision.diagonal()
        weight.diagonal().zero_()
        self.weight.copy_(weight.float())
        return self

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """Scores of every item for the given users' training rows."""
        return history.float() @ self.weight

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.num_items}, l2={self.l2:g})"
