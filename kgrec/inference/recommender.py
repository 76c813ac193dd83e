"""Recommender: a trained model bound to its graph and config, for inference. The one object training, evaluation,
explanations (:mod:`kgrec.explain`), the CLI and the HTTP service (:mod:`kgrec.serve`) use.

A facade over small modules with one job each: the run folder format (:mod:`~kgrec.inference.run_store`), the
ranking tasks (:mod:`~kgrec.inference.tasks`) and their evaluation (:mod:`~kgrec.inference.evaluation`), scoring
given pairs (:mod:`~kgrec.inference.scoring`), scores frozen for serving (:mod:`~kgrec.inference.serving`), FAISS
retrieval (:mod:`~kgrec.inference.retrieval`) and cold start (:mod:`~kgrec.inference.cold_start`). Training's
results (metrics, timings, the chosen blend) are not kept here: :func:`kgrec.train.train_recommender` returns them
in a :class:`~kgrec.train.TrainResult`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from kgrec.config import RunConfig
from kgrec.data import ContextFeatures
from kgrec.errors import ContextWarning, InputError
from kgrec.evaluate import EvaluationResult
from kgrec.graph import KnowledgeGraph, to_hetero
from kgrec.inference import cold_start, evaluation, run_store, scoring
from kgrec.inference.assemble import resolve_device
from kgrec.inference.evaluation import ScoreFunction
from kgrec.inference.results import Recommendation, recommendations_frame
from kgrec.inference.retrieval import item_index, retrieve
from kgrec.inference.serving import FrozenScores, freeze, row_mask
from kgrec.inference.tasks import RankingTasks
from kgrec.models import PropagationGraph, RecommenderNetwork, Representations, top_k

__all__ = ["Recommender"]


class Recommender:
    """A trained :class:`~kgrec.models.RecommenderNetwork` bound to the graph it was trained on.

    Args:
        model: The trained model.
        graph: The graph (ids, split, catalog) it was trained on.
        config: The complete run config.
        directory: The run directory, once saved or loaded.
        device: Where scoring happens.
        context: The fitted context vocabulary, for a model with a context encoder.
        prop_graph: The propagation graph (a PropagationGraph), when not the graph's own (items added after training).
    """

    #: Largest users x items score table :meth:`freeze` keeps (float32 bytes); above it, scores are computed per request.
    SCORE_TABLE_BYTES = 1 << 30
    #: How many unseen items per user :meth:`freeze` ranks ahead of time (a request for more is scored).
    RANKED_DEPTH = 100

    def __init__(
        self,
        model: RecommenderNetwork,
        graph: KnowledgeGraph,
        config: RunConfig,
        directory: Path | None = None,
        device: str | torch.device = "cpu",
        context: ContextFeatures | None = None,
        prop_graph: PropagationGraph | None = None,
    ) -> None:
        if (model.context is None) != (context is None):
            raise ValueError("a context encoder needs its context vocabulary and the other way round")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.graph, self.config, self.directory = graph, config, directory
        self.context = context
        self.graph_dir: Path | None = None  # where the graph is saved (its RDF answers label lookups)
        prop_graph = (
            prop_graph
            if prop_graph is not None
            else PropagationGraph.from_hetero(to_hetero(graph), len(graph.relations))
        )
        self.prop_graph = prop_graph.to(self.device)
        self.history_parts: tuple[str, ...] = ("train",)  # EASE's input rows and the repeat term's counts (use_history)
        self.tasks = RankingTasks(graph, config.eval.task, context)
        self._frozen: FrozenScores | None = None
        self._titles = graph.catalog["title"].astype(str).to_numpy(dtype=object)  # indexed per request: a plain array
        self._give_terms_history()

    # -- state ----------------------------------------------------------------------------
    def freeze(self, score_table_bytes: int | None = None) -> Recommender:
        """Compute the final representations once and score every later request from them (serving; see
        :func:`kgrec.inference.serving.freeze`): with the score table when it fits ``score_table_bytes`` (default
        :attr:`SCORE_TABLE_BYTES`), each user's best :attr:`RANKED_DEPTH` unseen items too. Training never freezes."""
        self._frozen = freeze(
            self.model,
            self.prop_graph,
            self.interactions("train", "valid", "test"),
            batch_size=self.config.eval.batch_size,
            table_bytes=self.SCORE_TABLE_BYTES if score_table_bytes is None else score_table_bytes,
            depth=self.RANKED_DEPTH,
        )
        return self

    @property
    def frozen(self) -> FrozenScores | None:
        """What :meth:`freeze` computed, or None (scores come from a fresh forward pass)."""
        return self._frozen

    def representations(self) -> Representations:
        """The final user and item representations: the frozen ones, or a fresh forward pass."""
        if self._frozen is not None:
            return self._frozen.reps
        self.model.eval()
        with torch.no_grad():
            return self.model(self.prop_graph)

    def use_history(self, *parts: str) -> None:
        """Give the score terms each user's interactions in the split ``parts``: EASE's input rows and the repeat
        term's counts (training only by default).

        A run trained with ``train.refit_linear`` reads training plus validation interactions once its
        EASE is solved on both (:func:`kgrec.api.train` does it; :meth:`load` does it again).
        """
        matrix = self.interactions(*parts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch marks sparse CSR as beta
            history = torch.sparse_csr_tensor(
                torch.from_numpy(matrix.indptr.astype(np.int64)),
                torch.from_numpy(matrix.indices.astype(np.int64)),
                torch.ones(matrix.nnz),
                matrix.shape,
            )
        self.prop_graph = self.prop_graph._replace(history=history.to(self.device))
        self.history_parts = parts
        self._frozen = None
        self._give_terms_history()

    def _give_terms_history(self) -> None:
        """Give the score terms that read the log the interactions of the history parts (EASE's): the KG neighbour
        term its users' rows and the items' training degrees, the repeat-use term its observations with their
        context tokens."""
        kg_neighbours = self.model.kg_neighbours
        if kg_neighbours is not None:
            degree = self.interactions("train").getnnz(axis=0)
            kg_neighbours.set_history(self.tasks.kg_rows, self.interactions(*self.history_parts), degree)
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
            tokens,
            len(self.graph.users),
            len(self.graph.items),
            0 if self.context is None else self.context.num_tokens,
            None if self.context is None else self.context.offsets,
        )

    def interactions(self, *parts: str) -> sp.csr_matrix:
        """``(U, I)`` matrix of the interactions in the named split parts."""
        return self.tasks.interactions(*parts)

    @property
    def log_context(self) -> np.ndarray | None:
        """``(N, F)`` context tokens of every interaction of the split log (in log order), or ``None``."""
        return self.tasks.log_context

    # -- evaluation (kgrec.inference.evaluation) ---------------------------------------------
    def score_function(self, users: np.ndarray | None = None, tokens: np.ndarray | None = None) -> ScoreFunction:
        """``rows (B,) -> scores (B, I)`` over one forward pass (:func:`~kgrec.inference.evaluation.score_function`)."""
        return evaluation.score_function(self, users, tokens)

    def evaluate(
        self, split: str = "test", ks: tuple[int, ...] | None = None, candidates: str = "all", topk_only: bool = False
    ) -> EvaluationResult:
        """Full ranking on ``valid`` or ``test``; ``candidates="unseen"`` ranks only items unseen in training
        (:func:`~kgrec.inference.evaluation.evaluate`)."""
        return evaluation.evaluate(self, split, ks, candidates, topk_only)

    def evaluate_blends(
        self,
        weights: list[float],
        split: str = "valid",
        candidates: str = "all",
        per_user: str | None = None,
        part: str = "ease",
        per_item: bool = False,
    ) -> list[dict[str, Any]]:
        """The @K metrics with each blend weight of the score term ``part``, in one pass
        (:func:`~kgrec.inference.evaluation.evaluate_blends`)."""
        return evaluation.evaluate_blends(self, weights, split, candidates, per_user, part, per_item)

    def rating_errors(self, split: str = "test") -> dict[str, float]:
        """RMSE and MAE of the rating head on a split (:func:`~kgrec.inference.evaluation.rating_errors`)."""
        return evaluation.rating_errors(self, split)

    # -- recommending and scoring ----------------------------------------------------------
    def stated_context(
        self, user_ids: list[str], context: dict[str, Any] | None, attributes: bool = True
    ) -> torch.Tensor | None:
        """``(B, F)`` tokens for users in a stated context (``{"hour": 21}``), their table attributes filled in.

        Raises:
            InputError: when a context is given to a run trained without one, or a field is unknown.
        """
        if self.context is None:
            if context:
                raise InputError(
                    "this run was trained without context features (set context.time / context.user / context.columns)"
                )
            return None
        rows = self.context.user_rows(self.graph.user_table, user_ids) if attributes else [{} for _ in user_ids]
        rows = [{**row, **(context or {})} for row in rows]
        tokens = torch.from_numpy(self.context.encode_values(rows)).to(self.device)  # raises on an unknown field first
        for stated, known in self.context.unseen_values(context or {}):
            warnings.warn(
                f"context {stated} was not seen in training and reads as unknown (known: {known})",
                ContextWarning,
                stacklevel=3,
            )
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
        catalogs; see :mod:`kgrec.inference.retrieval`).
        """
        if as_frame:
            return recommendations_frame(self.recommend(user_ids, k, exclude_seen, context, retrieval))
        self.check_users(user_ids)
        if retrieval not in ("exact", "faiss"):
            raise InputError(f"retrieval is 'exact' or 'faiss', not '{retrieval}'")
        rows = self.graph.users.to_index(user_ids)
        seen = self.interactions("train", "valid", "test") if exclude_seen else None
        tokens = self.stated_context(list(user_ids), context)
        reps = self.representations()
        index = item_index(self.model, reps) if retrieval == "faiss" else None
        frozen = self._frozen
        if (
            frozen is not None
            and frozen.ranked is not None
            and exclude_seen
            and tokens is None
            and index is None
            and k <= frozen.ranked.indices.size(1)
        ):
            picked = torch.from_numpy(rows).to(self.device)
            return self.recommendations(
                user_ids,
                frozen.ranked.indices[picked, :k].cpu().numpy(),
                frozen.ranked.scores[picked, :k].cpu().numpy(),
            )
        found = []
        for start in range(0, len(rows), self.config.eval.batch_size):
            chunk = rows[start : start + self.config.eval.batch_size]
            users = torch.from_numpy(chunk).to(self.device)
            chunk_tokens = None if tokens is None else tokens[start : start + len(chunk)]
            exclude = None if seen is None else row_mask(seen, chunk, self.device)
            if index is not None:
                top = retrieve(index, self.model.user_vectors(reps, users, chunk_tokens), k, exclude)
            elif frozen is not None and frozen.table is not None and chunk_tokens is None:
                top = top_k(frozen.table[users], k, exclude)
            else:
                top = top_k(self.model.score_all(reps, self.prop_graph, users, chunk_tokens), k, exclude)
            found += list(zip(top.indices.cpu().numpy(), top.scores.cpu().numpy()))
        return [self.recommendation(user, *row) for user, row in zip(user_ids, found)]

    def check_users(self, user_ids: list[str]) -> None:
        """Raises InputError naming the first id that is not a user of the run."""
        missing = [u for u in user_ids if u not in self.graph.users]
        if missing:
            raise InputError(
                f"unknown user id '{missing[0]}' (the graph has {len(self.graph.users):,} users with interactions)"
            )

    def check_items(self, item_ids: list[str]) -> None:
        """Raises InputError naming the first id that is not an item of the run."""
        missing = [i for i in item_ids if i not in self.graph.items]
        if missing:
            raise InputError(f"unknown item id '{missing[0]}' (the graph has {len(self.graph.items):,} items)")

    def score(self, user_ids: list[str], item_ids: list[str], context: dict[str, Any] | None = None) -> np.ndarray:
        """Scores of given ``(user, item)`` pairs on external ids, the score :meth:`recommend` ranks by
        (:func:`~kgrec.inference.scoring.score_pairs`)."""
        return scoring.score_pairs(self, user_ids, item_ids, context)

    def score_log(self, log: pd.DataFrame) -> np.ndarray:
        """Scores of a log's ``(user_id, item_id)`` rows, each in the row's own context
        (:func:`~kgrec.inference.scoring.score_log`)."""
        return scoring.score_log(self, log)

    def recommendations(self, user_ids: list[str], indices: np.ndarray, scores: np.ndarray) -> list[Recommendation]:
        """One :class:`Recommendation` per row of ``indices``/``scores (B, k)``, converted in whole-batch numpy calls."""
        if not np.isfinite(scores).all():
            return [self.recommendation(user, *row) for user, row in zip(user_ids, zip(indices, scores))]
        k = indices.shape[1]
        item_ids = self.graph.items.to_ids(indices.ravel())
        titles, values = self._titles[indices].tolist(), scores.tolist()
        return [
            Recommendation(user, item_ids[row * k : (row + 1) * k], titles[row], values[row])
            for row, user in enumerate(user_ids)
        ]

    def recommendation(self, user_id: str, indices: np.ndarray, scores: np.ndarray) -> Recommendation:
        """One user's :class:`Recommendation` from item indices and scores; ``-inf`` scores (fewer than k candidates) are dropped."""
        keep = np.isfinite(scores)
        return Recommendation(
            user_id, self.graph.items.to_ids(indices[keep]), self._titles[indices[keep]].tolist(), scores[keep].tolist()
        )

    # -- vectors and views ----------------------------------------------------------------
    def item_vectors(self) -> pd.DataFrame:
        """The final item vectors (graph and text views fused, after propagation), one row per item id.

        These are what the scorer compares with user vectors; a run with a dot scorer scores
        ``user · item``, plus its blended score terms (EASE, repeat use), which no vector holds.
        """
        return _vector_frame(self.representations().item, self.graph.items.ids, "item_id")

    def user_vectors(self, context: dict[str, Any] | None = None) -> pd.DataFrame:
        """The final user vectors, one row per user id; a context-aware run conditions them on ``context``."""
        reps = self.representations()
        ids = list(self.graph.users.ids)
        tokens = self.stated_context(ids, context)
        with torch.no_grad():
            vectors = self.model.user_vectors(reps, torch.arange(len(ids), device=self.device), tokens)
        return _vector_frame(vectors, ids, "user_id")

    def fusion_weights(self) -> pd.Series:
        """Per item, the share of the graph view in its representation (gate or attention), indexed by item id."""
        weights = self.model.fusion_weights(self.prop_graph).numpy()
        return pd.Series(weights, index=pd.Index(self.graph.items.ids, name="item_id"), name="graph_share")

    # -- cold start (kgrec.inference.cold_start) --------------------------------------------
    def add_items(self, rows: pd.DataFrame) -> Recommender:
        """A copy of this run that can also recommend the catalog ``rows`` (new items), without retraining
        (:func:`~kgrec.inference.cold_start.add_items`)."""
        return cold_start.add_items(self, rows)

    def recommend_for_history(
        self, item_ids: list[str], k: int = 10, user_id: str = "new", context: dict[str, Any] | None = None
    ) -> Recommendation:
        """Top-``k`` items for a user who is not in the graph, from a few items and/or stated attributes
        (:func:`~kgrec.inference.cold_start.recommend_for_history`)."""
        return cold_start.recommend_for_history(self, item_ids, k, user_id, context)

    def recommend_cold_start(self, user_id: str, k: int = 10, context: dict[str, Any] | None = None) -> Recommendation:
        """The answer for a user nothing is known of (:func:`~kgrec.inference.cold_start.recommend_cold_start`)."""
        return cold_start.recommend_cold_start(self, user_id, k, context)

    # -- persistence (kgrec.inference.run_store) ----------------------------------------------
    def save(self, directory: str | Path, graph_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write the run folder (:func:`~kgrec.inference.run_store.save_run`; ``run.json`` last)."""
        return run_store.save_run(self, directory, graph_dir, extra)

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> Recommender:
        """Rebuild a saved run: config, graph (from the path in ``run.json``) and model weights
        (:func:`~kgrec.inference.run_store.load_run`)."""
        return run_store.load_run(cls, directory, device)


def _vector_frame(vectors: torch.Tensor, ids: Any, name: str) -> pd.DataFrame:
    return pd.DataFrame(vectors.detach().float().cpu().numpy(), index=pd.Index(list(ids), name=name))
