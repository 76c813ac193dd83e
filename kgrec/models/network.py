"""RecommenderNetwork: base embeddings (PyKEEN- and text-informed) -> propagation -> fusion -> scorer.

Over 400 lines because the views it builds (graph, KG, text) are read by every way it scores (training steps,
full ranking, score parts for the blend search, Shapley score shares, fold-in for new users) and by the growth
that adds users and items in place; the parts themselves (propagation, fusion, scorers, score terms) are their
own modules.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from kgrec.config import ModelConfig
from kgrec.models.context_encoder import ContextEncoder
from kgrec.models.ease import EASE
from kgrec.models.fusion import Fusion, fusion_resolver
from kgrec.models.graph_inputs import PropagationGraph
from kgrec.models.kg_neighbours import KGNeighbourTerm
from kgrec.models.multitask import RatingHead
from kgrec.models.propagation import Propagation, propagation_resolver, resolve_propagation, sampled_training_problem
from kgrec.models.repeat import RepeatUse
from kgrec.models.scoring import Scorer, scorer_resolver
from kgrec.models.subgraph import Subgraph
from kgrec.models.terms import ScoreTerm

__all__ = ["RecommenderNetwork", "Representations"]


class Representations(NamedTuple):
    """Final ``user (U, d)`` and ``item (I, d)`` representations and the base embeddings they came from."""

    user: torch.Tensor
    item: torch.Tensor
    user_base: torch.Tensor
    item_base: torch.Tensor


def _full_precision(like: torch.Tensor) -> torch.autocast:
    """Autocast switched off for propagation's sparse products: cuSPARSE has no bfloat16 SpMM for the transposed
    product of the backward pass (CUDA error "operation not supported" under bfloat16 autocast, seen on an H200),
    and a sum over thousands of neighbours is where bfloat16's 8 bits of mantissa lose most."""
    return torch.autocast(like.device.type, enabled=False)


def _float32(*tensors: torch.Tensor | None) -> tuple:
    return tuple(None if t is None else t.float() for t in tensors)


class RecommenderNetwork(nn.Module):
    r"""Collaborative backbone plus knowledge-graph and text views of items.

    .. math::
        \mathbf{i}^{(0)} = \mathbf{e}_i + P_{kg}\,\mathbf{k}_i,\quad
        (\mathbf{u}, \mathbf{i}_p) = \mathrm{Prop}(\mathbf{u}^{(0)}, \mathbf{i}^{(0)}, P_{kg}\mathbf{k}_{E}),\quad
        \mathbf{i}_g = \mathbf{i}_p + P_{kg}\mathbf{k}_i,\quad
        \mathbf{i} = \mathrm{Fuse}(\mathbf{i}_g, \mathbf{t}_i),\quad s(u,i) = \mathrm{Score}(\mathbf{u}, \mathbf{i})

    :math:`\mathbf{e}_i` are free item embeddings (the collaborative part), :math:`\mathbf{k}` the
    frozen PyKEEN embeddings of items and entities, :math:`\mathbf{t}_i` the frozen text embeddings.
    Without ``kg_emb`` the KG term drops out; without ``text_emb`` there is no fusion.

    Args:
        num_users: Users (rows of the user table).
        num_items: Items (rows of the item table).
        dim: Representation width.
        propagation: A :class:`~kgrec.models.propagation.Propagation` module.
        scorer: A :class:`~kgrec.models.scoring.Scorer` module.
        fusion: A :class:`~kgrec.models.fusion.Fusion` module, or ``None`` without text.
        kg_emb: ``(num_items + num_entities, d_kg)`` PyKEEN embeddings in KG node order, or ``None``.
        text_emb: ``(num_items, d_text)`` text embeddings in item order, or ``None``.
        ease: A closed-form :class:`~kgrec.models.ease.EASE` score term, added with its ``blend`` weight (chosen on
            validation after training; 0 while training).
        text_encoder: Optionally a module mapping ``item_index (n,)`` to fresh ``(n, d_text)`` text
            embeddings with trainable layers (fine-tuning); ``text_emb`` then holds its initial outputs.
        context: A :class:`~kgrec.models.context_encoder.ContextEncoder`: context tokens add an offset to the user.
        rating: A :class:`~kgrec.models.multitask.RatingHead` for the rating task.
        repeat: A :class:`~kgrec.models.repeat.RepeatUse` score term (the user's own use counts, in the query's context)
            added with its ``blend`` weight (chosen on validation after training; 0 while training).

    The score terms (:mod:`kgrec.models.terms`) are added to the learned score by :meth:`score_all`; one at weight 0
    is never computed.
        kg_model: A PyKEEN model over the same KG whose entity representations replace the frozen
            ``kg_emb`` (the kg task fine-tunes them with PyKEEN's own loss); ``kg_emb`` keeps the
            initial values, for estimating new items.
        num_entities: Non-item KG entities; a propagation over entity nodes (``knowledge``) gets a
            trainable ``(num_entities, dim)`` table of them, started from PyKEEN's ``kg_emb`` rows.
    """

    # Buffers, declared for type checkers (nn.Module's __getattr__ types them loosely).
    kg_emb: torch.Tensor | None
    text_emb: torch.Tensor | None

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int,
        propagation: Propagation,
        scorer: Scorer,
        fusion: Fusion | None = None,
        kg_emb: torch.Tensor | None = None,
        text_emb: torch.Tensor | None = None,
        ease: EASE | None = None,
        text_encoder: nn.Module | None = None,
        context: ContextEncoder | None = None,
        rating: RatingHead | None = None,
        kg_model: nn.Module | None = None,
        num_entities: int = 0,
        repeat: RepeatUse | None = None,
        kg_neighbours: KGNeighbourTerm | None = None,
    ) -> None:
        super().__init__()
        if (fusion is None) != (text_emb is None):
            raise ValueError("a fusion module needs text embeddings and text embeddings need a fusion module")
        self.num_users, self.num_items, self.dim = num_users, num_items, dim
        self.user_emb = nn.Embedding(num_users, dim)
        self.item_emb = nn.Embedding(num_items, dim)
        self.num_entities = num_entities
        self.entity_emb = nn.Embedding(num_entities, dim) if propagation.uses_entities else None
        self.propagation, self.scorer, self.fusion = propagation, scorer, fusion
        self.register_buffer("kg_emb", None if kg_emb is None else kg_emb.detach().float().clone())
        self.register_buffer("text_emb", None if text_emb is None else text_emb.detach().float().clone())
        self.kg_proj = None if kg_emb is None else nn.Linear(kg_emb.size(1), dim, bias=False)
        self.ease = ease
        self.text_encoder = text_encoder
        self.context, self.rating, self.kg_model = context, rating, kg_model
        self.repeat = repeat
        self.kg_neighbours = kg_neighbours
        if kg_model is not None and kg_emb is None:
            raise ValueError("a fine-tuned KG model needs the initial kg_emb too")
        self.register_load_state_dict_pre_hook(_renamed_state)
        self.reset_parameters()

    @classmethod
    def from_config(
        cls,
        config: ModelConfig,
        num_users: int,
        num_items: int,
        num_relations: int,
        kg_emb: torch.Tensor | None,
        text_emb: torch.Tensor | None,
        text_encoder: nn.Module | None = None,
        context: ContextEncoder | None = None,
        rating: RatingHead | None = None,
        kg_model: nn.Module | None = None,
        num_entities: int = 0,
        num_triples: int = 0,
        repeat: RepeatUse | None = None,
        kg_neighbours: KGNeighbourTerm | None = None,
    ) -> RecommenderNetwork:
        """Build from a :class:`~kgrec.config.ModelConfig`, resolving each part by its registry name.

        ``num_triples`` (the KG's size) decides what ``propagation: auto`` means (see
        :func:`~kgrec.models.propagation.resolve_propagation`).
        """
        name = resolve_propagation(config.propagation, config.use_kg, num_triples)
        propagation = propagation_resolver.make(
            name, dim=config.dim, num_layers=config.num_layers, num_relations=num_relations, kg_layers=config.kg_layers
        )
        fusion = None
        if text_emb is not None:
            fusion = fusion_resolver.make(
                config.fusion, graph_dim=config.dim, text_dim=text_emb.size(1), dropout=config.dropout
            )
        scorer = scorer_resolver.make(config.scorer, dim=config.dim)
        ease = (
            EASE(num_items, config.ease_l2[0], config.ease_kg_weight[0], config.ease_text_weight[0])
            if config.linear == "ease"
            else None
        )
        return cls(
            num_users,
            num_items,
            config.dim,
            propagation,
            scorer,
            fusion,
            kg_emb,
            text_emb,
            ease,
            text_encoder,
            context,
            rating,
            kg_model,
            num_entities,
            repeat,
            kg_neighbours,
        )

    def reset_parameters(self) -> None:
        """Normal(0, 0.1) free embeddings (as LightGCN); a zero KG projection, so the KG view starts silent."""
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        if self.kg_proj is not None:
            nn.init.zeros_(self.kg_proj.weight)
        if self.entity_emb is not None:
            self._reset_entities()
        for module in (self.propagation, self.scorer, self.fusion, self.context, self.rating):
            if module is not None:
                module.reset_parameters()

    @torch.no_grad()
    def _reset_entities(self) -> None:
        """Entity nodes start from PyKEEN's entity embeddings (else at random), scaled like the free item embeddings.

        A KG width other than ``dim`` goes through a fixed random projection (distances kept up to scale).
        """
        assert self.entity_emb is not None
        nn.init.normal_(self.entity_emb.weight, std=0.1)
        if self.kg_emb is None or self.num_entities == 0:
            return
        start = self.kg_emb[self.num_items : self.num_items + self.num_entities].float()
        if start.size(1) != self.dim:
            start = start @ torch.randn(start.size(1), self.dim, device=start.device)
        start = start - start.mean(0, keepdim=True)
        std = start.std()
        if start.size(0) > 1 and float(std) > 0:
            self.entity_emb.weight.copy_(start / std * 0.1)

    def side_parameters(self) -> list[nn.Parameter]:
        """Parameters that read the KG or text views (the rest is the collaborative backbone)."""
        modules = [self.kg_proj, self.fusion, self.text_encoder, self.kg_model]
        side = [p for module in modules if module is not None for p in module.parameters() if p.requires_grad]
        return side + self.propagation.side_parameters()

    def backbone_parameters(self) -> list[nn.Parameter]:
        """The collaborative backbone: free embeddings, propagation (without KG layers), scorer."""
        side = {id(p) for p in self.side_parameters()}
        return [p for p in self.parameters() if id(p) not in side]

    # Fixed during training: the PyKEEN and text inputs (rebuilt from their cache when a run resumes) and
    # the EASE matrix (solved in closed form after training; all zeros before).
    FIXED_STATE = ("kg_emb", "text_emb", "ease.weight")

    def training_state(self) -> dict[str, torch.Tensor]:
        """The ``state_dict`` without :attr:`FIXED_STATE`: what checkpoints and best-state copies must keep.

        (With EASE on 100,000 items, the fixed part alone is 40 GB of zeros per copy.)
        """
        return {name: value for name, value in self.state_dict().items() if name not in self.FIXED_STATE}

    def load_training_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load a :meth:`training_state` (or a whole ``state_dict``); the fixed part stays as it is."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        wrong = [name for name in missing if name not in self.FIXED_STATE] + list(unexpected)
        if wrong:
            raise RuntimeError(f"the training state does not fit this model: {', '.join(wrong[:5])}")

    def terms(self) -> list[ScoreTerm]:
        """The model's score terms (EASE, repeat use, KG nearest neighbours), blended in or not."""
        return [term for term in (self.ease, self.repeat, self.kg_neighbours) if term is not None]

    def active_terms(self) -> list[ScoreTerm]:
        """The score terms blended in (weight not 0): the ones every score adds."""
        return [term for term in self.terms() if term.active]

    def term(self, name: str) -> ScoreTerm:
        """The score term called ``name`` (``"ease"``, ``"repeat"``).

        Raises:
            ValueError: when the model has no such term.
        """
        for term in self.terms():
            if term.name == name:
                return term
        raise ValueError(
            f"the model has no {name!r} score term (it has: {', '.join(t.name for t in self.terms()) or 'none'})"
        )

    def kg_view(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Projected PyKEEN embeddings: ``item (I, d)`` and ``entity (E, d)``, or ``(None, None)`` without KG."""
        if self.kg_proj is None:
            return None, None
        projected = self.kg_proj(self.kg_table())  # (I + E, d)
        return projected[: self.num_items], projected[self.num_items :]

    def kg_table(self) -> torch.Tensor:
        """``(I + E, d_kg)`` entity embeddings: the frozen PyKEEN ones, or the fine-tuned KG model's."""
        if self.kg_model is None:
            assert self.kg_emb is not None, "a KG view needs the PyKEEN embeddings"
            return self.kg_emb
        table = self.kg_model.entity_representations[0](indices=None)  # type: ignore[index,operator]  # a PyKEEN model
        # Complex models (RotatE, ComplEx) keep complex entities; the recommender reads real features.
        return torch.view_as_real(table).flatten(1) if table.is_complex() else table

    def user_vectors(
        self,
        reps: Representations,
        user_index: torch.Tensor,
        context: torch.Tensor | None = None,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``(B, d)`` users conditioned on their ``context (B, F)`` tokens (unchanged without a context encoder)."""
        user = reps.user[user_index]
        if self.context is not None and context is not None:
            user = user + self.context(context, dropout, generator)
        return user

    def _graph_view(
        self, prop_graph: PropagationGraph, drop_items: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        item_kg, entity = self.kg_view()
        user_base, item_base = self.user_emb.weight, self._item_inputs(self.item_emb.weight, item_kg, drop_items)
        if self.entity_emb is not None:
            entity = self.entity_emb.weight if entity is None else self.entity_emb.weight + entity
        with _full_precision(user_base):
            user, item = self.propagation(*_float32(user_base, item_base, entity), prop_graph)
        return user, self._with_kg(item, item_kg), user_base, item_base

    @staticmethod
    def _item_inputs(free: torch.Tensor, item_kg: torch.Tensor | None, hidden: torch.Tensor | None) -> torch.Tensor:
        """What propagation starts items from: their free embeddings (the ``hidden`` rows zeroed) plus their KG view."""
        if hidden is not None:
            # DropoutNet-style: items whose free embedding is hidden must be carried by KG and text.
            free = free.masked_fill(hidden.unsqueeze(-1), 0.0)
        return free if item_kg is None else free + item_kg

    @staticmethod
    def _with_kg(item: torch.Tensor, item_kg: torch.Tensor | None) -> torch.Tensor:
        """The KG view again after propagation (as CKE adds it to the item factor): propagation averages it
        away for items with few interactions, which most need it."""
        return item if item_kg is None else item + item_kg

    def text_view(self, text_items: torch.Tensor | None = None) -> torch.Tensor:
        """``(I, d_text)`` text embeddings: cached, or re-encoded where a text encoder is being fine-tuned.

        In training, only ``text_items`` are re-encoded (the rest keep their cached embeddings); in
        evaluation every item is re-encoded, so scores reflect the tuned encoder.
        """
        assert self.text_emb is not None, "a text view needs the text embeddings"
        if self.text_encoder is None:
            return self.text_emb
        if self.training:
            if text_items is None:
                return self.text_emb
            return self.text_emb.index_put((text_items,), self.text_encoder(text_items))
        index = torch.arange(self.num_items, device=self.text_emb.device)
        return torch.cat([self.text_encoder(chunk) for chunk in index.split(256)])

    def forward(
        self,
        prop_graph: PropagationGraph,
        drop_items: torch.Tensor | None = None,
        text_items: torch.Tensor | None = None,
    ) -> Representations:
        """All users' and items' final representations.

        Args:
            prop_graph: Propagation inputs.
            drop_items: ``(I,)`` bool; these items' free embeddings are zeroed (training for cold start).
            text_items: Items whose text a fine-tuned encoder re-encodes in this training step.
        """
        user, item, user_base, item_base = self._graph_view(prop_graph, drop_items)
        if self.fusion is not None:
            item = self.fusion(item, self.text_view(text_items), prop_graph.item_degree)
        return Representations(user, item, user_base, item_base)

    def forward_sampled(
        self,
        prop_graph: PropagationGraph,
        sub: Subgraph,
        drop_items: torch.Tensor | None = None,
        text_items: torch.Tensor | None = None,
    ) -> Representations:
        """Representations of a sampled subgraph's users and items only, rows in ``sub`` order (users, then items).

        The same computation as :meth:`forward` with LightGCN over ``sub.adj`` instead of the whole
        graph; memory follows the subgraph. Propagations over the KG (``knowledge``, ``relational``) need the
        whole KG every step and are not supported here.
        """
        if problem := sampled_training_problem((), repr(self.propagation), self.propagation.needs_whole_kg):
            raise ValueError(problem)
        users, items = sub.user_ids, sub.item_ids(self.num_users)
        item_kg = None if self.kg_proj is None else self.kg_proj(self.kg_table()[items])
        user_base = self.user_emb(users)
        item_base = self._item_inputs(self.item_emb(items), item_kg, None if drop_items is None else drop_items[items])
        with _full_precision(user_base):
            out = self.propagation.layer_mean(torch.cat(_float32(user_base, item_base)), sub.adj)
        user, item = out[: sub.num_users], self._with_kg(out[sub.num_users :], item_kg)
        if self.fusion is not None:
            item = self.fusion(item, self.text_view(text_items)[items], prop_graph.item_degree[items])
        return Representations(user, item, user_base, item_base)

    @torch.no_grad()
    def fusion_weights(self, prop_graph: PropagationGraph) -> torch.Tensor:
        """``(I,)`` share of the graph view in each item (gate or attention); NaN where the fusion has none."""
        if self.fusion is None:
            return torch.ones(self.num_items)
        _, item, _, _ = self._graph_view(prop_graph)
        return self.fusion.weights(item, self.text_view(), prop_graph.item_degree).cpu()

    @torch.no_grad()
    def score_shares(
        self,
        prop_graph: PropagationGraph,
        user_index: torch.Tensor,
        item_index: torch.Tensor,
        context: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """How much each part adds to the score of ``item_index (B, K)`` for ``user_index (B,)``: ``"graph"``, ``"text"``
        and each active score term by its name (``"ease"``, ``"repeat"``), each ``(B, K)``.

        A score term's part is its weighted score, exactly (it is added to the score). ``graph`` and ``text`` split
        the learned score by the two-player Shapley values of the item's views, a view being taken away by putting
        the catalog's mean in its place: ``graph + text = s(g, t) - s(mean g, mean t)``. A text view the fusion
        ignores gets 0, whatever its gate says; without text, ``graph`` is the whole learned difference.
        """
        user, item_graph, user_base, item_base = self._graph_view(prop_graph)
        users = self.user_vectors(Representations(user, item_graph, user_base, item_base), user_index, context)
        batch, k = item_index.shape
        users = users.unsqueeze(1).expand(batch, k, -1).reshape(batch * k, -1)
        flat = item_index.reshape(-1)
        own_graph, mean_graph = item_graph[flat], item_graph.mean(0).expand(batch * k, -1)

        if self.fusion is None:

            def graph_score(graph_view: torch.Tensor) -> torch.Tensor:
                return self.scorer(users, graph_view).view(batch, k)

            graph_part, text_part = (
                graph_score(own_graph) - graph_score(mean_graph),
                torch.zeros(batch, k, device=flat.device),
            )
        else:
            fusion = self.fusion
            text, degree = self.text_view(), prop_graph.item_degree[flat]
            own_text, mean_text = text[flat], text.mean(0).expand(batch * k, -1)

            def score(graph_view: torch.Tensor, text_view: torch.Tensor) -> torch.Tensor:
                return self.scorer(users, fusion(graph_view, text_view, degree)).view(batch, k)

            both, no_graph, no_text, neither = (
                score(own_graph, own_text),
                score(mean_graph, own_text),
                score(own_graph, mean_text),
                score(mean_graph, mean_text),
            )
            graph_part = 0.5 * ((both - no_graph) + (no_text - neither))
            text_part = 0.5 * ((both - no_text) + (no_graph - neither))
        terms = {
            term.name: term.weighted(prop_graph, user_index, context).gather(1, item_index)
            for term in self.active_terms()
        }
        return {"graph": graph_part, "text": text_part, **terms}

    def score_all(
        self,
        reps: Representations,
        prop_graph: PropagationGraph,
        user_index: torch.Tensor,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, I)`` scores of every item for ``user_index (B,)`` in ``context (B, F)``: the scorer plus the active score terms."""
        scores = self.scorer.score_all(self.user_vectors(reps, user_index, context), reps.item)
        for term in self.active_terms():
            scores = scores + term.weighted(prop_graph, user_index, context)
        return scores

    def score_parts(
        self,
        reps: Representations,
        prop_graph: PropagationGraph,
        user_index: torch.Tensor,
        context: torch.Tensor | None = None,
        part: str = "ease",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rest, part)``, each ``(B, I)``: :meth:`score_all` is ``rest + w * part`` for the score term named ``part``
        (``"ease"``, ``"repeat"``) and its blend weight ``w``.

        For choosing a blend weight: both parts once per batch, every candidate weight after. The other terms enter
        ``rest`` only when blended in (EASE's sparse product and the repeat counts are most of a batch's cost).
        """
        chosen = self.term(part)
        rest = self.scorer.score_all(self.user_vectors(reps, user_index, context), reps.item)
        for term in self.active_terms():
            if term is not chosen:
                rest = rest + term.weighted(prop_graph, user_index, context)
        return rest, chosen.term_scores(prop_graph, user_index, context)

    @torch.no_grad()
    def add_users(self, count: int, generator: torch.Generator | None = None) -> None:
        """Grow the user table by ``count`` users, in place; existing users are unchanged.

        New users start as trained users did (Normal(0, 0.1) free embeddings, zero rating biases);
        for ``kgrec update``, which then trains them on their interactions.
        """
        old = self.num_users
        self.user_emb = _grown(self.user_emb, count)
        self.user_emb.weight[old:] = torch.randn(count, self.dim, generator=generator).to(self.user_emb.weight) * 0.1
        if self.rating is not None:
            self.rating.user_bias = _grown(self.rating.user_bias, count)
            self.rating.num_users = old + count
        self.num_users = old + count

    @torch.no_grad()
    def add_items(self, count: int, kg_rows: torch.Tensor | None = None, text_rows: torch.Tensor | None = None) -> None:
        """Grow the item table by ``count`` items without interactions, in place; existing items are unchanged.

        New items get a zero free embedding (like every item without training interactions), their
        ``(count, d_kg)`` KG rows between the old items and the entities (KG node order), their
        ``(count, d_text)`` text rows, and zero EASE weights (:meth:`~kgrec.models.ease.EASE.extend`
        gives them columns from their KG and text rows).
        """
        if self.text_encoder is not None or self.kg_model is not None:
            raise ValueError("adding items to a model with a fine-tuned text encoder or KG model is not supported")
        old = self.num_items
        self.item_emb = _grown(self.item_emb, count)
        if self.kg_emb is not None:
            if kg_rows is None or kg_rows.shape != (count, self.kg_emb.size(1)):
                raise ValueError(f"need ({count}, {self.kg_emb.size(1)}) KG rows for the new items")
            self.kg_emb = torch.cat([self.kg_emb[:old], kg_rows.to(self.kg_emb), self.kg_emb[old:]])
        if self.text_emb is not None:
            if text_rows is None or text_rows.shape != (count, self.text_emb.size(1)):
                raise ValueError(f"need ({count}, {self.text_emb.size(1)}) text rows for the new items")
            self.text_emb = torch.cat([self.text_emb, text_rows.to(self.text_emb)])
        if self.rating is not None:
            self.rating.item_bias = _grown(self.rating.item_bias, count)
            self.rating.num_items = old + count
        if self.ease is not None:
            grown = torch.zeros(old + count, old + count, dtype=self.ease.weight.dtype, device=self.ease.weight.device)
            grown[:old, :old] = self.ease.weight
            self.ease.weight = grown
            self.ease.num_items = old + count
        self.num_items = old + count

    def score_history(
        self, reps: Representations, history: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, I)`` scores for users who are not in the graph, from their ``(B, I)`` 0/1 item histories.

        Fold-in without retraining: the user vector is the mean of the history items' final
        representations, rescaled to the mean norm of the trained users' vectors (so the blend
        weight of a score term keeps its meaning); a term that needs no user parameters (EASE) scores the history,
        the others (repeat use: a new user has no counts) stay out. An empty
        history gives a zero user vector, so a user known only by ``context (B, F)`` tokens (stated
        attributes) is scored by the context encoder alone.
        """
        history = history.float()
        counts = history.sum(1, keepdim=True).clamp(min=1.0)
        user = (history @ reps.item) / counts
        scale = reps.user.norm(dim=1).mean()
        user = user / user.norm(dim=1, keepdim=True).clamp(min=1e-12) * scale
        if self.context is not None and context is not None:
            user = user + self.context(context)
        scores = self.scorer.score_all(user, reps.item)
        for term in self.active_terms():
            term_scores = term.history_scores(history)
            if term_scores is not None:
                scores = scores + term.blend * term_scores
        return scores

    def __repr__(self) -> str:
        parts = [f"{self.num_users} users", f"{self.num_items} items", f"dim={self.dim}", repr(self.propagation)]
        parts.append(repr(self.fusion) if self.fusion is not None else "no text")
        if self.text_encoder is not None:
            parts.append(repr(self.text_encoder))
        parts.append("no kg" if self.kg_emb is None else "kg (fine-tuned)" if self.kg_model is not None else "kg")
        for module in (self.context, self.rating, *self.terms()):
            if module is not None:
                parts.append(repr(module))
        return f"{self.__class__.__name__}({', '.join(parts)}, {self.scorer!r})"


#: State names of runs saved before EASE became a score term (``linear``, its weight ``linear_weight`` on the network).
_OLD_STATE_NAMES = {"linear_weight": "ease.blend", "linear.weight": "ease.weight"}


def _renamed_state(module: nn.Module, state: dict, prefix: str, *args: object) -> None:
    """A load_state_dict pre-hook: a state saved under the old names loads into the new ones (runs stay loadable)."""
    for old, new in _OLD_STATE_NAMES.items():
        if prefix + old in state:
            value = state.pop(prefix + old)
            if getattr(module, "ease", None) is not None:  # the old network held a zero weight even without EASE
                state[prefix + new] = value


@torch.no_grad()
def _grown(table: nn.Embedding, count: int) -> nn.Embedding:
    """``table`` with ``count`` zero rows appended (same device and dtype; the old rows copied)."""
    weight = table.weight
    grown = nn.Embedding(weight.size(0) + count, weight.size(1), device=weight.device, dtype=weight.dtype)
    grown.weight.zero_()
    grown.weight[: weight.size(0)] = weight
    return grown
