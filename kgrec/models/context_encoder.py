"""The context encoder: a query's context tokens (time, device, user attributes) as an offset to the user vector."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ContextEncoder"]


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

    def forward(
        self, tokens: torch.Tensor, dropout: float = 0.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``(B, d)`` context offsets of ``tokens (B, F)``; with ``dropout``, that share of fields read as unknown."""
        if dropout > 0.0:
            hide = torch.rand(tokens.shape, generator=generator).to(tokens.device) < dropout
            tokens = torch.where(hide, self.field_offsets.expand_as(tokens), tokens)
        return self.embedding(tokens).sum(1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.num_fields} fields, {self.num_tokens} tokens)"
