"""The ranking tasks a run is measured on: which interactions are targets, which are masked, what is ranked.

:class:`RankingTasks` reads them off the graph once (the graph is immutable, so its matrices are cached):
discovery rankings per user (seen items masked), in-context rankings per (user, context) query, and the
``unseen`` candidates of the cold-start question.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from kgrec.data import ContextFeatures
from kgrec.data.context import log_context_columns
from kgrec.evaluate import interaction_matrix
from kgrec.graph import KnowledgeGraph

__all__ = ["RankingTask", "RankingTasks", "split_matrix"]

#: ``(truth, exclude, candidate items, query users, query tokens)`` of one full ranking.
RankingTask = tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray | None, np.ndarray | None, np.ndarray | None]


def split_matrix(graph: KnowledgeGraph, *parts: str) -> sp.csr_matrix:
    """``(U, I)`` matrix of the graph's interactions in the named split parts (``"train"``, ``"valid"``, ``"test"``)."""
    log = graph.split.interactions
    log = log[log["split"].isin(parts)]
    return interaction_matrix(
        graph.users.to_index(log["user_id"].to_numpy()),
        graph.items.to_index(log["item_id"].to_numpy()),
        len(graph.users),
        len(graph.items),
    )


def _unseen(truth: sp.csr_matrix, exclude: sp.csr_matrix) -> sp.csr_matrix:
    """The targets a discovery ranking can reach: held-out items the user has not interacted with in the masked parts.

    Only a log with context columns has such overlaps (the same item used in another context); without them it
    is ``truth`` unchanged.
    """
    overlap = truth.multiply(exclude)
    if not overlap.nnz:
        return truth
    reachable = sp.csr_matrix(truth.astype(np.int8) - overlap.astype(np.int8))
    reachable.eliminate_zeros()
    return reachable.astype(np.bool_)


class RankingTasks:
    """The interactions of one graph as ranking tasks, for a run with ``task`` (``discovery`` or ``in-context``).

    Args:
        graph: The run's graph.
        task: ``eval.task`` of the run.
        context: The run's fitted context vocabulary, or None without a context encoder.
    """

    def __init__(self, graph: KnowledgeGraph, task: str, context: ContextFeatures | None) -> None:
        self.graph, self.task, self.context = graph, task, context
        self._matrices: dict[tuple[str, ...], sp.csr_matrix] = {}

    def interactions(self, *parts: str) -> sp.csr_matrix:
        """``(U, I)`` matrix of the interactions in the named split parts."""
        if parts not in self._matrices:
            self._matrices[parts] = split_matrix(self.graph, *parts)
        return self._matrices[parts]

    @functools.cached_property
    def category_features(self) -> torch.Tensor:
        """``(I, C)`` multi-hot item categories, for intra-list diversity."""
        categories = self.graph.catalog["categories"]
        names = sorted({c for values in categories for c in values})
        column = {name: j for j, name in enumerate(names)}
        features = torch.zeros(len(categories), len(names), dtype=torch.bool)
        for row, values in enumerate(categories):
            for value in values:
                features[row, column[value]] = True
        return features

    @functools.cached_property
    def kg_rows(self) -> sp.csr_matrix:
        """``(I, N)`` TF-IDF rows of each item's KG entities (:func:`~kgrec.graph.features.kg_tfidf`), read once."""
        from kgrec.graph.features import kg_tfidf

        return kg_tfidf(self.graph)

    @functools.cached_property
    def log_context(self) -> np.ndarray | None:
        """``(N, F)`` context tokens of every interaction of the split log (in log order), or ``None``."""
        if self.context is None:
            return None
        return self.context.encode_log(self.graph.split.interactions, self.graph.user_table)

    @functools.cached_property
    def raw_context_codes(self) -> np.ndarray:
        """``(N, C)`` integer codes of the log's raw context columns (``C`` may be 0), for runs without a context encoder."""
        log = self.graph.split.interactions
        columns = log_context_columns(log)
        return (
            np.column_stack([pd.factorize(log[c].astype(str))[0] for c in columns])
            if columns
            else np.zeros((len(log), 0), np.int64)
        )

    def queries(self, split: str) -> tuple[np.ndarray, np.ndarray | None, sp.csr_matrix]:
        """Rankings per (user, context): query users, ``(Q, F)`` context tokens (None without a context encoder) and
        ``(Q, I)`` targets.

        An in-context query is a user with the raw values of the log's context columns (and, for a context-aware run,
        its encoded context too), so runs with and without a context encoder rank the same queries; a run without one
        (the in-context task's ablation) ranks each with its one user vector.
        """
        log, tokens = self.graph.split.interactions, self.log_context
        rows = (log["split"] == split).to_numpy()
        users = self.graph.users.to_index(log["user_id"].to_numpy()[rows])
        items = self.graph.items.to_index(log["item_id"].to_numpy()[rows])
        in_context = self.task == "in-context" or tokens is None
        raw = self.raw_context_codes[rows] if in_context else np.zeros((int(rows.sum()), 0), np.int64)
        stacked = [users[:, None], raw] + ([] if tokens is None else [tokens[rows]])
        keys, query = np.unique(np.concatenate(stacked, axis=1).astype(np.int64), axis=0, return_inverse=True)
        truth = interaction_matrix(query.ravel(), items, len(keys), len(self.graph.items))
        return keys[:, 0], (keys[:, 1 + raw.shape[1] :] if tokens is not None else None), truth

    def ranking(self, split: str, candidates: str) -> RankingTask:
        """``(truth, exclude, candidate items, query users, query tokens)`` of a full ranking on ``split``.

        Valid masks the training items, test also the validation ones; ``"unseen"`` candidates are
        the items with no interaction in the masked parts. A context-aware run ranks each interaction
        in its own context: one query per (user, context), rows of ``truth``/``exclude``; otherwise
        rows are users and the query arrays are None.
        """
        exclude = self.interactions("train") if split == "valid" else self.interactions("train", "valid")
        candidate_items = None if candidates == "all" else exclude.getnnz(axis=0) == 0
        if self.task == "in-context":
            users, tokens, truth = self.queries(split)
            return truth, sp.csr_matrix(truth.shape, dtype=np.bool_), candidate_items, users, tokens
        if self.context is None:
            return _unseen(self.interactions(split), exclude), exclude, candidate_items, None, None
        users, tokens, truth = self.queries(split)
        return _unseen(truth, exclude[users]), exclude[users], candidate_items, users, tokens
