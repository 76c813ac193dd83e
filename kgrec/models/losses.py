"""Ranking losses on positive and sampled negative scores."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["bpr_loss", "bce_loss", "softmax_loss", "LOSSES"]


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


def softmax_loss(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Sampled softmax: cross-entropy of the positive against its ``n`` sampled negatives; ``(B,)`` and ``(B, n)``.

    With many negatives it approximates the full softmax over the catalog, whose gradient puts more
    weight on the negatives the model currently ranks high than BPR's single pair does.
    """
    logits = torch.cat([positive.unsqueeze(1), negative], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))


LOSSES = {"bpr": bpr_loss, "bce": bce_loss, "softmax": softmax_loss}
