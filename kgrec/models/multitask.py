"""Multi-task parts: the rating task's head on the shared representations, and the weighting of the task losses."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["RatingHead", "TaskWeighting"]


class RatingHead(nn.Module):
    r"""Rating regression on the shared representations: :math:`\hat r = \mu + b_u + b_i + w\,s(u, i)`.

    :math:`s` is the model's ranking score, so the rating task trains the same user and item vectors
    the ranking uses (the multi-task coupling); the biases absorb per-user and per-item offsets.

    Args:
        num_users: Users.
        num_items: Items.
        mean: Global mean rating (the starting :math:`\mu`).
    """

    mean: torch.Tensor  # a buffer

    def __init__(self, num_users: int, num_items: int, mean: float = 0.0) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.user_bias = nn.Embedding(num_users, 1)
        self.item_bias = nn.Embedding(num_items, 1)
        self.scale = nn.Parameter(torch.ones(()))
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero biases, unit weight on the ranking score."""
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        with torch.no_grad():
            self.scale.fill_(1.0)

    def forward(self, users: torch.Tensor, items: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """``(B,)`` predicted ratings of pairs ``users (B,), items (B,)`` whose ranking scores are ``score (B,)``."""
        return self.mean + self.user_bias(users).squeeze(-1) + self.item_bias(items).squeeze(-1) + self.scale * score

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(mean={float(self.mean):.3g})"


class TaskWeighting(nn.Module):
    r"""Combines task losses: fixed weights, or homoscedastic uncertainty weighting.

    Uncertainty weighting (Kendall, Gal and Cipolla, 2018) learns one log-variance :math:`s_t` per
    task and minimises :math:`\sum_t e^{-s_t} L_t + s_t`: a task whose loss stays large (noisy) is
    down-weighted, and the :math:`+ s_t` term stops every weight from collapsing to zero.

    Args:
        tasks: Task names, in order.
        weights: Fixed (or starting) weight per task.
        learned: Learn the weights by uncertainty weighting.
    """

    def __init__(self, tasks: tuple[str, ...], weights: Mapping[str, float], learned: bool) -> None:
        super().__init__()
        self.tasks, self.learned = tuple(tasks), learned
        start = torch.tensor([-float(torch.log(torch.tensor(weights.get(t, 1.0)))) for t in self.tasks])
        self.log_variance = nn.Parameter(start, requires_grad=learned)

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """The combined loss of ``{task: loss}`` (every task of this weighting must be present)."""
        total = torch.zeros((), device=self.log_variance.device)
        for t, name in enumerate(self.tasks):
            total = total + torch.exp(-self.log_variance[t]) * losses[name]
            if self.learned:
                total = total + self.log_variance[t]
        return total

    def weights(self) -> dict[str, float]:
        """The current weight of each task."""
        with torch.no_grad():
            return {name: float(torch.exp(-self.log_variance[t])) for t, name in enumerate(self.tasks)}

    def __repr__(self) -> str:
        kind = "uncertainty" if self.learned else "fixed"
        return f"{self.__class__.__name__}({kind}, {', '.join(f'{k}={v:.3g}' for k, v in self.weights().items())})"
