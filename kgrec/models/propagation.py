"""Propagation: GNNs that spread embeddings over the training user-item graph and the KG (PyG layers)."""

from __future__ import annotations

import torch
from class_resolver import ClassResolver
from torch import nn
from torch_geometric.nn import LGConv, RGCNConv

from kgrec.models.graph_inputs import PropagationGraph, RelationalAdjacency

__all__ = [
    "Propagation",
    "LightGCNPropagation",
    "RelationalPropagation",
    "KnowledgePropagation",
    "KnowledgeMeanPropagation",
    "sampled_training_problem",
    "RelationalMeanConv",
    "propagation_resolver",
    "resolve_propagation",
]


class _SelfAdjointProduct(torch.autograd.Function):
    """``conv(x, adj)`` for a symmetric ``adj``, whose backward is the same product with the gradient.

    torch's backward of a sparse CSR product builds the transposed matrix again at every step: on ml-100k's
    user-item graph that was 80% of a training step on CPU (51 ms against 13 ms a step, three layers). The
    normalised user-item adjacency is its own transpose, so the gradient is one more forward product.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, conv: nn.Module, adj: torch.Tensor) -> torch.Tensor:
        ctx.conv, ctx.adj = conv, adj
        return conv(x, adj)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return ctx.conv(grad, ctx.adj), None, None


def symmetric_conv(conv: nn.Module, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
    """``conv(x, adj)`` (an ``LGConv``) over a symmetric ``adj``, with the cheap backward where a gradient is needed."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _SelfAdjointProduct.apply(x, conv, adj)
    return conv(x, adj)


class Propagation(nn.Module):
    """Base class: ``(user_emb, item_emb, entity_emb, graph) -> (user_out, item_out)``.

    Args:
        dim: Embedding width (input = output).
        num_layers: Layers over the user-item graph; 0 returns the inputs unchanged.
        num_relations: KG relations (used by knowledge-aware subclasses).
        kg_layers: Layers over the KG (used by knowledge-aware subclasses).
    """

    #: True where the module propagates over KG entity nodes, whose embeddings the recommender then owns.
    uses_entities = False
    #: True where each step needs the whole KG (no sampled mini-batches).
    needs_whole_kg = False

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

    def layer_mean(self, x: torch.Tensor, adj: torch.Tensor, symmetric: bool = False) -> torch.Tensor:
        """LightGCN's output: the mean of the layer-0..L embeddings of ``x (N, d)`` over the normalised ``adj (N, N)``
        (``symmetric``: ``adj`` is its own transpose, as the whole user-item graph's is; a sampled one is not)."""
        total = x
        for conv in self.convs:
            x = symmetric_conv(conv, x, adj) if symmetric else conv(x, adj)
            total = total + x
        return total / (self.num_layers + 1)

    def _lightgcn(
        self, user_emb: torch.Tensor, item_emb: torch.Tensor, prop_graph: PropagationGraph
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.layer_mean(torch.cat([user_emb, item_emb]), prop_graph.ui_adj, symmetric=True)  # (U + I, d)
        return out[: prop_graph.num_users], out[prop_graph.num_users :]

    def forward(
        self,
        user_emb: torch.Tensor,
        item_emb: torch.Tensor,
        entity_emb: torch.Tensor | None,
        prop_graph: PropagationGraph,
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
        self,
        user_emb: torch.Tensor,
        item_emb: torch.Tensor,
        entity_emb: torch.Tensor | None,
        prop_graph: PropagationGraph,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagate over the user-item graph only."""
        return self._lightgcn(user_emb, item_emb, prop_graph)


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

    needs_whole_kg = True

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
            conv.reset_parameters()  # type: ignore[operator]  # RGCNConv, typed as Module by ModuleList
        nn.init.zeros_(self.kg_scales)

    def side_parameters(self) -> list[nn.Parameter]:
        """The R-GCN layers and their scales."""
        return [*self.kg_convs.parameters(), self.kg_scales]

    def forward(
        self,
        user_emb: torch.Tensor,
        item_emb: torch.Tensor,
        entity_emb: torch.Tensor | None,
        prop_graph: PropagationGraph,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """KG layers on items and entities, then LightGCN on users and the KG-aware items."""
        if entity_emb is not None and len(self.kg_convs) and prop_graph.kg_edge_index.numel():
            h = torch.cat([item_emb, entity_emb])  # (I + E, d)
            for conv, scale in zip(self.kg_convs, self.kg_scales):
                h = h + scale * torch.tanh(conv(h, prop_graph.kg_edge_index, prop_graph.kg_edge_type))
            item_emb = h[: prop_graph.num_items]
        return self._lightgcn(user_emb, item_emb, prop_graph)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.dim}, num_layers={self.num_layers}, "
            f"kg_layers={self.kg_layers}, num_relations={self.num_relations})"
        )


class RelationalMeanConv(nn.Module):
    r"""Relation-aware mean aggregation over KG edges.

    Each node averages its neighbours, each message scaled element-wise by a learned vector of the edge's relation
    (KGIN's relational message :math:`\mathbf{e}_r \odot \mathbf{e}_t`, without its intents):

    .. math::
        \mathbf{x}_h' = \frac{1}{|\mathcal{N}(h)|} \sum_{(r, t) \in \mathcal{N}(h)} \mathbf{w}_r \odot \mathbf{x}_t

    The relation vectors start at one (a plain neighbour mean) and are trained. It runs as two sparse
    products over a :class:`~kgrec.models.graph_inputs.RelationalAdjacency` rather than PyG's per-edge
    ``MessagePassing`` (the same result, about 3x faster on CPU; a test checks them equal).

    Shapes:
        x (N, d), adjacency over N nodes -> (N, d)
    """

    def __init__(self, dim: int, num_edge_types: int, trainable: bool = True) -> None:
        super().__init__()
        self.dim, self.num_edge_types = dim, num_edge_types
        # Frozen at one, every relation's message is the neighbour itself: the relation-blind ablation.
        self.relation = nn.Parameter(torch.ones(num_edge_types, dim), requires_grad=trainable)

    def reset_parameters(self) -> None:
        """Relation vectors back to one."""
        nn.init.ones_(self.relation)

    def forward(self, x: torch.Tensor, adjacency: RelationalAdjacency) -> torch.Tensor:
        """Aggregate ``x (N, d)`` over ``adjacency``."""
        per_pair = (adjacency.gather @ x) * self.relation[adjacency.pair_relation]  # (P, d)
        return adjacency.scatter @ per_pair

    def __repr__(self) -> str:
        frozen = "" if self.relation.requires_grad else ", frozen"
        return f"{self.__class__.__name__}({self.dim}, num_edge_types={self.num_edge_types}{frozen})"


class KnowledgePropagation(Propagation):
    r"""LightGCN over the collaborative knowledge graph: users, items and KG entities in one graph.

    Every layer, users gather their items (LightGCN's normalised sum), items gather their users
    *and* their KG neighbours, and entities gather their items and entities, each KG message
    scaled by its relation (:class:`RelationalMeanConv`, one set of relation vectors shared by the
    layers, as KGIN shares its relation embeddings):

    .. math::
        \mathbf{u}^{(l+1)} = \textstyle\sum_i \hat{A}_{ui}\,\mathbf{i}^{(l)},\quad
        \mathbf{i}^{(l+1)} = \textstyle\sum_u \hat{A}_{iu}\,\mathbf{u}^{(l)} + \alpha_l\,\mathrm{KG}(\mathbf{x}^{(l)})_i,\quad
        \mathbf{e}^{(l+1)} = \mathrm{KG}(\mathbf{x}^{(l)})_e

    and the outputs are the layer means. The scales :math:`\alpha_l` start at zero, so the module
    starts as LightGCN and training decides how much the KG adds to warm items (measured on
    Alibaba-iFashion: with the KG messages at full weight from the start, validation stalled while
    LightGCN's kept rising). Information flows item -> entity -> item while training,
    so an item without interactions is carried, from layer 2 on, by the warm items that share its
    entities (its director, its brand), and the entities learn what their items' users like. The
    entity embeddings (owned by the recommender) start from PyKEEN's.

    Shapes:
        user_emb (U, d), item_emb (I, d), entity_emb (E, d) -> (U, d), (I, d)
    """

    uses_entities = True
    needs_whole_kg = True

    def __init__(self, dim: int, num_layers: int, num_relations: int = 0, kg_layers: int = 0) -> None:
        super().__init__(dim, num_layers, num_relations, kg_layers)
        self.kg_conv = RelationalMeanConv(dim, max(1, 2 * num_relations))
        self.kg_scales = nn.Parameter(torch.zeros(num_layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Relation vectors back to one, KG scales to zero (the module starts as LightGCN)."""
        self.kg_conv.reset_parameters()
        nn.init.zeros_(self.kg_scales)

    def forward(
        self,
        user_emb: torch.Tensor,
        item_emb: torch.Tensor,
        entity_emb: torch.Tensor | None,
        prop_graph: PropagationGraph,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagate over user-item and KG edges together; without entity embeddings or KG edges, plain LightGCN."""
        if entity_emb is None or not prop_graph.kg_edge_index.numel():
            return self._lightgcn(user_emb, item_emb, prop_graph)
        num_users, num_items = prop_graph.num_users, prop_graph.num_items
        user, item, entity = user_emb, item_emb, entity_emb
        total_user, total_item = user, item
        for conv, scale in zip(self.convs, self.kg_scales):
            collaborative = symmetric_conv(conv, torch.cat([user, item]), prop_graph.ui_adj)  # (U + I, d)
            knowledge = self.kg_conv(torch.cat([item, entity]), prop_graph.kg)  # (I + E, d)
            user = collaborative[:num_users]
            item = collaborative[num_users:] + scale * knowledge[:num_items]
            entity = knowledge[num_items:]
            total_user, total_item = total_user + user, total_item + item
        scale = 1.0 / (self.num_layers + 1)
        return total_user * scale, total_item * scale

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.dim}, num_layers={self.num_layers}, num_relations={self.num_relations})"
        )


class KnowledgeMeanPropagation(KnowledgePropagation):
    """:class:`KnowledgePropagation` blind to relations: every KG message is the plain neighbour mean.

    The relation vectors stay at one and are not trained, so a film's director and its genre reach it
    alike. The ablation that says what the relation vectors add (``benchmarks/run.py`` variants
    ``*-knowledge-mean``).
    """

    def __init__(self, dim: int, num_layers: int, num_relations: int = 0, kg_layers: int = 0) -> None:
        super().__init__(dim, num_layers, num_relations, kg_layers)
        self.kg_conv.relation.requires_grad_(False)


propagation_resolver: ClassResolver[Propagation] = ClassResolver(
    [LightGCNPropagation, RelationalPropagation, KnowledgePropagation, KnowledgeMeanPropagation],
    base=Propagation,
    default=LightGCNPropagation,
)

#: ``model.propagation`` value that picks the propagation from the graph (see :func:`resolve_propagation`).
AUTO_PROPAGATION = "auto"


def resolve_propagation(name: str, use_kg: bool, num_triples: int) -> str:
    """The registry name ``model.propagation`` stands for: ``auto`` is ``knowledge`` when the KG is used
    and has triples, else ``lightgcn`` (the user-item graph alone, the ``no-kg`` ablation)."""
    if name != AUTO_PROPAGATION:
        return name
    return "knowledge" if use_kg and num_triples > 0 else "lightgcn"


def sampled_training_problem(tasks: tuple[str, ...], propagation: str, needs_whole_kg: bool) -> str | None:
    """Why training on sampled subgraphs cannot run ``tasks`` with ``propagation``, in a config's words; None if it can.

    The one statement of the rule: :func:`kgrec.api.train` checks it before any heavy work, the training step and
    the model's sampled forward pass check it again for direct callers.
    """
    if "rating" in tasks:
        return "the rating task needs full-batch training (train.batching=full)"
    if needs_whole_kg:
        return (
            f"sampled batching supports the lightgcn propagation only: {propagation} propagates over the whole KG every "
            "step; use train.batching=full, or model.propagation=lightgcn (the user-item graph alone)"
        )
    return None
