"""A closed-form linear item-item model (EASE) that the learned embeddings are blended with."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from kgrec.models.terms import ScoreTerm

if TYPE_CHECKING:
    import scipy.sparse as sp

    from kgrec.models.graph_inputs import PropagationGraph

__all__ = ["EASE", "text_features"]


class EASE(ScoreTerm):
    r"""Embarrassingly Shallow Autoencoder (Steck, 2019): item-item weights in closed form.

    .. math::
        P = (X^\top X + \lambda I)^{-1},\qquad B = I - P\,\mathrm{diag}(1/\mathrm{diag}(P)),\qquad
        s(u, \cdot) = X_u B

    :math:`B` has a zero diagonal, so an item never recommends itself, and an item without
    training interactions gets a zero column (its score comes from the other views) unless the
    fit is given side rows.

    Side rows (collective EASE, Jeunen et al., RecSys 2020): the KG's item links
    :math:`T` (one row per KG node, marking the items it links) are stacked under the interactions
    with weight :math:`\alpha`, so :math:`X^\top X` becomes :math:`X^\top X + \alpha^2 T^\top T`:
    items sharing entities co-occur as if a user had taken both. An item nobody interacted with
    then gets a column from its entities, and the warm items' weights are smoothed by them.

    Text rows: the items' text embeddings, centred over the catalog and scaled to unit length
    (:func:`text_features`, :math:`F`, one row per item), add :math:`\beta^2 F F^\top` (their
    cosine similarities) the same way. Centring matters: sentence encoders put every text near one
    common direction, so raw cosines are high for any pair; after centring they say which texts are
    alike (the figures on cold items: docs/training.md, "text rows").

    Args:
        num_items: Items (rows and columns of :math:`B`).
        l2: The ridge penalty :math:`\lambda`.
        kg_weight: :math:`\alpha`, the weight of the KG side rows (0: none).
        text_weight: :math:`\beta`, the weight of the text rows (0: none).

    Shapes:
        history (B, I) 0/1 training rows (sparse CSR, sparse COO or dense) -> (B, I) scores
    """

    name = "ease"
    title = "EASE"
    switch_off = "model.linear=none"

    weight: torch.Tensor  # a buffer: (I, I), solved, never trained by gradients

    def __init__(self, num_items: int, l2: float = 250.0, kg_weight: float = 0.0, text_weight: float = 0.0) -> None:
        super().__init__()
        self.num_items, self.l2, self.kg_weight, self.text_weight = num_items, l2, kg_weight, text_weight
        self.register_buffer("weight", torch.zeros(num_items, num_items))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero weights until :meth:`fit`, blended out until its weight is chosen."""
        self.weight.zero_()
        self.blend.zero_()

    # Above this many items the dense float64 inverse (8·I² bytes, twice) no longer fits comfortably:
    # a float32 Cholesky solve instead (the ridge keeps X^T X + λI well conditioned).
    DOUBLE_PRECISION_ITEMS = 10_000

    @torch.no_grad()
    def fit(
        self, interactions: torch.Tensor, side: torch.Tensor | None = None, text: torch.Tensor | None = None
    ) -> EASE:
        """Solve for :math:`B` from the ``(U, I)`` training interaction matrix (dense or sparse).

        ``side (S, I)``: rows stacked under the interactions with weight :attr:`kg_weight` (the KG's
        item links); ignored when the weight is 0. ``text (I, d)``: :func:`text_features` of the
        items, weighted by :attr:`text_weight`; ignored when that is 0.
        The Gram matrix is formed from the sparse interactions (never a dense ``U x I`` matrix);
        the inverse is float64 up to :attr:`DOUBLE_PRECISION_ITEMS` items, a float32 Cholesky solve above.
        """
        # Release the old weights first: at 30k items each I x I float32 matrix is 3.6 GB, and the
        # solve already holds two of them (the factor and its inverse).
        self.weight = torch.empty(0, device=self.weight.device)
        gram = self._gram(interactions, side)  # (I, I)
        if text is not None and self.text_weight != 0.0:
            features = text.to(device=gram.device, dtype=gram.dtype)
            gram.addmm_(features, features.T, alpha=self.text_weight**2)  # in place: no second I x I matrix
            del features
        gram.diagonal().add_(self.l2)
        if self.num_items <= self.DOUBLE_PRECISION_ITEMS:
            precision = torch.linalg.inv(gram)
        else:
            factor = torch.linalg.cholesky(gram)
            del gram
            precision = torch.cholesky_inverse(factor)
            del factor
        if not precision.is_contiguous() and precision.T.is_contiguous():
            # LAPACK hands the inverse back column-major; P is symmetric, so its transpose is the same matrix in
            # row-major order. Scoring multiplies users' rows by rows of B: column-major made that 35x slower at 30k items.
            precision = precision.T
        scale = precision.diagonal().clone()
        precision.div_(scale).neg_()  # B = I - P diag(1/diag(P)), in place to hold one I x I matrix
        precision.diagonal().zero_()
        self.weight = precision.float().contiguous()  # a no-op copy-wise: already row-major
        return self

    @torch.no_grad()
    def extend(
        self, count: int, interactions: torch.Tensor, side: torch.Tensor | None = None, text: torch.Tensor | None = None
    ) -> EASE:
        r"""Give the last ``count`` items (added without interactions, their columns zero) columns from the side rows.

        EASE's objective splits into one ridge regression per column, so a new item's column is the
        regression of its side rows on the trained items' (:math:`(G + \lambda I)^{-1} g`, :math:`G`
        the trained items' Gram matrix with side rows, :math:`g` their cross products with the new
        item), solved by conjugate gradients without forming :math:`G`. The trained items' columns
        and the new items' rows stay as they are, so every existing score is unchanged and a new item
        scores as an item with its links and text would have if it had been in the catalog at fit time
        (but recommends nothing itself until the next fit). ``interactions (U, I)``, ``side (S, I)``
        and ``text (I, d)`` cover every item, the new ones last, as in :meth:`fit`.
        """
        import numpy as np
        import scipy.sparse as sp
        from scipy.sparse.linalg import LinearOperator, cg

        if self.weight.shape != (self.num_items, self.num_items) or not 0 < count < self.num_items:
            raise ValueError(f"extend needs an EASE grown to its {self.num_items} items and 0 < count < that")
        old = self.num_items - count
        rows = [_scipy_rows(interactions, np.float64)]
        if side is not None and self.kg_weight != 0.0:
            rows.append(_scipy_rows(side, np.float64) * self.kg_weight)
        matrix = sp.vstack(rows, format="csc")
        trained, new = matrix[:, :old].tocsr(), matrix[:, old:].tocsr()
        features = None
        if text is not None and self.text_weight != 0.0:
            features = text.double().cpu().numpy() * self.text_weight
        if len(rows) == 1 and features is None:
            return self  # no side rows: a new item has nothing to be regressed on
        cross = (trained.T @ new).toarray()  # (old, count)
        if features is not None:
            cross += features[:old] @ features[old:].T

        def gram_times(vector: np.ndarray) -> np.ndarray:
            product = trained.T @ (trained @ vector) + self.l2 * vector
            return product + (features[:old] @ (features[:old].T @ vector) if features is not None else 0.0)

        operator = LinearOperator((old, old), matvec=gram_times, dtype=np.float64)
        columns = np.zeros((old, count))
        for j in range(count):
            if np.any(cross[:, j]):
                columns[:, j], _ = cg(operator, cross[:, j], rtol=1e-8, maxiter=1000)
        self.weight[:old, old:] = torch.from_numpy(columns).to(self.weight)
        return self

    def _gram(self, interactions: torch.Tensor, side: torch.Tensor | None = None) -> torch.Tensor:
        """``X^T X`` (plus ``kg_weight^2 T^T T``) as a dense matrix: float64 for the exact inverse, float32 above.

        The side rows are stacked under the interactions before the one sparse product, so the
        dense result exists once (3.6 GB at 30k items).
        """
        import numpy as np
        import scipy.sparse as sp

        dtype = np.float64 if self.num_items <= self.DOUBLE_PRECISION_ITEMS else np.float32
        matrix = _scipy_rows(interactions, dtype)
        if side is not None and self.kg_weight != 0.0:
            matrix = sp.vstack([matrix, _scipy_rows(side, dtype) * self.kg_weight], format="csr")
        return torch.from_numpy((matrix.T @ matrix).toarray()).to(self.weight.device)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """Scores of every item for the given users' training rows.

        The rows are multiplied as a sparse matrix: a user has a few dozen items among tens of
        thousands, and the dense product costs ``B x I x I`` (about 100x slower at 30k items).
        """
        if history.layout == torch.sparse_csr:
            history = history.to_sparse_coo()  # CSR selects rows fast; COO multiplies about 2x faster on CPU
        rows = history.float() if history.is_sparse else history.float().to_sparse()
        return torch.sparse.mm(rows, self.weight)

    def term_scores(
        self, prop_graph: PropagationGraph, users: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, I)`` EASE scores of the users' history rows (the split parts the run reads, see ``use_history``)."""
        return self(prop_graph.history_rows(users))

    def history_scores(self, history: torch.Tensor) -> torch.Tensor:
        """EASE needs no user parameters: a new user's history rows score as a known user's do."""
        return self(history)

    def history_contributions(self, history: torch.Tensor, item: int) -> torch.Tensor:
        """``B[h, i]`` for each history item ``h``: removing the interaction (u, h) lowers the score of ``i`` by it."""
        return self.weight[history, item]

    def __repr__(self) -> str:
        side = f", kg_weight={self.kg_weight:g}" if self.kg_weight else ""
        side += f", text_weight={self.text_weight:g}" if self.text_weight else ""
        return f"{self.__class__.__name__}({self.num_items}, l2={self.l2:g}{side}) x {float(self.blend):.3g}"


def text_features(text_emb: torch.Tensor, centre_rows: int | None = None) -> torch.Tensor:
    """``(I, d)`` item text embeddings centred over the items and scaled to unit length (EASE's text rows).

    ``centre_rows``: centre on the mean of the first that many rows only (the items EASE was fitted
    with, when items were added since), so the trained items' rows are the ones the fit saw.
    """
    text = text_emb.float()
    centred = text - text[:centre_rows].mean(0, keepdim=True)
    return torch.nn.functional.normalize(centred, dim=1)


def _scipy_rows(rows: torch.Tensor, dtype: type) -> sp.csr_matrix:
    """A torch matrix (sparse CSR, sparse COO or dense) as a scipy CSR matrix of ``dtype``."""
    import scipy.sparse as sp

    if rows.layout == torch.sparse_csr:
        return sp.csr_matrix(
            (
                rows.values().cpu().numpy().astype(dtype),
                rows.col_indices().cpu().numpy(),
                rows.crow_indices().cpu().numpy(),
            ),
            shape=tuple(rows.shape),
        )
    if rows.is_sparse:
        coo = rows.coalesce()
        indices = coo.indices().cpu().numpy()
        return sp.csr_matrix(
            (coo.values().cpu().numpy().astype(dtype), (indices[0], indices[1])), shape=tuple(coo.shape)
        )
    return sp.csr_matrix(rows.cpu().numpy().astype(dtype))
