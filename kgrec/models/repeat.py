r"""Repeat use: a user's own use counts of an item, overall and in the query's context, as a scoring term.

In a log of repeated use (apps opened, songs played, products re-bought) the best guess of what a user
takes *now* is mostly what they took before, and in particular what they took before *in this context*
(the mail app at work in the morning, the game at home at night). A low-rank model cannot express that:
its score of an item for a user is one dot product, the same whether the user used the item 200 times
or never. :class:`RepeatUse` is that term, the way repeat-aware recommenders add one (RepeatNet's
repeat mode, ReCANet's repeat-consumption scores), conditioned on context:

.. math::
    r(u, c, i) = \log\Big(1 + \tfrac{1}{\epsilon}\big(\pi_u \tfrac{n_{ui}}{N_u} + \pi_0 \tfrac{n_i}{N}
        + \sum_f \pi_{u f} \tfrac{n_{u c_f i}}{N_{u c_f}} + \pi_f \tfrac{n_{c_f i}}{N_{c_f}}\big)\Big)

with :math:`n_{ui}` the user's observations of the item, :math:`n_i` the item's, :math:`n_{u c_f i}` the
user's observations of the item with the query's value :math:`c_f` of context field :math:`f`, and
:math:`n_{c_f i}` everyone's, each divided by its total over items (:math:`N`): a mixture of the counts'
distributions over items with weights :math:`\pi` (a softmax), interpolated smoothing as in n-gram models.
A weighted sum of *log* counts (this term until 2026-12-02) multiplies counts where counting baselines add
them, and ranked Frappe's in-context queries below those baselines (``benchmarks/frappe_repeat_forms.py``).
It is a context x item interaction (the item's score moves with the context), not a per-user offset.
The weights are learned on the training observations themselves, each scored with its own observation
taken out of the counts (leave-one-out, so an observation never predicts itself), by a softmax over all items;
the blend with the learned model is chosen on validation like EASE's. Counts are set from the interaction log by the caller
(:meth:`RepeatUse.set_counts`); only the weights are model state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from kgrec.models.terms import ScoreTerm

if TYPE_CHECKING:
    from kgrec.models.graph_inputs import PropagationGraph

__all__ = ["RepeatUse"]

# Scores are log(1 + mixture / EPSILON), ranked as log(mixture): 0 for an item no count has seen, so the term's
# share of a score (recommend --explain) is never negative.
EPSILON = 1e-10


class RepeatUse(ScoreTerm):
    """A learned mixture of count distributions of (user, item) and (user, context value, item).

    :attr:`blend` scales the term where :class:`~kgrec.models.RecommenderNetwork` adds it to its scores.

    Args:
        num_fields: Context fields of a query's tokens (0: the user and item terms only).

    Shapes:
        users (B,), tokens (B, F) global context tokens (or None) -> (B, I) scores
    """

    name = "repeat"
    title = "repeat-use"
    switch_off = "model.repeat=off"

    def __init__(self, num_fields: int = 0) -> None:
        super().__init__()
        self.num_fields = num_fields
        # Mixture logits: (user, item, user-in-context per field, popularity-in-context per field)
        self.logits = nn.Parameter(torch.zeros(2 + 2 * num_fields))
        self._counts: _Counts | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Mostly the user's own counts (the ``user`` count baseline) before fitting; blended out until then."""
        with torch.no_grad():
            self.logits.fill_(-3.0)
            self.logits[0] = 0.0
            self.blend.zero_()

    @property
    def num_features(self) -> int:
        """Count distributions the mixture weighs: user, item, and two per context field."""
        return self.logits.numel()

    def set_counts(
        self,
        users: np.ndarray,
        items: np.ndarray,
        tokens: np.ndarray | None,
        num_users: int,
        num_items: int,
        num_tokens: int = 0,
        unknown: np.ndarray | None = None,
    ) -> RepeatUse:
        """Count the observations ``(users (N,), items (N,), tokens (N, F))`` the term reads (the history it scores from).

        ``unknown``: the token of each field that means "unknown value"; observations are not counted
        under it, so a field the query does not state adds nothing.
        """
        if (tokens is None) != (self.num_fields == 0) or (tokens is not None and tokens.shape[1] != self.num_fields):
            raise ValueError(
                f"repeat use was built for {self.num_fields} context fields, got tokens of shape "
                f"{None if tokens is None else tokens.shape}"
            )
        self._counts = _Counts(users, items, tokens, num_users, num_items, num_tokens, unknown)
        return self

    @property
    def has_counts(self) -> bool:
        """Whether :meth:`set_counts` has given the term its observations."""
        return self._counts is not None

    def features(
        self, users: np.ndarray, tokens: np.ndarray | None, leave_out: np.ndarray | None = None
    ) -> torch.Tensor:
        """``(B, K, I)`` count shares (each count over its total) of every item for each query; ``leave_out (B,)``:
        an item whose own observation (this user, item and context) is taken out of its counts first."""
        if self._counts is None:
            raise ValueError("repeat use has no counts: set_counts first")
        raw = self._counts.dense(users, tokens)  # (B, K, I) float32 counts
        if leave_out is not None:
            rows = torch.arange(len(users))
            own = torch.ones(len(users), raw.size(1))
            if tokens is not None:
                known = torch.from_numpy(
                    ~np.isin(tokens, self._counts.unknown)
                ).float()  # (B, F): counted under its token
                own[:, 2:] = torch.cat([known, known], dim=1)
            raw[rows, :, torch.from_numpy(leave_out)] -= own
            raw.clamp_(min=0.0)
        return raw / raw.sum(2, keepdim=True).clamp(min=1.0)

    def forward(self, users: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, I)`` repeat-use scores of every item for ``users (B,)`` in the context ``tokens (B, F)``.

        A run whose queries carry no context (``tokens`` None) gets the user and item terms only.
        """
        if self._counts is None:
            raise ValueError("repeat use has no counts: set_counts first")
        mixture = torch.softmax(self.logits.detach(), 0).cpu().numpy().astype(np.float64)
        token_rows = None if tokens is None or self.num_fields == 0 else tokens.cpu().numpy()
        scores = self._counts.mixed(users.cpu().numpy(), token_rows, mixture)
        return torch.from_numpy(np.log1p(scores / EPSILON).astype(np.float32)).to(users.device)

    def term_scores(
        self, prop_graph: PropagationGraph, users: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The repeat-use scores of :meth:`forward` (the propagation graph is not read: counts are the term's own)."""
        return self(users, context)

    def score_features(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, I)`` log-mixture scores of ``(B, K, I)`` :meth:`features` (differentiable in :attr:`logits`)."""
        return torch.log1p(torch.einsum("bki,k->bi", features, torch.softmax(self.logits, 0)) / EPSILON)

    def fit(
        self,
        users: np.ndarray,
        items: np.ndarray,
        tokens: np.ndarray | None,
        epochs: int = 2,
        lr: float = 0.05,
        seed: int = 0,
        batch_bytes: int = 1 << 27,
    ) -> list[float]:
        """Learn the weights on observations ``(users, items, tokens)`` already counted, each left out of its own counts.

        A softmax over every item per observation (the observed item is the target), Adam, ``epochs``
        passes in a seeded order; batches hold at most ``batch_bytes`` of dense features (and a hundredth of the
        observations at most, so a small log gets enough steps). Returns each
        epoch's mean loss.
        """
        if self._counts is None:
            raise ValueError("repeat use has no counts: set_counts first")
        generator = np.random.default_rng(seed)
        # At least ~100 steps an epoch, so a small log still gets a fit; at most batch_bytes of features a step.
        batch = max(8, min(batch_bytes // (4 * self.num_features * self._counts.num_items), -(-len(users) // 100)))
        optimizer = torch.optim.Adam([self.logits], lr=lr)
        losses = []
        for _ in range(epochs):
            order, total = generator.permutation(len(users)), 0.0
            for start in range(0, len(order), batch):
                rows = order[start : start + batch]
                features = self.features(users[rows], None if tokens is None else tokens[rows], leave_out=items[rows])
                loss = nn.functional.cross_entropy(self.score_features(features), torch.from_numpy(items[rows]))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(rows)
            losses.append(total / max(1, len(order)))
        return losses

    def __repr__(self) -> str:
        weights = ", ".join(f"{w:.3g}" for w in torch.softmax(self.logits.detach(), 0).cpu().tolist())
        return f"{self.__class__.__name__}(fields={self.num_fields}, mixture=[{weights}]) x {float(self.blend):.3g}"


class _Counts:
    """The count matrices of :class:`RepeatUse`, as scipy CSR (rows of a few queries are slices)."""

    def __init__(
        self,
        users: np.ndarray,
        items: np.ndarray,
        tokens: np.ndarray | None,
        num_users: int,
        num_items: int,
        num_tokens: int,
        unknown: np.ndarray | None,
    ) -> None:
        self.num_users, self.num_items, self.num_tokens = num_users, num_items, num_tokens
        self.unknown = np.zeros(0, np.int64) if unknown is None else np.asarray(unknown, np.int64)
        ones = np.ones(len(users), np.float32)
        self.user = sp.csr_matrix((ones, (users, items)), shape=(num_users, num_items))
        self.item = np.asarray(self.user.sum(0), dtype=np.float32).ravel()
        self.user_token = self.token = None
        if tokens is not None:
            rows, cols = np.repeat(users, tokens.shape[1]), np.repeat(items, tokens.shape[1])
            flat = tokens.reshape(-1).astype(np.int64)
            counted = ~np.isin(flat, self.unknown)
            rows, cols, flat = rows[counted], cols[counted], flat[counted]
            once = np.ones(len(flat), np.float32)
            self.user_token = sp.csr_matrix(
                (once, (rows * num_tokens + flat, cols)), shape=(num_users * num_tokens, num_items)
            )
            self.token = sp.csr_matrix((once, (flat, cols)), shape=(num_tokens, num_items))
        # Each row's total (a count's size for one query), clamped at 1 so an empty row contributes nothing.
        self.totals: dict[str, np.ndarray] = {
            name: np.maximum(np.asarray(matrix.sum(1)).ravel(), 1.0)
            for name, matrix in (("user", self.user), ("user_token", self.user_token), ("token", self.token))
            if matrix is not None
        }
        self.item_share = self.item / max(1.0, float(self.item.sum()))

    def dense(self, users: np.ndarray, tokens: np.ndarray | None) -> torch.Tensor:
        """``(B, K, I)`` raw counts: user, item, then user-in-context and in-context per field."""
        parts = [self.user[users].toarray(), np.broadcast_to(self.item, (len(users), self.num_items))]
        if tokens is not None:
            assert self.user_token is not None and self.token is not None
            parts += [self.user_token[users * self.num_tokens + tokens[:, f]].toarray() for f in range(tokens.shape[1])]
            parts += [self.token[tokens[:, f]].toarray() for f in range(tokens.shape[1])]
        return torch.from_numpy(np.stack(parts, axis=1).astype(np.float32))

    def mixed(self, users: np.ndarray, tokens: np.ndarray | None, mixture: np.ndarray) -> np.ndarray:
        """``(B, I)`` ``mixture``-weighted sum of each count's distribution over items, without the ``(B, K, I)`` stack."""
        scores = sp.diags(mixture[0] / self.totals["user"][users]) @ self.user[users]
        scores = scores.toarray() + mixture[1] * self.item_share[None, :]
        if tokens is not None and len(mixture) > 2:
            assert self.user_token is not None and self.token is not None
            fields = tokens.shape[1]
            queries = np.repeat(np.arange(len(users)), fields)
            # One sparse product per kind: a (B, rows) selector picks each field's row, weighed by mixture / row total.
            for name, matrix, index, values in (
                (
                    "user_token",
                    self.user_token,
                    (users[:, None] * self.num_tokens + tokens).reshape(-1),
                    mixture[2 : 2 + fields],
                ),
                ("token", self.token, tokens.reshape(-1), mixture[2 + fields :]),
            ):
                weights = np.tile(values, len(users)) / self.totals[name][index]
                selector = sp.csr_matrix((weights, (queries, index)), shape=(len(users), matrix.shape[0]))
                scores += (selector @ matrix).toarray()
        return scores
