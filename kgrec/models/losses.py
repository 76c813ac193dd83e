"""Ranking losses on positive and sampled negative scores."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["bpr_loss", "bce_loss", "LOSSES"]


def bpr_loss(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    r"""Bayesian personalised ranking: :math:`-\log\sigma(s^+ - s^-)`, averaged.

    Args:
        positive: ``(B,)`` scores of observed items.
        negative: ``(B, n)`` scores of sampled items, ``n`` per positive.
    """
    return -F.logsigmoid(positive.unsqueeze(1) - negative).mean()


def bce_loss(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with positives as 1 and sampled negatives as 0; ``(B,)`` and ``(B, n)``."""
    return F.binary_cross_entropy_with_logits(positive, torch.ones_like(positive)) + F.binary_cross_entropy_with_logits(
        negative, torch.zeros_like(negative)
    )


LOSSES = {"bpr": bpr_loss, "bce": bce_loss}
