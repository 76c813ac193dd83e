"""Scorers: relevance of items to users from their representations, and top-K selection."""

from __future__ import annotations

from typing import NamedTuple

import torch
from class_resolver import ClassResolver
from torch import nn

__all__ = ["Scorer", "DotScorer", "MLPScorer", "scorer_resolver", "TopK", "top_k"]


class Scorer(nn.Module):
    """Base class. ``forward(user (B, d), item (B, d)) -> (B,)``; ``score_all(user (B, d), items (I, d)) -> (B, I)``.

    Args:
        dim: Width of user and item representations.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def reset_parameters(self) -> None:
        """Nothing to reset in the base class."""

    def score_all(self, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.dim})"


class DotScorer(Scorer):
    r"""Inner product :math:`s(u, i) = \mathbf{u}^\top\mathbf{i}`; full ranking is one matrix product."""

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Row-wise inner products."""
        return (user * item).sum(-1)

    def score_all(self, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``user @ items.T``."""
        return user @ items.T


class MLPScorer(Scorer):
    r"""An MLP on :math:`[\mathbf{u}, \mathbf{i}, \mathbf{u}\odot\mathbf{i}]` plus the inner product (NCF-style)."""

    def __init__(self, dim: int, hidden: int = 64, chunk: int = 64) -> None:
        super().__init__(dim)
        self.hidden, self.chunk = hidden, chunk
        self.mlp = nn.Sequential(nn.Linear(3 * dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the MLP; its output layer starts at zero so training starts from the inner product."""
        hidden, _, output = self.mlp
        assert isinstance(hidden, nn.Linear) and isinstance(output, nn.Linear)
        hidden.reset_parameters()
        nn.init.zeros_(output.weight)
        nn.init.zeros_(output.bias)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """MLP score plus inner product."""
        product = user * item
        return product.sum(-1) + self.mlp(torch.cat([user, item, product], dim=-1)).squeeze(-1)

    def score_all(self, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """All pairs, a few users at a time so memory stays at ``chunk * I * 3d``."""
        rows = []
        for start in range(0, user.size(0), self.chunk):
            block = user[start : start + self.chunk]  # (b, d)
            b, n = block.size(0), items.size(0)
            rows.append(self(block[:, None, :].expand(b, n, -1), items[None, :, :].expand(b, n, -1)))
        return torch.cat(rows)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.dim}, hidden={self.hidden})"


scorer_resolver: ClassResolver[Scorer] = ClassResolver([DotScorer, MLPScorer], base=Scorer, default=DotScorer)


class TopK(NamedTuple):
    """``indices (B, k)`` and ``scores (B, k)``, best first."""

    indices: torch.Tensor
    scores: torch.Tensor


def top_k(scores: torch.Tensor, k: int, exclude: torch.Tensor | None = None) -> TopK:
    """The ``k`` best items per row of ``scores (B, I)``, never one where ``exclude (B, I)`` is True."""
    if exclude is not None:
        scores = scores.masked_fill(exclude, float("-inf"))
    values, indices = scores.topk(min(k, scores.size(1)), dim=1)
    return TopK(indices, values)
