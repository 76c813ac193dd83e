"""Heads on the shared representations: the context encoder, the rating regressor, and task weighting."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["ContextEncoder", "RatingHead", "TaskWeighting"]


class ContextEncoder(nn.Module):
    r"""Context tokens to an additive user offset: :math:`\mathbf{u}_c = \mathbf{u} + \sum_f \mathbf{c}_{f, v_f}`.

    One embedding per (field, value) token, summed over fields (as a factorisation machine's
    first-order context terms, but in the user space): with a dot scorer, the score gains
    :math:`\mathbf{c}^\top\mathbf{i}`, so each context value learns which items it favours, and user
    attributes stand in for the user where the user has no history. Embeddings start at zero, so a
    context-aware model starts as its context-free self.

    Args:
        num_tokens: Tokens over all fields (each field's token 0 is its "unknown" value).
        num_fields: Tokens per example.
        dim: Width of the user representation.
        field_offsets: ``(F,)`` first token of each field, so dropout can replace a field by its unknown token.
    """

    field_offsets: torch.Tensor  # a buffer

    def __init__(self, num_tokens: int, num_fields: int, dim: int, field_offsets: torch.Tensor) -> None:
        super().__init__()
        self.num_tokens, self.num_fields, self.dim = num_tokens, num_fields, dim
        self.embedding = nn.Embedding(num_tokens, dim)
        self.register_buffer("field_offsets", field_offsets.long().clone())
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero context embeddings: the model starts context-free."""
        nn.init.zeros_(self.embedding.weight)

    def forward(self, tokens: torch.Tensor, dropout: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(B, d)`` context offsets of ``tokens (B, F)``; with ``dropout``, that share of fields read as unknown."""
        if dropout > 0.0:
            hide = torch.rand(tokens.shape, generator=generator).to(tokens.device) < dropout
            tokens = torch.where(hide, self.field_offsets.expand_as(tokens), tokens)
        return self.embedding(tokens).sum(1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.num_fields} fields, {self.num_tokens} tokens)"


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
