"""Fusion: joining each item's graph view and text view into one representation (a registry of modules)."""

from __future__ import annotations

import torch
from class_resolver import ClassResolver
from torch import nn

__all__ = ["Fusion", "ConcatFusion", "SumFusion", "GatedFusion", "AttentionFusion", "fusion_resolver"]


class Fusion(nn.Module):
    """Base class: ``(graph_emb (N, d), text_emb (N, d_text), degree (N,)) -> (N, d)``.

    Every fusion first projects the text view to ``out_dim`` with a small MLP, so the views
    can be compared and mixed; ``weights()`` tells how much each view counts per item.

    Args:
        graph_dim: Width of the graph view (the propagated item embedding).
        text_dim: Width of the text view (384 for MiniLM).
        out_dim: Width of the fused item representation (= graph_dim for dot scoring).
        dropout: Dropout on the projected text.
    """

    def __init__(self, graph_dim: int, text_dim: int, out_dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.graph_dim, self.text_dim = graph_dim, text_dim
        self.out_dim = out_dim or graph_dim
        self.text_proj = nn.Sequential(
            nn.Linear(text_dim, self.out_dim), nn.Tanh(), nn.Dropout(dropout), nn.Linear(self.out_dim, self.out_dim)
        )

    def reset_parameters(self) -> None:
        """Reset the text projection; its output layer starts at zero, so the text view starts silent.

        Every fusion therefore starts as the graph view alone (up to one scale shared by all items,
        which leaves rankings unchanged): side information can only be added by training.
        """
        for layer in self.text_proj:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
        output = self.text_proj[-1]
        assert isinstance(output, nn.Linear)
        nn.init.zeros_(output.weight)
        nn.init.zeros_(output.bias)

    def forward(self, graph_emb: torch.Tensor, text_emb: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
        """Fuse the two views of each item."""
        raise NotImplementedError

    def weights(self, graph_emb: torch.Tensor, text_emb: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
        """``(N,)`` share of the graph view in each fused item (1 = graph only, 0 = text only), where defined."""
        return torch.full((graph_emb.size(0),), float("nan"), device=graph_emb.device)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.graph_dim}, {self.text_dim}, out_dim={self.out_dim})"


class ConcatFusion(Fusion):
    r"""Concatenate the views and mix them linearly: :math:`W[\mathbf{h}_g \,\|\, P\mathbf{h}_t]`.

    The graph block of ``W`` starts as the identity and the text block at zero.
    """

    def __init__(self, graph_dim: int, text_dim: int, out_dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__(graph_dim, text_dim, out_dim, dropout)
        self.mix = nn.Linear(graph_dim + self.out_dim, self.out_dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Identity on the graph block, zero on the text block (which then silences the text view)."""
        super().reset_parameters()
        # The zero text block already silences the text view; a zero projection too would block
        # every gradient into it.
        self.text_proj[-1].reset_parameters()  # type: ignore[operator]  # an nn.Linear
        with torch.no_grad():
            self.mix.weight.zero_()
            self.mix.weight[:, : self.graph_dim].copy_(torch.eye(self.out_dim, self.graph_dim))

    def forward(self, graph_emb: torch.Tensor, text_emb: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
        """``W [h_graph || proj(h_text)]``."""
        return self.mix(torch.cat([graph_emb, self.text_proj(text_emb)], dim=-1))


class SumFusion(Fusion):
    r"""Add the projected text view to the graph view: :math:`\mathbf{h}_g + P\mathbf{h}_t`."""

    def __init__(self, graph_dim: int, text_dim: int, out_dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__(graph_dim, text_dim, out_dim, dropout)
        self.reset_parameters()

    def forward(self, graph_emb: torch.Tensor, text_emb: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
        """``h_graph + proj(h_text)``."""
        return graph_emb + self.text_proj(text_emb)


class GatedFusion(Fusion):
    r"""A learned per-dimension gate between the graph view and the projected text view.

    .. math::
        \mathbf{g} = \sigma\big(W_g[\mathbf{h}_g \,\|\, \mathbf{t} \,\|\, \log(1+\deg)] + \mathbf{b}\big),\qquad
        \mathbf{h} = \mathbf{g}\odot\mathbf{h}_g + (1-\mathbf{g})\odot\mathbf{t},\quad \mathbf{t} = P\mathbf{h}_t

    The item's training degree enters the gate, so items with few or no interactions can
    lean on text (and on the KG already inside :math:`\mathbf{h}_g`). The gate starts constant
    (zero weights, bias +2, so g = 0.88 for every item) and the text view at zero.
    """

    def __init__(self, graph_dim: int, text_dim: int, out_dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__(graph_dim, text_dim, out_dim, dropout)
        if graph_dim != self.out_dim:
            raise ValueError("GatedFusion mixes the views dimension by dimension: graph_dim must equal out_dim")
        self.gate = nn.Linear(graph_dim + self.out_dim + 1, self.out_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero gate weights and bias +2: the same gate of 0.88 towards the graph view for every item."""
        super().reset_parameters()
        nn.init.zeros_(self.gate.weight)
        nn.init.constant_(self.gate.bias, 2.0)

    def gate_values(
        self, graph_emb: torch.Tensor, text_emb: torch.Tensor, degree: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(gate (N, d), projected text (N, d))``."""
        text = self.text_proj(text_emb)
        features = torch.cat([graph_emb, text, torch.log1p(degree).unsqueeze(-1)], dim=-1)
        return torch.sigmoid(self.gate(features)), text

    def forward(self, graph_emb: torch.Tensor, text_emb: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
        """``g * h_graph + (1 - g) * proj(h_text)``."""
        gate, text = self.gate_values(graph_emb, text_emb, degree)
        return gate * graph_emb + (1 - gate) * text

    def weights(self, graph_emb: torch.Tensor, text_emb: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
        """Mean gate over dimensions: the item's share of the graph view."""
        return self.gate_values(graph_emb, text_emb, degree)[0].mean(-1)


class AttentionFusion(Fusion):
    r"""Attention over the two views with a learned query (one scalar weight per view and item).

    .. math::
        a_v = \operatorname{softmax}_v\big(\mathbf{q}^\top \tanh(W \mathbf{v} + \mathbf{c}\,\log(1+\deg))\big),\qquad
        \mathbf{h} = \textstyle\sum_v a_v \mathbf{v},\quad v \in \{\mathbf{h}_g, P\mathbf{h}_t\}
    """

    def __init__(self, graph_dim: int, text_dim: int, out_dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__(graph_dim, text_dim, out_dim, dropout)
        if graph_dim != self.out_dim:
            raise ValueError("AttentionFusion averages the views: graph_dim must equal out_dim")
        self.key = nn.Linear(self.out_dim, self.out_dim)
        self.degree_key = nn.Parameter(torch.empty(self.out_dim))
        self.query = nn.Parameter(torch.empty(self.out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset keys; a zero query attends equally to both views at first."""
        super().reset_parameters()
        self.key.reset_parameters()
        nn.init.normal_(self.degree_key, std=0.01)
        nn.init.zeros_(self.query)

    def _attention(
        self, graph_emb: torch.Tensor, text_emb: torch.Tensor, degree: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        views = torch.stack([graph_emb, self.text_proj(text_emb)], dim=1)  # (N, 2, d)
        keys = torch.tanh(self.key(views) + torch.log1p(degree)[:, None, None] * self.degree_key)  # (N, 2, d)
        return torch.softmax(keys @ self.query, dim=1), views  # (N, 2), (N, 2, d)

    def forward(self, graph_emb: torch.Tensor, text_emb: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
        """Attention-weighted sum of the two views."""
        attention, views = self._attention(graph_emb, text_emb, degree)
        return (attention.unsqueeze(-1) * views).sum(1)

    def weights(self, graph_emb: torch.Tensor, text_emb: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
        """Attention on the graph view."""
        return self._attention(graph_emb, text_emb, degree)[0][:, 0]


fusion_resolver: ClassResolver[Fusion] = ClassResolver(
    [ConcatFusion, SumFusion, GatedFusion, AttentionFusion], base=Fusion, default=GatedFusion
)
