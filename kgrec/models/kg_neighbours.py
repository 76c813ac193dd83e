"""A score term that trusts the KG where interactions are few: KG nearest neighbours on items with little training
evidence.

On ml-100k the learned model and EASE almost never rank held-out items with 1-20 training interactions, while plain
KG nearest neighbours find some (benchmarks/results/segments_ml-100k.md). :class:`KGNeighbourTerm` adds that score,
for those items only: a user is the sum of the KG rows (:func:`~kgrec.graph.features.kg_tfidf`) of their history
items, an item scores by its cosine with that profile, and only items with at most ``max_degree`` training
interactions get it. Its blend weight is chosen on validation like EASE's (0 unless it helps).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.models.terms import ScoreTerm

if TYPE_CHECKING:
    from kgrec.models.graph_inputs import PropagationGraph

__all__ = ["KGNeighbourTerm"]


class KGNeighbourTerm(ScoreTerm):
    """KG nearest-neighbour scores of the items with at most ``max_degree`` training interactions (0 for the others).

    The KG rows, the users' history rows and the items' training degrees are set by the caller
    (:meth:`set_history`) from the graph; only :attr:`blend` is model state.

    Shapes:
        users (B,) -> (B, I) scores
    """

    name = "kg-knn"
    title = "KG nearest-neighbour"
    switch_off = "model.kg_neighbours=off"

    def __init__(self, max_degree: int = 20) -> None:
        super().__init__()
        self.max_degree = max_degree
        self._features: sp.csr_matrix | None = None
        self._history: sp.csr_matrix | None = None
        self._trusted: torch.Tensor | None = None

    def set_history(self, features: sp.csr_matrix, history: sp.csr_matrix, item_degree: np.ndarray) -> None:
        """``(I, N)`` KG rows of the items, ``(U, I)`` the users' history rows, ``(I,)`` training interactions."""
        if features.shape[0] != history.shape[1] or len(item_degree) != history.shape[1]:
            raise ValueError(
                f"KG rows {features.shape}, history {history.shape} and degrees {item_degree.shape} disagree"
            )
        self._features = sp.csr_matrix(features, dtype=np.float32)
        self._history = sp.csr_matrix(history, dtype=np.float32)
        self._trusted = torch.from_numpy(np.asarray(item_degree) <= self.max_degree)

    def term_scores(
        self, prop_graph: PropagationGraph, users: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Cosine of each user's summed KG rows with each trusted item's row."""
        if self._features is None or self._history is None or self._trusted is None:
            raise ValueError("the KG neighbour term has no history: set_history first")
        profile = self._history[users.cpu().numpy()] @ self._features  # (B, N) sparse
        norms = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1))).clip(min=1e-12)
        scores = torch.from_numpy(
            np.asarray((profile.multiply(1.0 / norms) @ self._features.T).todense(), dtype=np.float32)
        )
        return (scores * self._trusted).to(users.device)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(max_degree={self.max_degree}) x {float(self.blend):.3g}"
