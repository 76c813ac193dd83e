"""Recommender: a trained model bound to its graph and config, for inference; saving and loading run directories.

Training (:mod:`kgrec.train`), evaluation, explanations (:mod:`kgrec.explain`), the CLI and the
HTTP service (:mod:`kgrec.serve`) all use this one object.

A run directory holds ``config.yaml`` (the complete RunConfig), ``run.json`` (graph location,
timings, versions; written last, so its presence means the run is complete), ``model.pt``
(``state_dict`` and shapes, read with ``weights_only=True``), ``context.json`` (the context
vocabulary, for context-aware runs), ``metrics.json``, ``history.csv`` and ``curve.png``.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from kgrec._version import __version__
from kgrec.config import RunConfig, dump_config, load_config
from kgrec.data import ContextFeatures
from kgrec.data.context import log_context_columns
from kgrec.errors import ContextWarning, InputError
from kgrec.evaluate import EvaluationResult, evaluate_blends, evaluate_ranking, interaction_matrix, rating_errors
from kgrec.graph import KnowledgeGraph
from kgrec.io import atomic_write, check_replaceable, load_tensors, save_tensors, write_json, write_marker
from kgrec.inference.assemble import ModelShapes, assemble_model, resolve_device
from kgrec.models import DotScorer, RecommenderNetwork, PropagationGraph, Representations, TopK, top_k
from kgrec.models.linear import text_features
from kgrec.graph import load_graph, to_hetero

__all__ = ["Recommendation", "Recommender", "RUN_FORMAT_VERSION", "recommendations_frame", "split_matrix"]

# 2: run.json records the graph's digest, checked on every load.
RUN_FORMAT_VERSION = 2


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


#: Each evaluated user's metrics, one row per (evaluation, user), beside ``metrics.json`` (``kgrec compare`` reads it).
PER_USER_NAME = "per_user.parquet"


def write_per_user(directory: str | Path, tables: dict[str, pd.DataFrame], split_digest: str) -> None:
    """Store per-user metric tables under their evaluation names (``"test"``, ``"test_unseen"`` ...), replacing those names only."""
    path = Path(directory) / PER_USER_NAME
    frames, stored = [], read_per_user(directory) if path.is_file() else None
    for name, table in tables.items():
        table = table.assign(evaluation=name, split_digest=split_digest)
        old = None if stored is None else stored[stored["evaluation"] == name]
        if old is not None and len(old) == len(table) and (old["split_digest"] == split_digest).all():
            # Another evaluation of the same users (other cut-offs): keep the metrics it did not recompute, as metrics.json does.
            old = old.set_index(["user", "query"])
            merged = table.set_index(["user", "query"])
            if old.index.equals(merged.index):
                table = old.drop(columns=[c for c in merged.columns if c in old.columns]).join(merged).reset_index()
        frames.append(table)
    if stored is not None:
        frames.insert(0, stored[~stored["evaluation"].isin(list(tables))])
    with atomic_write(path, mode="wb") as handle:
        pd.concat(frames, ignore_index=True).to_parquet(handle, index=False)


def read_per_user(directory: str | Path) -> pd.DataFrame:
    """The per-user metric table of a run (columns ``evaluation``, ``split_digest``, ``user``, ``query`` and the metrics)."""
    path = Path(directory) / PER_USER_NAME
    if not path.is_file():
        raise InputError(f"the run has no {PER_USER_NAME} (trained before kgrec kept per-user metrics); evaluate the run again to write it", directory)
    try:
        return pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise InputError(f"cannot read per-user metrics: {' '.join(str(error).split())[:200]}", path) from None


@dataclass(frozen=True)
class Recommendation:
    """Top-K items for one user: external ids, titles and scores, best first.

    With explanations (``kgrec recommend --explain``): the best path for each item (a dict, see
    :class:`kgrec.explain.ExplanationPath`, or None without one) and how the item's score divides
    among the parts the run has (``{"graph": .., "text": .., "ease": ..}``, see
    :meth:`Recommender.score_shares`).
    """

    user_id: str
    item_ids: list[str]
    titles: list[str]
    scores: list[float]
    explanations: list[dict | None] | None = None
    shares: list[dict[str, float]] | None = None


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


def recommendations_frame(recommendations: list[Recommendation]) -> pd.DataFrame:
    """Recommendations as one long DataFrame: ``user_id, rank, item_id, title, score`` (rank 1 is best)."""
    rows = [
        (rec.user_id, rank, item, title, score)
        for rec in recommendations
        for rank, (item, title, score) in enumerate(zip(rec.item_ids, rec.titles, rec.scores), start=1)
    ]
    return pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "title", "score"])


class Recommender:
    """A trained :class:`~kgrec.models.RecommenderNetwork` bound to the graph it was trained on.

    Args:
        model: The trained model.
        graph: The graph (ids, split, catalog) it was trained on.
        config: The complete run config.
        directory: The run directory, once saved or loaded.
        device: Where scoring happens.
        context: The fitted context vocabulary, for a model with a context encoder.
        inputs: The propagation inputs, when not the graph's own (items added after training).
    """

    def __init__(
        self,
        model: RecommenderNetwork,
        graph: KnowledgeGraph,
        config: RunConfig,
        directory: Path | None = None,
        device: str | torch.device = "cpu",
        context: ContextFeatures | None = None,
        inputs: PropagationGraph | None = None,
    ) -> None:
        if (model.context is None) != (context is None):
            raise ValueError("a context encoder needs its context vocabulary and the other way round")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.graph, self.config, self.directory = graph, config, directory
        self.context = context
        self.graph_dir: Path | None = None  # where the graph is saved (its RDF answers label lookups)
        # Filled by training (kgrec.train) and kept for the caller; empty for a loaded run.
        self.metrics: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self.blend: dict[str, Any] | None = None
        self.per_user: dict[str, pd.DataFrame] = {}  # per-user metrics of the final evaluations, by name
        self.notes: list[str] = []  # what training decided for the user to read (a view left out, ...)
        inputs = inputs if inputs is not None else PropagationGraph.from_hetero(to_hetero(graph), len(graph.relations))
        self.inputs = inputs.to(self.device)
        self.history_parts: tuple[str, ...] = ("train",)  # the linear model's input rows (use_history)
        # The graph is immutable, so its matrices are built once, not at every validation.
        self._matrices: dict[tuple[str, ...], sp.csr_matrix] = {}
        self._frozen: Representations | None = None
        self._score_table: torch.Tensor | None = None
        self._ranked: TopK | None = None
        self._count_repeats()

    #: Largest users x items score table :meth:`freeze` keeps (float32 bytes); above it, scores are computed per request.
    SCORE_TABLE_BYTES = 1 << 30
    #: How many unseen items per user :meth:`freeze` ranks ahead of time (a request for more is scored).
    RANKED_DEPTH = 100

    def freeze(self, score_table_bytes: int | None = None) -> Recommender:
        """Compute the final representations once and score every later request from them (serving).

        Propagation is the costly part of a request (one pass over the whole graph); a model that no
        longer trains gives the same representations every time. Training never freezes. When the
        whole ``users x items`` score table fits in ``score_table_bytes`` (default
        :attr:`SCORE_TABLE_BYTES`) and the model has no context encoder (scores then depend on the
        request), it is computed too: a known user's request is then a row lookup and a top-k,
        instead of a sparse product with the EASE matrix (most of a request's time on ml-1m), and
        each user's best :attr:`RANKED_DEPTH` unseen items are ranked from it, so the usual request
        (``k`` up to that depth, seen items excluded) is a slice.
        """
        self.model.eval()
        with torch.no_grad():
            self._frozen = self.model(self.inputs)
            self._score_table, self._ranked = None, None
            budget = self.SCORE_TABLE_BYTES if score_table_bytes is None else score_table_bytes
            if self.model.context is None and self.model.num_users * self.model.num_items * 4 <= budget:
                table = torch.empty(self.model.num_users, self.model.num_items, device=self.device)
                for start in range(0, self.model.num_users, self.config.eval.batch_size):
                    users = torch.arange(start, min(start + self.config.eval.batch_size, self.model.num_users), device=self.device)
                    table[users] = self.model.score_all(self._frozen, self.inputs, users)
                self._score_table = table
                self._ranked = self._rank_unseen(table)
        return self

    def _rank_unseen(self, table: torch.Tensor) -> TopK:
        """Every user's best :attr:`RANKED_DEPTH` items outside their interactions, best first.

        A served request for ``k`` of them is then a slice, not a mask and a top-k over the catalog
        (which cost ~25 us a user on ml-1m, half of a batch answer). Slots past a user's unseen
        items hold ``-inf`` scores, which answers drop.
        """
        seen = self.interactions("train", "valid", "test")
        depth = min(self.RANKED_DEPTH, table.size(1))
        indices = torch.empty(table.size(0), depth, dtype=torch.int64, device=self.device)
        scores = torch.empty(table.size(0), depth, device=self.device)
        for start in range(0, table.size(0), self.config.eval.batch_size):
            rows = np.arange(start, min(start + self.config.eval.batch_size, table.size(0)))
            top = top_k(table[start : start + len(rows)], depth, self._row_mask(seen, rows))
            indices[start : start + len(rows)], scores[start : start + len(rows)] = top.indices, top.scores
        return TopK(indices, scores)

    def representations(self) -> Representations:
        """The final user and item representations: the frozen ones, or a fresh forward pass."""
        if self._frozen is not None:
            return self._frozen
        self.model.eval()
        with torch.no_grad():
            return self.model(self.inputs)

    def use_history(self, *parts: str) -> None:
        """Give the linear model each user's interactions in the split ``parts`` as input rows (training only by default).

        A run trained with ``train.refit_linear`` reads training plus validation interactions once its
        EASE is solved on both (:func:`kgrec.api.train` does it; :meth:`load` does it again).
        """
        matrix = self.interactions(*parts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch marks sparse CSR as beta
            history = torch.sparse_csr_tensor(
                torch.from_numpy(matrix.indptr.astype(np.int64)), torch.from_numpy(matrix.indices.astype(np.int64)),
                torch.ones(matrix.nnz), matrix.shape,
            )
        self.inputs = self.inputs._replace(history=history.to(self.device))
        self.history_parts = parts
        self._frozen = self._score_table = self._ranked = None
        self._count_repeats()

    def _count_repeats(self) -> None:
        """Give the repeat-use term the observations of the history parts (the linear model's), with their context tokens."""
        repeat = self.model.repeat
        if repeat is None:
            return
        log = self.graph.split.interactions
        rows = log["split"].isin(self.history_parts).to_numpy()
        tokens = None
        if repeat.num_fields:
            if self.log_context is None or self.context is None:
                raise ValueError("a repeat-use term over context fields needs the run's context vocabulary")
            tokens = self.log_context[rows]
        repeat.set_counts(
            self.graph.users.to_index(log["user_id"].to_numpy()[rows]),
            self.graph.items.to_index(log["item_id"].to_numpy()[rows]),
            tokens, len(self.graph.users), len(self.graph.items),
            0 if self.context is None else self.context.num_tokens,
            None if self.context is None else self.context.offsets,
        )

    # -- interactions as matrices ---------------------------------------------------------
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
    def log_context(self) -> np.ndarray | None:
        """``(N, F)`` context tokens of every interaction of the split log (in log order), or ``None``."""
        if self.context is None:
            return None
        return self.context.encode_log(self.graph.split.interactions, self.graph.user_table)

    @functools.cached_property
    def _raw_context_codes(self) -> np.ndarray:
        """``(N, C)`` integer codes of the log's raw context columns (``C`` may be 0), for runs without a context encoder."""
        log = self.graph.split.interactions
        columns = log_context_columns(log)
        return np.column_stack([pd.factorize(log[c].astype(str))[0] for c in columns]) if columns else np.zeros((len(log), 0), np.int64)

    def _queries(self, split: str) -> tuple[np.ndarray, np.ndarray | None, sp.csr_matrix]:
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
        in_context = self.config.eval.task == "in-context" or tokens is None
        raw = self._raw_context_codes[rows] if in_context else np.zeros((int(rows.sum()), 0), np.int64)
        stacked = [users[:, None], raw] + ([] if tokens is None else [tokens[rows]])
        keys, query = np.unique(np.concatenate(stacked, axis=1).astype(np.int64), axis=0, return_inverse=True)
        truth = interaction_matrix(query.ravel(), items, len(keys), len(self.graph.items))
        return keys[:, 0], (keys[:, 1 + raw.shape[1] :] if tokens is not None else None), truth

    def _ranking_task(
        self, split: str, candidates: str
    ) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """``(truth, exclude, candidate items, query users, query tokens)`` of a full ranking on ``split``.

        Valid masks the training items, test also the validation ones; ``"unseen"`` candidates are
        the items with no interaction in the masked parts. A context-aware run ranks each interaction
        in its own context: one query per (user, context), rows of ``truth``/``exclude``; otherwise
        rows are users and the query arrays are None.
        """
        exclude = self.interactions("train") if split == "valid" else self.interactions("train", "valid")
        candidate_items = None if candidates == "all" else exclude.getnnz(axis=0) == 0
        if self.config.eval.task == "in-context":
            users, tokens, truth = self._queries(split)
            return truth, sp.csr_matrix(truth.shape, dtype=np.bool_), candidate_items, users, tokens
        if self.context is None:
            return _unseen(self.interactions(split), exclude), exclude, candidate_items, None, None
        users, tokens, truth = self._queries(split)
        return _unseen(truth, exclude[users]), exclude[users], candidate_items, users, tokens

    # -- scoring --------------------------------------------------------------------------
    @torch.no_grad()
    def score_function(self, users: np.ndarray | None = None, tokens: np.ndarray | None = None):  # noqa: ANN201
        """A function ``rows (B,) -> scores (B, I)`` over one forward pass of the model.

        Rows are user indices; with ``users (Q,)`` and context ``tokens (Q, F)``, rows are those queries.
        """
        self.model.eval()
        reps = self.model(self.inputs)
        if users is None:
            return lambda rows: self.model.score_all(reps, self.inputs, rows)
        users_t = torch.from_numpy(users).to(self.device)
        if tokens is None:  # queries in context for a run without a context encoder
            return lambda rows: self.model.score_all(reps, self.inputs, users_t[rows])
        tokens_t = torch.from_numpy(tokens).to(self.device)
        return lambda rows: self.model.score_all(reps, self.inputs, users_t[rows], tokens_t[rows])

    def evaluate(
        self, split: str = "test", ks: tuple[int, ...] | None = None, candidates: str = "all", topk_only: bool = False
    ) -> EvaluationResult:
        """Full ranking on ``valid`` (training items masked) or ``test`` (training and validation items masked).

        ``candidates="unseen"`` ranks only the items with no interaction in the masked parts (the
        cold-start question: among items never seen in training, which will this user pick?).
        ``topk_only`` skips AUC, coverage and diversity (validation during training needs only @K).
        """
        if split not in ("valid", "test"):
            raise InputError(f"evaluate takes split 'valid' or 'test', not '{split}'")
        if candidates not in ("all", "unseen"):
            raise InputError(f"evaluate takes candidates 'all' or 'unseen', not '{candidates}'")
        if ks is not None and (not ks or min(ks) < 1):
            raise InputError(f"cut-offs K must be at least 1, got {list(ks)}")
        if not self.interactions(split).nnz:
            raise InputError(f"the {split} split of graph {self.graph.name} has no interactions: there is nothing to evaluate")
        truth, exclude, candidate_items, users, tokens = self._ranking_task(split, candidates)
        result = evaluate_ranking(
            self.score_function(users, tokens),
            truth,
            exclude,
            ks=ks or self.config.eval.ks,
            batch_size=self.config.eval.batch_size,
            item_features=self.category_features,
            device=self.device,
            candidates=candidate_items,
            topk_only=topk_only,
        )
        if result.per_user is not None:
            # Rows of truth are users, or (user, context) queries of a context-aware run: name the user either way.
            rows = result.per_user["row"].to_numpy()
            table = result.per_user.rename(columns={"row": "query"})
            table.insert(0, "user", self.graph.users.to_ids(rows if users is None else users[rows]))
            result = dataclasses.replace(result, per_user=table)
        return result

    @torch.no_grad()
    def evaluate_blends(
        self, weights: list[float], split: str = "valid", candidates: str = "all", per_user: str | None = None,
        part: str = "linear", per_item: bool = False,
    ) -> list[dict[str, Any]]:
        """The @K metrics :meth:`evaluate` (``topk_only``) would give with each blend weight of ``part`` (``linear``,
        EASE, or ``repeat``, the repeat-use term), in one pass.

        The model's learned and EASE scores are computed once per batch of users (see
        :func:`kgrec.evaluate.evaluate_blends`); choosing the weight among eight candidates on
        Alibaba-iFashion's 114,737 validation users took eight full passes before.
        """
        truth, exclude, candidate_items, users, tokens = self._ranking_task(split, candidates)
        self.model.eval()
        reps = self.model(self.inputs)
        if users is None:
            parts = lambda rows: self.model.score_parts(reps, self.inputs, rows, part=part)  # noqa: E731
        else:
            users_t = torch.from_numpy(users).to(self.device)
            tokens_t = None if tokens is None else torch.from_numpy(tokens).to(self.device)
            parts = lambda rows: self.model.score_parts(  # noqa: E731
                reps, self.inputs, users_t[rows], None if tokens_t is None else tokens_t[rows], part=part
            )
        return evaluate_blends(
            parts, truth, exclude, weights, ks=self.config.eval.ks, batch_size=self.config.eval.batch_size, device=self.device,
            candidates=candidate_items, per_user=per_user, per_item=per_item,
        )

    @torch.no_grad()
    def rating_errors(self, split: str = "test") -> dict[str, float]:
        """RMSE and MAE of the rating head on a split's interactions (empty without a rating head or ratings)."""
        log = self.graph.split.interactions
        if self.model.rating is None or "rating" not in log:
            return {}
        rows = (log["split"] == split).to_numpy()
        users = torch.from_numpy(self.graph.users.to_index(log["user_id"].to_numpy()[rows])).to(self.device)
        items = torch.from_numpy(self.graph.items.to_index(log["item_id"].to_numpy()[rows])).to(self.device)
        context = None if self.log_context is None else torch.from_numpy(self.log_context[rows]).to(self.device)
        self.model.eval()
        reps = self.model(self.inputs)
        score = self.model.scorer(self.model.user_vectors(reps, users, context), reps.item[items])
        predicted = self.model.rating(users, items, score)
        return rating_errors(predicted, torch.from_numpy(log["rating"].to_numpy()[rows]).float())

    def stated_context(self, user_ids: list[str], context: dict[str, Any] | None, attributes: bool = True) -> torch.Tensor | None:
        """``(B, F)`` tokens for users in a stated context (``{"hour": 21}``), their table attributes filled in.

        Raises:
            InputError: when a context is given to a run trained without one, or a field is unknown.
        """
        if self.context is None:
            if context:
                raise InputError("this run was trained without context features (set context.time / context.user / context.columns)")
            return None
        rows = self.context.user_rows(self.graph.user_table, user_ids) if attributes else [{} for _ in user_ids]
        rows = [{**row, **(context or {})} for row in rows]
        tokens = torch.from_numpy(self.context.encode_values(rows)).to(self.device)  # raises on an unknown field first
        for stated, known in self.context.unseen_values(context or {}):
            warnings.warn(f"context {stated} was not seen in training and reads as unknown (known: {known})", ContextWarning, stacklevel=3)
        return tokens

    @torch.no_grad()
    def recommend(
        self,
        user_ids: list[str],
        k: int = 10,
        exclude_seen: bool = True,
        context: dict[str, Any] | None = None,
        retrieval: str = "exact",
        as_frame: bool = False,
    ) -> list[Recommendation] | pd.DataFrame:
        """Top-``k`` items per user, skipping every item the user interacted with (any split) unless told not to.

        Returns one :class:`Recommendation` per user, or with ``as_frame=True`` one long DataFrame
        (``user_id, rank, item_id, title, score``; rank 1 is best), as :func:`recommendations_frame` makes.

        ``context`` (``{"hour": 21, "device": "mobile"}``) conditions a context-aware run; fields not
        given read as unknown, and user attributes come from the user table unless stated. Users are
        scored in batches of ``eval.batch_size`` with the top ``k`` kept per batch, so memory is one
        batch of scores, never users x items. ``retrieval="faiss"`` finds candidates in a FAISS HNSW
        inner-product index of the item vectors instead of scoring every item (approximate; for large
        catalogs; needs a dot scorer and no linear part: ``model.linear=none``).
        """
        if as_frame:
            return recommendations_frame(self.recommend(user_ids, k, exclude_seen, context, retrieval))
        self._check_users(user_ids)
        if retrieval not in ("exact", "faiss"):
            raise InputError(f"retrieval is 'exact' or 'faiss', not '{retrieval}'")
        rows = self.graph.users.to_index(user_ids)
        seen = self.interactions("train", "valid", "test") if exclude_seen else None
        tokens = self.stated_context(list(user_ids), context)
        reps = self.representations()
        index = self._item_index(reps) if retrieval == "faiss" else None
        if self._ranked is not None and exclude_seen and tokens is None and index is None and k <= self._ranked.indices.size(1):
            picked = torch.from_numpy(rows).to(self.device)
            indices = self._ranked.indices[picked, :k].cpu().numpy()
            scores = self._ranked.scores[picked, :k].cpu().numpy()
            return self._recommendations(user_ids, indices, scores)
        found = []
        for start in range(0, len(rows), self.config.eval.batch_size):
            chunk = rows[start : start + self.config.eval.batch_size]
            users = torch.from_numpy(chunk).to(self.device)
            chunk_tokens = None if tokens is None else tokens[start : start + len(chunk)]
            exclude = None if seen is None else self._row_mask(seen, chunk)
            if index is None:
                if self._score_table is not None and chunk_tokens is None:
                    table_rows = self._score_table[users]
                else:
                    table_rows = self.model.score_all(reps, self.inputs, users, chunk_tokens)
                top = top_k(table_rows, k, exclude)
            else:
                top = self._retrieve(index, self.model.user_vectors(reps, users, chunk_tokens), k, exclude)
            found += list(zip(top.indices.cpu().numpy(), top.scores.cpu().numpy()))
        return [self._recommendation(user, *row) for user, row in zip(user_ids, found)]

    def _check_users(self, user_ids: list[str]) -> None:
        missing = [u for u in user_ids if u not in self.graph.users]
        if missing:
            raise InputError(f"unknown user id '{missing[0]}' (the graph has {len(self.graph.users):,} users with interactions)")

    def _check_items(self, item_ids: list[str]) -> None:
        missing = [i for i in item_ids if i not in self.graph.items]
        if missing:
            raise InputError(f"unknown item id '{missing[0]}' (the graph has {len(self.graph.items):,} items)")

    @torch.no_grad()
    def score(self, user_ids: list[str], item_ids: list[str], context: dict[str, Any] | None = None) -> np.ndarray:
        """Scores of given ``(user, item)`` pairs, on external ids: the score :meth:`recommend` ranks by.

        ``user_ids[n]`` is paired with ``item_ids[n]``; seen items are scored like any other. Users
        are scored in batches of ``eval.batch_size`` distinct users, so memory is one batch x items.

        Raises:
            InputError: on lists of different lengths or an unknown user or item id.
        """
        if len(user_ids) != len(item_ids):
            raise InputError(f"`user_ids` has {len(user_ids)} entries and `item_ids` {len(item_ids)}: give one item per user")
        self._check_users(list(user_ids))
        self._check_items(list(item_ids))
        users = self.graph.users.to_index(list(user_ids))
        items = self.graph.items.to_index(list(item_ids))
        distinct, row_of_pair = np.unique(users, return_inverse=True)
        tokens = self.stated_context(self.graph.users.to_ids(distinct), context)
        return self._score_queries(distinct, tokens, row_of_pair.ravel(), items)

    @torch.no_grad()
    def score_log(self, log: pd.DataFrame) -> np.ndarray:
        """Scores of a log's ``(user_id, item_id)`` rows, each in the row's own context: the score the in-context ranking
        ranks by.

        The log has the columns of the run's context fields (``daytime``, ``homework``, a ``timestamp`` for time
        fields; user attributes come from the user table); a run without a context encoder scores each row by its
        user. For labeled rows (click-through protocols: AUC, log loss), a row's score is comparable across rows.
        Rows sharing a user and context are one query: one batch of queries scores every item once.

        Raises:
            InputError: on a missing column or an unknown user or item id.
        """
        needed = ["user_id", "item_id"]
        if self.context is not None:
            needed += [f.name for f in self.context.fields if f.source == "column"]
            needed += ["timestamp"] if any(f.source == "time" for f in self.context.fields) else []
        missing = [column for column in needed if column not in log.columns]
        if missing:
            raise InputError(f"the log to score has no '{missing[0]}' column (this run needs {', '.join(needed)})")
        user_ids, item_ids = log["user_id"].astype(str).tolist(), log["item_id"].astype(str).tolist()
        self._check_users(user_ids)
        self._check_items(item_ids)
        users = self.graph.users.to_index(user_ids)
        items = self.graph.items.to_index(item_ids)
        if self.context is None:
            distinct, query_of_pair = np.unique(users, return_inverse=True)
            return self._score_queries(distinct, None, query_of_pair.ravel(), items)
        encoded = self.context.encode_log(log.reset_index(drop=True), self.graph.user_table)
        keys, query_of_pair = np.unique(np.column_stack([users, encoded]).astype(np.int64), axis=0, return_inverse=True)
        tokens = torch.from_numpy(keys[:, 1:]).to(self.device)
        return self._score_queries(keys[:, 0], tokens, query_of_pair.ravel(), items)

    def _score_queries(self, users: np.ndarray, tokens: torch.Tensor | None, query_of_pair: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of pairs ``(query_of_pair[n], items[n])``: queries are ``users (Q,)`` in ``tokens (Q, F)`` (or none).

        Queries are scored in batches of ``eval.batch_size``, so memory is one batch x items.
        """
        reps = self.representations()
        out = np.empty(len(items), dtype=np.float32)
        batch = self.config.eval.batch_size
        by_query = np.argsort(query_of_pair, kind="stable")  # pairs grouped by query: each batch is one slice
        bounds = np.searchsorted(query_of_pair[by_query], np.arange(0, len(users) + batch, batch))
        for number, start in enumerate(range(0, len(users), batch)):
            chunk = torch.from_numpy(users[start : start + batch]).to(self.device)
            scores = self.model.score_all(reps, self.inputs, chunk, None if tokens is None else tokens[start : start + batch])
            pairs = by_query[bounds[number] : bounds[number + 1]]
            rows = torch.from_numpy(query_of_pair[pairs] - start).to(self.device)
            out[pairs] = scores[rows, torch.from_numpy(items[pairs]).to(self.device)].float().cpu().numpy()
        return out

    def item_vectors(self) -> pd.DataFrame:
        """The final item vectors (graph and text views fused, after propagation), one row per item id.

        These are what the scorer compares with user vectors; a run with a dot scorer scores
        ``user · item``, plus its EASE term when one is blended in (which no vector holds).
        """
        return self._vector_frame(self.representations().item, self.graph.items.ids, "item_id")

    def user_vectors(self, context: dict[str, Any] | None = None) -> pd.DataFrame:
        """The final user vectors, one row per user id; a context-aware run conditions them on ``context``."""
        reps = self.representations()
        ids = list(self.graph.users.ids)
        tokens = self.stated_context(ids, context)
        with torch.no_grad():
            vectors = self.model.user_vectors(reps, torch.arange(len(ids), device=self.device), tokens)
        return self._vector_frame(vectors, ids, "user_id")

    @staticmethod
    def _vector_frame(vectors: torch.Tensor, ids: Any, name: str) -> pd.DataFrame:
        return pd.DataFrame(vectors.detach().float().cpu().numpy(), index=pd.Index(list(ids), name=name))

    def _item_index(self, reps):  # noqa: ANN202 - a faiss index
        """A FAISS HNSW inner-product index of the final item vectors."""
        try:
            import faiss
        except ImportError:
            raise InputError("retrieval 'faiss' needs the faiss-cpu package: pip install 'kgrec[faiss]'") from None
        if not isinstance(self.model.scorer, DotScorer) or (self.model.linear is not None and float(self.model.linear_weight) != 0.0):
            raise InputError("retrieval 'faiss' needs a dot scorer and no linear part (train with model.linear=none)")
        if self.model.repeat is not None and float(self.model.repeat.blend) != 0.0:
            raise InputError("retrieval 'faiss' needs no repeat-use term (train with model.repeat=off)")
        items = reps.item.detach().float().cpu().numpy()
        index = faiss.IndexHNSWFlat(items.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 128
        index.add(items)
        return index

    @staticmethod
    def _retrieve(index, users: torch.Tensor, k: int, exclude: torch.Tensor | None):  # noqa: ANN205 - TopK
        """Top-``k`` by the index, asking for enough extra candidates to skip each user's seen items."""
        extra = 0 if exclude is None else int(exclude.sum(1).max())
        scores, items = index.search(users.detach().float().cpu().numpy(), min(index.ntotal, k + extra))
        scores, items = torch.from_numpy(scores), torch.from_numpy(items)
        if exclude is not None:
            hide = exclude.cpu().gather(1, items.clamp(min=0)) | (items < 0)
            scores = scores.masked_fill(hide, float("-inf"))
        best = scores.topk(min(k, scores.size(1)), dim=1)
        return TopK(items.gather(1, best.indices), best.values)

    def _row_mask(self, matrix: sp.csr_matrix, rows: np.ndarray) -> torch.Tensor:
        """``(B, I)`` bool mask of the nonzeros of ``rows`` of a CSR matrix (a slice per row; no scipy fancy indexing)."""
        starts, stops = matrix.indptr[rows], matrix.indptr[rows + 1]
        counts = stops - starts
        columns = matrix.indices[np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())]
        mask = torch.zeros(len(rows), matrix.shape[1], dtype=torch.bool)
        mask[torch.from_numpy(np.repeat(np.arange(len(rows)), counts)), torch.from_numpy(columns)] = True
        return mask.to(self.device)

    @functools.cached_property
    def _titles(self) -> np.ndarray:
        """Item titles as a plain object array (read once: the catalog's string column is slow to index per request)."""
        return self.graph.catalog["title"].astype(str).to_numpy(dtype=object)

    def _recommendations(self, user_ids: list[str], indices: np.ndarray, scores: np.ndarray) -> list[Recommendation]:
        """One :class:`Recommendation` per row of ``indices``/``scores (B, k)``, converted in whole-batch numpy calls."""
        if not np.isfinite(scores).all():
            return [self._recommendation(user, *row) for user, row in zip(user_ids, zip(indices, scores))]
        k = indices.shape[1]
        item_ids = self.graph.items.to_ids(indices.ravel())
        titles, values = self._titles[indices].tolist(), scores.tolist()
        return [Recommendation(user, item_ids[row * k : (row + 1) * k], titles[row], values[row]) for row, user in enumerate(user_ids)]

    def _recommendation(self, user_id: str, indices: np.ndarray, scores: np.ndarray) -> Recommendation:
        keep = np.isfinite(scores)  # fewer than k candidates: the rest came back as -inf
        return Recommendation(user_id, self.graph.items.to_ids(indices[keep]), self._titles[indices[keep]].tolist(), scores[keep].tolist())

    @torch.no_grad()
    def add_items(self, rows: pd.DataFrame) -> Recommender:
        """A copy of this run that can also recommend the catalog ``rows`` (new items), without retraining.

        Each new item gets its text embedding from the run's text encoder, a KG embedding estimated
        as the mean of the PyKEEN embeddings of the categories, brands and attribute values it links to
        (an inductive estimate: PyKEEN never saw it), and no collaborative part, exactly like an item
        that had no training interactions. ``rows`` comes from :func:`kgrec.data.read_catalog`.
        """
        import copy

        from kgrec.embed import encode_item_texts

        graph = self.graph.with_items(rows)
        model = copy.deepcopy(self.model)
        old, count = len(self.graph.items), len(rows)
        kg_rows = text_rows = None
        if model.kg_emb is not None:
            kg_rows = torch.zeros(count, model.kg_emb.size(1), device=model.kg_emb.device)
            new = graph.triples[graph.triples[:, 0] >= old]
            new = new[new[:, 0] < old + count]
            for node in range(old, old + count):
                linked = new[new[:, 0] == node, 2] - count  # entity rows in the old KG order
                if len(linked):
                    kg_rows[node - old] = model.kg_emb[torch.from_numpy(linked)].mean(0)
        if model.text_emb is not None:
            text_rows = encode_item_texts(graph.catalog.iloc[old:], self.config.text, device=str(self.device)).text_emb
        try:
            model.add_items(count, kg_rows, text_rows)
        except ValueError as error:
            raise InputError(str(error)) from None
        # New items read their entities but do not change them: the trained items score as before.
        inputs = PropagationGraph.from_hetero(to_hetero(graph), len(graph.relations), listen_only=torch.arange(old, old + count))
        extended = Recommender(model, graph, self.config, None, self.device, self.context, inputs)
        if extended.history_parts != self.history_parts:
            extended.use_history(*self.history_parts)
        linear = model.linear
        if linear is not None and (linear.kg_weight or linear.text_weight):
            # Their EASE columns from their KG links and text, as if they had been in the fit; the rest of B stays.
            linear.extend(
                count, extended.inputs.history, extended.inputs.item_links() if linear.kg_weight else None,
                text_features(model.text_emb, centre_rows=old) if linear.text_weight and model.text_emb is not None else None,
            )
        extended.graph_dir = self.graph_dir
        return extended

    @torch.no_grad()
    def recommend_for_history(
        self, item_ids: list[str], k: int = 10, user_id: str = "new", context: dict[str, Any] | None = None
    ) -> Recommendation:
        """Top-``k`` items for a user who is not in the graph, from a few items they interacted with
        and/or stated attributes and context (``{"age": 25, "occupation": "student"}``).

        No retraining: see :meth:`kgrec.models.RecommenderNetwork.score_history`. The given items are
        never recommended back. Attributes alone need a run trained with ``context.user`` fields.
        """
        if not item_ids and not context:
            raise InputError("a new user needs at least one item id in the history, or stated attributes")
        if not item_ids and (self.context is None or not self.context.field_offsets("user")):
            raise InputError("recommending from attributes alone needs a run trained with context.user fields")
        unknown = [item for item in item_ids if item not in self.graph.items]
        if unknown:
            raise InputError(f"unknown item id '{unknown[0]}' in the history (the graph has {len(self.graph.items):,} items)")
        history = torch.zeros(1, len(self.graph.items), device=self.device)
        if item_ids:
            history[0, torch.from_numpy(self.graph.items.to_index(list(item_ids))).to(self.device)] = 1.0
        tokens = self.stated_context([user_id], context, attributes=False)
        scores = self.model.score_history(self.representations(), history, tokens)
        top = top_k(scores, k, history.bool())
        return self._recommendation(user_id, top.indices[0].cpu().numpy(), top.scores[0].cpu().numpy())

    def recommend_cold_start(self, user_id: str, k: int = 10, context: dict[str, Any] | None = None) -> Recommendation:
        """The answer for a user nothing is known of: from stated attributes where the run learned user fields, else
        the ``k`` items with the most training interactions (their counts as scores). The one cold-start answer of
        the library, the command line and the server."""
        if context and self.context is not None and self.context.field_offsets("user"):
            return self.recommend_for_history([], k, user_id=user_id, context=context)
        counts = np.asarray(self.interactions("train").sum(axis=0)).ravel().astype(float)
        top = np.argsort(-counts, kind="stable")[:k]
        return Recommendation(user_id, self.graph.items.to_ids(top), self.graph.catalog["title"].astype(str).to_numpy()[top].tolist(),
                              counts[top].tolist())

    def score_shares(
        self, user_ids: list[str], item_ids: list[list[str]], context: dict[str, Any] | None = None,
    ) -> list[list[dict[str, float]]]:
        """For each user and each of their items, each part's signed share of what lifts the item's score above an average item's.

        Parts: ``graph`` (the propagated graph view, KG included) and ``text`` (the text view), split by their
        Shapley values in the learned score (see :meth:`RecommenderNetwork.score_shares`), ``ease`` (the blended
        linear term) and ``repeat`` (the blended repeat-use term). Shares are divided by the sum of the parts' absolute contributions, so they sum to 1 when
        every part raises the score; a negative share lowered it. Only the parts the run has are given. All users
        are scored in one model call (one propagation), whatever their number.
        """
        self._check_users(list(user_ids))
        self._check_items([item for items in item_ids for item in items])
        width = max((len(items) for items in item_ids), default=0)
        if not width:
            return [[] for _ in item_ids]
        # Rows shorter than the widest repeat their first item (or item 0); the padding is dropped below.
        padded = [list(self.graph.items.to_index(list(items))) for items in item_ids]
        padded = [row + [row[0] if row else 0] * (width - len(row)) for row in padded]
        users = torch.from_numpy(self.graph.users.to_index(list(user_ids))).to(self.device)
        items = torch.tensor(padded, dtype=torch.long, device=self.device)
        parts = self.model.score_shares(self.inputs, users, items, self.stated_context(list(user_ids), context))
        kept = ["graph"] + (["text"] if self.model.fusion is not None else [])
        kept += ["linear"] if self.model.linear is not None and float(self.model.linear_weight) != 0.0 else []
        kept += ["repeat"] if self.model.repeat is not None and float(self.model.repeat.blend) != 0.0 else []
        values = torch.stack([parts[name] for name in kept]).double().cpu()  # (parts, B, K)
        shares = values / values.abs().sum(0).clamp(min=1e-12)
        names = ["ease" if name == "linear" else name for name in kept]
        return [
            [{name: float(shares[p, row, column]) for p, name in enumerate(names)} for column in range(len(items_of_user))]
            for row, items_of_user in enumerate(item_ids)
        ]

    def fusion_weights(self) -> pd.Series:
        """Per item, the share of the graph view in its representation (gate or attention), indexed by item id."""
        weights = self.model.fusion_weights(self.inputs).numpy()
        return pd.Series(weights, index=pd.Index(self.graph.items.ids, name="item_id"), name="graph_share")

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: str | Path, graph_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.pt`` and ``run.json`` (last) into ``directory``; ``config.yaml`` too if absent.

        ``run.json`` records the graph's digest, so a run never loads a graph rebuilt since.

        Raises:
            InputError: when ``directory`` is a folder kgrec did not create.
        """
        directory = Path(directory)
        check_replaceable(directory, "run")
        directory.mkdir(parents=True, exist_ok=True)
        write_marker(directory, "run")
        if not (directory / "config.yaml").is_file():
            with atomic_write(directory / "config.yaml") as handle:
                handle.write(dump_config(self.config))
        model = self.model
        shapes = ModelShapes.of(model, len(self.graph.relations)).to_dict()
        if self.context is not None:
            write_json(directory / "context.json", self.context.to_dict())
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        save_tensors({"state_dict": state, "shapes": shapes}, directory / "model.pt")
        run = {
            "format": "kgrec-run",
            "format_version": RUN_FORMAT_VERSION,
            "kgrec_version": __version__,
            "torch_version": torch.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "graph": str(Path(graph_dir).resolve()),
            "graph_digest": self.graph.digest,
            "model": repr(model),
            **(extra or {}),
        }
        write_json(directory / "run.json", run)
        self.directory, self.graph_dir = directory, Path(graph_dir)
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> Recommender:
        """Rebuild a saved run: config, graph (from the path in ``run.json``) and model weights."""
        directory = Path(directory)
        run_file = directory / "run.json"
        if not run_file.is_file():
            raise InputError("not a complete kgrec run (no run.json); train one with 'kgrec train'", directory)
        try:
            run = json.loads(run_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise InputError(f"corrupted run.json: {error}", run_file) from None
        if run.get("format") != "kgrec-run" or run.get("format_version") != RUN_FORMAT_VERSION:
            raise InputError(f"run format v{run.get('format_version')} is not v{RUN_FORMAT_VERSION}; train again", run_file)
        config = load_config(directory / "config.yaml")
        graph = load_graph(run["graph"])
        if graph.digest != run.get("graph_digest"):
            raise InputError(
                f"the graph at {run['graph']} has changed since this run was trained (rebuilt with another split, data "
                "or items), so its test set may overlap the model's training data; train again on it, or rebuild it as it was",
                run_file,
            )
        try:
            checkpoint = load_tensors(directory / "model.pt", mmap=True)
        except FileNotFoundError:
            raise InputError("the run has no model.pt checkpoint", directory) from None
        except Exception as error:
            raise InputError(f"cannot read the checkpoint: {' '.join(str(error).split())[:200]}", directory / "model.pt") from None
        shapes = ModelShapes.from_dict(checkpoint["shapes"])
        context = None
        if shapes.context is not None:
            try:
                context = ContextFeatures.from_dict(json.loads((directory / "context.json").read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError) as error:
                raise InputError(f"cannot read the context vocabulary: {error}", directory / "context.json") from None
        try:
            model = assemble_model(config, graph, shapes, context=context)
        except InputError as error:
            raise InputError(error.message, directory / "context.json") from None
        try:
            # assign: the model adopts the mapped tensors and frees its zero-filled ones, instead of copying
            # (an Alibaba EASE matrix is 3.6 GB; held twice, loading peaked at twice the model's size)
            model.load_state_dict(checkpoint["state_dict"], assign=True)
        except RuntimeError as error:
            raise InputError(f"checkpoint does not fit the config: {str(error).splitlines()[0]}", directory / "model.pt") from None
        recommender = cls(model, graph, config, directory, device, context)
        if config.train.refit_linear and (model.linear is not None or model.repeat is not None) and len(graph.split.valid):
            recommender.use_history("train", "valid")  # as its EASE was solved and its repeat term counted (api.train)
        recommender.graph_dir = Path(run["graph"])
        return recommender
