"""A trained run as a service sees it: frozen representations plus what arrived since training.

:class:`LiveRecommender` answers every read request from one frozen
:class:`~kgrec.inference.Recommender` and applies the writes a server accepts: interactions (a user's
next answer folds their new items in at once, as ``kgrec recommend --history`` does) and new catalog
items (recommendable at once, as ``--new-items``). It never trains; ``kgrec update`` does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kgrec.errors import InputError
from kgrec.explain import ExplanationPath, PathFinder
from kgrec.inference import Recommendation, Recommender

__all__ = ["Answer", "LiveRecommender", "UnknownItemError"]


class UnknownItemError(InputError):
    """An item id the catalog does not have (the server answers 404)."""


@dataclass(frozen=True)
class Answer:
    """One user's recommendation with how it was made.

    Attributes:
        recommendation: Items, titles, scores (and paths, when asked for).
        known: The user is in the training graph or has posted interactions.
        cold_start: Nothing is known of the user's items: the answer is the most popular items,
            scored by their training interactions (or the attribute fold-in, for a run trained with
            user attributes and a request that states them).
        folded_in: The user's vector comes from fold-in over their items (they posted interactions).
    """

    recommendation: Recommendation
    known: bool
    cold_start: bool = False
    folded_in: bool = False


class LiveRecommender:
    """Reads and writes over one frozen run; safe to call from many threads.

    Args:
        recommender: A loaded run; it is frozen here (representations computed once).
    """

    def __init__(self, recommender: Recommender) -> None:
        self.recommender = recommender.freeze()
        self._lock = threading.RLock()
        # Items each user posted since training, in arrival order (user id -> item ids).
        self.posted: dict[str, list[str]] = {}
        self.events_applied = 0
        self._refresh()

    def _refresh(self) -> None:
        """Derived tables that depend on the item set (rebuilt after items are added)."""
        recommender = self.recommender
        self._seen = recommender.interactions("train", "valid", "test").tocsr()
        self._counts = np.asarray(recommender.interactions("train").sum(axis=0)).ravel().astype(float)
        self._popular = np.argsort(-self._counts, kind="stable")
        self._titles = recommender.graph.catalog["title"].astype(str).to_numpy()
        self._finder: PathFinder | None = None

    # -- reads ------------------------------------------------------------------------------
    @property
    def num_items(self) -> int:
        """Items that can be recommended (trained plus added)."""
        return len(self.recommender.graph.items)

    def knows(self, user_id: str) -> bool:
        """Whether the user is in the training graph or has posted interactions."""
        return user_id in self.recommender.graph.users or user_id in self.posted

    def recommend(self, user_ids: list[str], k: int = 10, context: dict[str, Any] | None = None) -> list[Answer]:
        """Top-``k`` items per user, in the given order; unknown users get the cold-start answer.

        Users known from training and without posted interactions are scored together in batches
        from their trained vectors; the others one by one by fold-in.
        """
        self._check_k(k)
        recommender = self.recommender
        with self._lock:
            posted = {user: list(self.posted[user]) for user in user_ids if user in self.posted}
        trained = [user for user in user_ids if user in recommender.graph.users and user not in posted]
        answers: dict[str, Answer] = {}
        if trained:
            for rec in recommender.recommend(trained, k, context=context):
                answers[rec.user_id] = Answer(rec, known=True)
        for user in dict.fromkeys(user_ids):
            if user in answers:
                continue
            if user in posted:
                history = posted[user]
                if user in recommender.graph.users:
                    row = recommender.graph.users.index_of(user)
                    seen = self._seen.indices[self._seen.indptr[row] : self._seen.indptr[row + 1]]
                    history = list(dict.fromkeys(recommender.graph.items.to_ids(seen) + history))
                rec = recommender.recommend_for_history(history, k, user_id=user, context=context)
                answers[user] = Answer(rec, known=True, folded_in=True)
            else:
                answers[user] = self._cold_start(user, k, context)
        return [answers[user] for user in user_ids]

    def recommend_history(self, item_ids: list[str], k: int = 10, attributes: dict[str, Any] | None = None) -> Answer:
        """Top-``k`` items for an anonymous user known by a few items and/or stated attributes."""
        self._check_k(k)
        self._check_items(item_ids)
        rec = self.recommender.recommend_for_history(
            list(dict.fromkeys(item_ids)), k, user_id="anonymous", context=attributes
        )
        return Answer(rec, known=False, cold_start=not item_ids, folded_in=True)

    def _cold_start(self, user_id: str, k: int, context: dict[str, Any] | None) -> Answer:
        recommender = self.recommender
        from_attributes = (
            bool(context) and recommender.context is not None and bool(recommender.context.field_offsets("user"))
        )
        if not from_attributes:  # the popularity answer from the tables kept here, not recounted per request
            top = self._popular[:k]
            rec = Recommendation(
                user_id, recommender.graph.items.to_ids(top), self._titles[top].tolist(), self._counts[top].tolist()
            )
            return Answer(rec, known=False, cold_start=True)
        return Answer(
            recommender.recommend_cold_start(user_id, k, context), known=False, cold_start=True, folded_in=True
        )

    def explain(self, user_id: str, item_id: str, max_paths: int = 3) -> list[ExplanationPath]:
        """The best paths from a training user to an item (posted interactions are not in the KG paths)."""
        self._check_items([item_id])
        if user_id not in self.recommender.graph.users:
            raise InputError(f"unknown user id '{user_id}': explanations start from a user's training history")
        with self._lock:
            if self._finder is None:
                self._finder = PathFinder(self.recommender)
            finder = self._finder
        return finder.find(user_id, item_id, max_paths)

    def best_paths(self, answer: Answer) -> list[dict | None]:
        """The best path for each recommended item of a training user's answer (None where there is none)."""
        rec = answer.recommendation
        if rec.user_id not in self.recommender.graph.users:
            return [None] * len(rec.item_ids)
        found = [self.explain(rec.user_id, item, max_paths=1) for item in rec.item_ids]
        return [paths[0].to_dict() | {"text": paths[0].text()} if paths else None for paths in found]

    # -- writes ------------------------------------------------------------------------------
    def check(self, event: dict[str, Any]) -> None:
        """Raise the error :meth:`apply` would raise, without changing anything."""
        if event["kind"] == "interaction":
            self._check_items([event["item"]])
        elif event["kind"] == "items":
            taken = [row["item_id"] for row in event["items"] if row["item_id"] in self.recommender.graph.items]
            if taken:
                raise InputError(f"item id '{taken[0]}' is already in the catalog")
        else:
            raise InputError(f"unknown event kind '{event['kind']}'")

    def apply(self, event: dict[str, Any], replay: bool = False) -> None:
        """Apply one accepted event (from a request, or from the log when a server starts or reloads).

        On replay, items the run already has (a newer run trained with them) are skipped.
        """
        with self._lock:
            if event["kind"] == "interaction":
                self._check_items([event["item"]])
                items = self.posted.setdefault(str(event["user"]), [])
                if event["item"] not in items:
                    items.append(event["item"])
            elif event["kind"] == "items":
                rows = event["items"]
                if replay:
                    rows = [row for row in rows if row["item_id"] not in self.recommender.graph.items]
                if rows:
                    self._add_items(rows)
            self.events_applied += 1

    def _add_items(self, rows: list[dict[str, Any]]) -> None:
        frame = pd.DataFrame(
            {
                "item_id": [str(row["item_id"]) for row in rows],
                "title": [str(row.get("title") or "") for row in rows],
                "description": [str(row.get("description") or "") for row in rows],
                "categories": [tuple(row.get("categories") or ()) for row in rows],
                "brands": [tuple(row.get("brands") or ()) for row in rows],
            }
        )
        for column in self.recommender.graph.config.attribute_columns:
            frame[column] = [str((row.get("attributes") or {}).get(column, "")) for row in rows]
        extended = self.recommender.add_items(frame).freeze()
        extended.directory = self.recommender.directory
        self.recommender = extended
        self._refresh()

    # -- checks ------------------------------------------------------------------------------
    def _check_items(self, item_ids: list[str]) -> None:
        unknown = [item for item in item_ids if item not in self.recommender.graph.items]
        if unknown:
            raise UnknownItemError(f"unknown item id '{unknown[0]}' (the catalog has {self.num_items:,} items)")

    def _check_k(self, k: int) -> None:
        if not 1 <= k <= self.num_items:
            raise InputError(f"k must be between 1 and the number of items ({self.num_items:,}), not {k}")
