"""Each user's best unseen items, ranked when the run is saved: the answer to ``kgrec recommend`` without a model.

A fresh process that loads a run spends seconds on torch, PyG and the model before its first answer; the usual
question (a known user's top ``k`` unseen items, no context, no explanation) has an answer that does not change
until the run does. :func:`write_ranked` stores it beside ``model.pt`` (two ``.npy`` arrays, ``(U, depth)`` item
indices and scores, read memory-mapped), and :func:`quick_recommend` answers from them with numpy and pandas alone,
or returns None for any question they do not answer, which then goes to the loaded run.

The arrays are what :meth:`~kgrec.inference.Recommender.recommend` ranks for the saved model (tested), written
before ``run.json``, so they are never older than the model; a graph rebuilt since the run was trained is not
answered from them (the loaded run then refuses it with its own message).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kgrec.inference.results import Recommendation
from kgrec.inference.run_files import RANKED_ITEMS, RANKED_SCORES, RUN_FORMAT, RUN_FORMAT_VERSION

__all__ = ["RANKED_ITEMS", "RANKED_SCORES", "quick_recommend", "write_ranked"]


def write_ranked(directory: Path, indices: np.ndarray, scores: np.ndarray) -> dict[str, int]:
    """Store ``(U, depth)`` item indices and scores (best first; ``-inf`` past a user's unseen items); returns the
    entry ``run.json`` records under ``"ranked"``."""
    from kgrec.io import atomic_write

    for name, array in ((RANKED_ITEMS, indices.astype(np.int32)), (RANKED_SCORES, scores.astype(np.float32))):
        with atomic_write(directory / name, mode="wb") as handle:
            np.save(handle, array, allow_pickle=False)
    return {"depth": int(indices.shape[1]), "users": int(indices.shape[0])}


def quick_recommend(run_dir: str | Path, user_ids: list[str], k: int) -> list[Recommendation] | None:
    """Top-``k`` unseen items per user from the run's stored ranking, or None when the stored ranking does not answer
    the question (no ranking stored, ``k`` deeper than it, an unknown user, a graph rebuilt since, another run format,
    anything unreadable).
    """
    directory = Path(run_dir)
    try:
        run = json.loads((directory / "run.json").read_text(encoding="utf-8"))
        if run.get("format") != RUN_FORMAT or run.get("format_version") != RUN_FORMAT_VERSION:
            return None
        ranked = run.get("ranked")
        if not ranked or not user_ids or k < 1 or k > ranked["depth"]:
            return None
        graph_dir = Path(run["graph"])
        manifest = json.loads((graph_dir / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("digest") is None or manifest.get("digest") != run.get("graph_digest"):
            return None
        ids = json.loads((graph_dir / "ids.json").read_text(encoding="utf-8"))
        row_of = {user: row for row, user in enumerate(ids["users"])}
        if any(user not in row_of for user in user_ids) or len(ids["users"]) != ranked["users"]:
            return None
        indices = np.load(directory / RANKED_ITEMS, mmap_mode="r", allow_pickle=False)
        scores = np.load(directory / RANKED_SCORES, mmap_mode="r", allow_pickle=False)
        if indices.shape != (ranked["users"], ranked["depth"]) or scores.shape != indices.shape:
            return None
        import pandas as pd

        titles = (
            pd.read_parquet(graph_dir / "items.parquet", columns=["title"])["title"].astype(str).to_numpy(dtype=object)
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # the loaded run reads the same files and names what is wrong
    items = ids["items"]
    answers = []
    for user in user_ids:
        row = row_of[user]
        keep = np.isfinite(scores[row, :k])  # fewer than k unseen items: the rest are -inf
        picked = np.asarray(indices[row, :k])[keep]
        answers.append(
            Recommendation(
                user, [items[i] for i in picked], titles[picked].tolist(), np.asarray(scores[row, :k])[keep].tolist()
            )
        )
    return answers
