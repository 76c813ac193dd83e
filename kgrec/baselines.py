"""Baselines a user can run on their own graph, measured by the same full ranking as a trained run.

A baseline answers "what does the simplest thing give on my data?", the row every table needs beside a model:

- ``popularity``: training counts (ties broken by a seeded random order). Among items nobody has touched, every
  count is 0: it is the random ranking a collaborative model falls back to there.
- ``item-knn``: item-based nearest neighbours (Sarwar et al., 2001): cosine similarity of items' training columns,
  each item keeping its ``neighbours`` most similar, a user's score the sum over their items.
- ``ease``: EASE (Steck, 2019), the closed-form item-item model, on the interactions alone (penalty ``l2``, 250 as
  RecBole's default): the strongest peer on every warm split we measured.
- ``kg-knn``: KG nearest neighbours: an item is its 1-hop KG entities, TF-IDF weighted (rare entities count more);
  a user is the sum of their items; the score is the cosine. It ranks items nobody has touched by what they share.
- ``text-knn``: the same over the items' centred text embeddings
  (:func:`~kgrec.models.ease.text_features`): sentence encoders put every text near one direction, so uncentred
  cosines say little (the figures: docs/training.md).

Each is a :class:`Baseline` in :data:`BASELINES`; :func:`evaluate_baseline` fits one on the training
interactions and ranks as :meth:`kgrec.inference.Recommender.evaluate` does (validation masks training items; test
also the validation ones; ``candidates="unseen"`` ranks only items without interactions in the masked parts).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from kgrec.config import TextConfig
from kgrec.errors import InputError
from kgrec.evaluate import EvaluationResult, evaluate_ranking
from kgrec.evaluate.segments import rank_by_segment
from kgrec.graph import KnowledgeGraph
from kgrec.graph.features import kg_tfidf
from kgrec.inference.tasks import split_matrix

__all__ = [
    "BASELINES",
    "Baseline",
    "EASEBaseline",
    "baseline_segments",
    "ItemKNN",
    "KGNeighbours",
    "Popularity",
    "TextNeighbours",
    "evaluate_baseline",
    "kg_tfidf",
    "make_baseline",
]


class Baseline:
    """Scores every item for a batch of users from their training interactions; fitted without a model.

    Subclasses set :attr:`name` (the registry name) and implement :meth:`fit` and :meth:`score`.
    """

    name: ClassVar[str]

    def fit(self, graph: KnowledgeGraph, history: sp.csr_matrix) -> Baseline:
        """Learn from the graph and the ``(U, I)`` interactions users are scored from."""
        raise NotImplementedError

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """``(B, I)`` scores of every item for ``users (B,)``."""
        raise NotImplementedError


class Popularity(Baseline):
    """Training counts, ties broken by a random order drawn from ``seed``."""

    name = "popularity"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.item_scores: torch.Tensor | None = None

    def fit(self, graph: KnowledgeGraph, history: sp.csr_matrix) -> Popularity:
        """Count each item's training interactions."""
        counts = torch.from_numpy(np.asarray(history.sum(axis=0)).ravel()).float()
        generator = torch.Generator().manual_seed(self.seed)
        self.item_scores = counts + torch.rand(len(counts), generator=generator) * 1e-3
        return self

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """The same counts for every user."""
        assert self.item_scores is not None, "fit first"
        return self.item_scores.expand(len(users), -1)


class _Profiles(Baseline):
    """A user is the sum of their items' feature rows; the score is the cosine between user and item rows."""

    features: sp.csr_matrix | None = None
    history: sp.csr_matrix | None = None

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Cosine of each user's summed item rows with every item's row."""
        assert self.features is not None and self.history is not None, "fit first"
        profile = self.history[users.cpu().numpy()] @ self.features  # (B, F) sparse sums of the users' items
        norms = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1))).clip(min=1e-12)
        return torch.from_numpy(np.asarray((profile.multiply(1.0 / norms) @ self.features.T).todense())).float()


class KGNeighbours(_Profiles):
    """KG nearest neighbours: items as TF-IDF rows of their KG entities (:func:`kg_tfidf`), kept sparse (Alibaba's
    dense profiles would take 50 GB)."""

    name = "kg-knn"

    def fit(self, graph: KnowledgeGraph, history: sp.csr_matrix) -> KGNeighbours:
        """Build the items' entity rows."""
        if not len(graph.triples):
            raise InputError(f"graph {graph.name} has no KG triples: kg-knn has nothing to compare items by")
        self.features, self.history = kg_tfidf(graph), history.astype(np.float64)
        return self


class TextNeighbours(Baseline):
    """Text nearest neighbours over the items' centred text embeddings (the run's text encoder settings)."""

    name = "text-knn"

    def __init__(self, text: TextConfig | None = None, cache_dir: Path | None = None) -> None:
        self.text, self.cache_dir = text or TextConfig(), cache_dir
        self.profile: torch.Tensor | None = None
        self.items: torch.Tensor | None = None

    def fit(self, graph: KnowledgeGraph, history: sp.csr_matrix) -> TextNeighbours:
        """Encode the catalog's texts (or read them from the cache) and sum each user's."""
        from kgrec.embed import encode_item_texts, has_item_text
        from kgrec.models.ease import text_features

        if not has_item_text(graph.catalog):
            raise InputError(
                f"graph {graph.name} has no titles, descriptions or categories: text-knn has no text to compare"
            )
        self.items = text_features(encode_item_texts(graph.catalog, self.text, self.cache_dir).text_emb)
        profile = torch.from_numpy(history @ self.items.numpy()).float()  # sum of the user's items
        self.profile = torch.nn.functional.normalize(profile, dim=1)
        return self

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Cosine of each user's summed item texts with every item's."""
        assert self.profile is not None and self.items is not None, "fit first"
        return self.profile[users] @ self.items.T


class ItemKNN(Baseline):
    """Item-based nearest neighbours: cosine similarity of the items' training columns, each item keeping its
    ``neighbours`` most similar items; a user's score for an item sums its similarity to the user's items."""

    name = "item-knn"

    def __init__(self, neighbours: int = 100) -> None:
        if neighbours < 1:
            raise InputError(f"item-knn needs at least 1 neighbour, not {neighbours}")
        self.neighbours = neighbours
        self.similarity: sp.csr_matrix | None = None

    def fit(self, graph: KnowledgeGraph, history: sp.csr_matrix) -> ItemKNN:
        """Cosine similarities of the item columns, the top ``neighbours`` per item kept (sparse)."""
        columns = sp.csc_matrix(history, dtype=np.float64)
        norms = np.sqrt(np.asarray(columns.multiply(columns).sum(axis=0))).ravel().clip(min=1e-12)
        normalised = columns @ sp.diags(1.0 / norms)
        similarity = (normalised.T @ normalised).tocsr()
        similarity.setdiag(0.0)
        similarity.eliminate_zeros()
        rows, cols, values = [], [], []
        for item in range(similarity.shape[0]):
            start, stop = similarity.indptr[item], similarity.indptr[item + 1]
            keep = np.argsort(-similarity.data[start:stop], kind="stable")[: self.neighbours]
            rows.append(np.full(len(keep), item))
            cols.append(similarity.indices[start:stop][keep])
            values.append(similarity.data[start:stop][keep])
        self.similarity = sp.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=similarity.shape
        )
        self.history = sp.csr_matrix(history, dtype=np.float64)
        return self

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Sum of each candidate's similarity to the user's items (a neighbour list is the item's own row)."""
        assert self.similarity is not None and self.history is not None, "fit first"
        return torch.from_numpy((self.history[users.cpu().numpy()] @ self.similarity.T).toarray()).float()


class EASEBaseline(Baseline):
    """EASE on the training interactions alone (no KG or text rows): :class:`~kgrec.models.ease.EASE`."""

    name = "ease"

    def __init__(self, l2: float = 250.0) -> None:
        if l2 <= 0:
            raise InputError(f"ease needs a positive penalty, not {l2}")
        self.l2 = l2
        self.weight: np.ndarray | None = None
        self.history: sp.csr_matrix | None = None

    def fit(self, graph: KnowledgeGraph, history: sp.csr_matrix) -> EASEBaseline:
        """Solve EASE in closed form on the ``(U, I)`` interactions."""
        from kgrec.models.ease import EASE

        coo = sp.coo_matrix(history, dtype=np.float32)
        index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        rows = torch.sparse_coo_tensor(index, torch.from_numpy(coo.data), coo.shape).coalesce()
        self.weight = EASE(history.shape[1], self.l2).fit(rows).weight.numpy()
        self.history = sp.csr_matrix(history, dtype=np.float32)
        return self

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Each user's training row times the item-item weights."""
        assert self.weight is not None and self.history is not None, "fit first"
        return torch.from_numpy(np.asarray(self.history[users.cpu().numpy()] @ self.weight))


#: The baselines by name.
BASELINES: dict[str, type[Baseline]] = {
    cls.name: cls for cls in (Popularity, ItemKNN, EASEBaseline, KGNeighbours, TextNeighbours)
}


def make_baseline(
    name: str, *, seed: int = 0, text: TextConfig | None = None, cache_dir: Path | None = None
) -> Baseline:
    """The baseline called ``name``; ``seed`` breaks popularity's ties, ``text``/``cache_dir`` are text-knn's encoder.

    Raises:
        InputError: an unknown name.
    """
    if name not in BASELINES:
        raise InputError(f"unknown baseline '{name}' (known: {', '.join(BASELINES)})")
    if name == "popularity":
        return Popularity(seed)
    if name == "text-knn":
        return TextNeighbours(text, cache_dir)
    return BASELINES[name]()


def _ranking_task(graph: KnowledgeGraph, split: str, candidates: str) -> tuple:
    """``(train, truth, exclude, candidate items)`` of a full ranking of ``split``, as a run's evaluation ranks it."""
    if split not in ("valid", "test"):
        raise InputError(f"a baseline is evaluated on split 'valid' or 'test', not '{split}'")
    if candidates not in ("all", "unseen"):
        raise InputError(f"candidates are 'all' or 'unseen', not '{candidates}'")
    train = split_matrix(graph, "train")
    exclude = train if split == "valid" else split_matrix(graph, "train", "valid")
    truth = split_matrix(graph, split)
    if not truth.nnz:
        raise InputError(f"the {split} split of graph {graph.name} has no interactions: there is nothing to evaluate")
    return train, truth, exclude, None if candidates == "all" else exclude.getnnz(axis=0) == 0


def evaluate_baseline(
    graph: KnowledgeGraph,
    name: str,
    *,
    split: str = "test",
    candidates: str = "all",
    ks: tuple[int, ...] = (10, 20),
    seed: int = 0,
    text: TextConfig | None = None,
    cache_dir: Path | None = None,
    batch_size: int = 512,
) -> EvaluationResult:
    """Fit the baseline ``name`` on the graph's training interactions and rank ``split`` as a trained run would.

    Raises:
        InputError: an unknown baseline, split or candidates, or a graph without what the baseline reads.
    """
    train, truth, exclude, ranked = _ranking_task(graph, split, candidates)
    baseline = make_baseline(name, seed=seed, text=text, cache_dir=cache_dir).fit(graph, train)
    return evaluate_ranking(baseline.score, truth, exclude, ks=ks, batch_size=batch_size, candidates=ranked)


def baseline_segments(
    graph: KnowledgeGraph,
    name: str,
    *,
    split: str = "test",
    candidates: str = "all",
    ks: tuple[int, ...] = (10, 20),
    seed: int = 0,
    text: TextConfig | None = None,
    cache_dir: Path | None = None,
    batch_size: int = 512,
) -> pd.DataFrame:
    """:func:`evaluate_baseline` by user activity and held-out item popularity
    (:func:`~kgrec.evaluate.segments.rank_by_segment`'s table)."""
    train, truth, exclude, ranked = _ranking_task(graph, split, candidates)
    baseline = make_baseline(name, seed=seed, text=text, cache_dir=cache_dir).fit(graph, train)
    table, _ = rank_by_segment(
        baseline.score,
        truth,
        exclude,
        train.getnnz(axis=1),
        train.getnnz(axis=0),
        ks=ks,
        batch_size=batch_size,
        candidates=ranked,
    )
    return table
