"""Propagation: GNNs that spread embeddings over the training user-item graph and the KG (PyG layers)."""

from __future__ import annotations

import torch
from class_resolver import ClassResolver
from torch import nn
from torch_geometric.nn import LGConv, RGCNConv

from kgrec.models.graph_inputs import PropagationGraph

__all__ = ["Propagation", "LightGCNPropagation", "RelationalPropagation", "propagation_resolver"]


class Propagation(nn.Module):
    """Base class: ``(user_emb, item_emb, entity_emb, graph) -> (user_out, item_out)``.

    Args:
        dim: Embedding width (input = output).
        num_layers: Layers over the user-item graph; 0 returns the inputs unchanged.
        num_relations: KG relations (used by knowledge-aware subclasses).
        kg_layers: Layers over the KG (used by knowledge-aware subclasses).
    """

    def __init__(self, dim: int, num_layers: int, num_relations: int = 0, kg_layers: int = 0) -> None:
        super().__init__()
        self.dim, self.num_layers = dim, num_layers
        self.num_relations, self.kg_layers = num_relations, kg_layers
        self.convs = nn.ModuleList(LGConv(normalize=False) for _ in range(num_layers))

    def reset_parameters(self) -> None:
        """LGConv has no parameters; subclasses reset theirs."""

    def side_parameters(self) -> list[nn.Parameter]:
        """Parameters that read the KG (none for pure collaborative propagation)."""
        return []

    def layer_mean(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """LightGCN's output: the mean of the layer-0..L embeddings of ``x (N, d)`` over the normalised ``adj (N, N)``."""
        total = x
        for conv in self.convs:
            x = conv(x, adj)
            total = total + x
        return total / (self.num_layers + 1)

    def _lightgcn(self, user_emb: torch.Tensor, item_emb: torch.Tensor, graph: PropagationGraph) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.layer_mean(torch.cat([user_emb, item_emb]), graph.ui_adj)  # (U + I, d)
        return out[: graph.num_users], out[graph.num_users :]

    def forward(
        self, user_emb: torch.Tensor, item_emb: torch.Tensor, entity_emb: torch.Tensor | None, graph: PropagationGraph
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return propagated ``(user_out (U, d), item_out (I, d))``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.dim}, num_layers={self.num_layers})"


class LightGCNPropagation(Propagation):
    r"""LightGCN over the training user-item graph (He et al., 2020), built from PyG's ``LGConv``.

    .. math::
        \mathbf{e}^{(l+1)} = \hat{A}\,\mathbf{e}^{(l)},\qquad
        \mathbf{e} = \tfrac{1}{L+1}\textstyle\sum_{l=0}^{L} \mathbf{e}^{(l)}

    The KG reaches it through the item embeddings it starts from (PyKEEN-informed).

    Shapes:
        user_emb (U, d), item_emb (I, d) -> (U, d), (I, d)
    """

    def forward(
        self, user_emb: torch.Tensor, item_emb: torch.Tensor, entity_emb: torch.Tensor | None, graph: PropagationGraph
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagate over the user-item graph only."""
        return self._lightgcn(user_emb, item_emb, graph)


class RelationalPropagation(Propagation):
    r"""Knowledge-aware propagation: R-GCN over the KG, then LightGCN over the user-item graph.

    Each KG layer lets an item gather its entities' embeddings per relation (PyG ``RGCNConv``,
    with basis decomposition and both edge directions as separate relations), in the spirit of
    KGAT/KGIN's relation-aware aggregation; a residual keeps the item's own embedding:

    .. math::
        \mathbf{h}^{(k+1)} = \mathbf{h}^{(k)} + \alpha_k \tanh\big(\mathrm{RGCN}(\mathbf{h}^{(k)})\big)

    The scales :math:`\alpha_k` start at zero, so the module starts as plain LightGCN and the KG
    is added by training. The resulting items then enter LightGCN, so users see KG-aware items.

    Shapes:
        user_emb (U, d), item_emb (I, d), entity_emb (E, d) -> (U, d), (I, d)
    """

    def __init__(self, dim: int, num_layers: int, num_relations: int = 0, kg_layers: int = 1) -> None:
        super().__init__(dim, num_layers, num_relations, kg_layers)
        num_types = max(1, 2 * num_relations)
        self.kg_convs = nn.ModuleList(
            RGCNConv(dim, dim, num_types, num_bases=min(num_types, 8), aggr="mean") for _ in range(kg_layers)
        )
        self.kg_scales = nn.Parameter(torch.zeros(kg_layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the R-GCN layers; zero scales."""
        for conv in self.kg_convs:
            conv.reset_parameters()
        nn.init.zeros_(self.kg_scales)

    def side_parameters(self) -> list[nn.Parameter]:
        """The R-GCN layers and their scales."""
        return [*self.kg_convs.parameters(), self.kg_scales]

    def forward(
        self, user_emb: torch.Tensor, item_emb: torch.Tensor, entity_emb: torch.Tensor | None, graph: PropagationGraph
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """KG layers on items and entities, then LightGCN on users and the KG-aware items."""
        if entity_emb is not None and len(self.kg_convs) and graph.kg_edge_index.numel():
            h = torch.cat([item_emb, entity_emb])  # (I + E, d)
            for conv, scale in zip(self.kg_convs, self.kg_scales):
                h = h + scale * torch.tanh(conv(h, graph.kg_edge_index, graph.kg_edge_type))
            item_emb = h[: graph.num_items]
        return self._lightgcn(user_emb, item_emb, graph)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.dim}, num_layers={self.num_layers}, "
            f"kg_layers={self.kg_layers}, num_relations={self.num_relations})"
        )


propagation_resolver: ClassResolver[Propagation] = ClassResolver(
    [LightGCNPropagation, RelationalPropagation], base=Propagation, default=LightGCNPropagation
)
