"""The names and version of the run folder format, without torch (the quick answer of :mod:`kgrec.inference.ranked`
reads them in a process that never loads the model); :mod:`kgrec.inference.run_store` writes the folder."""

from __future__ import annotations

__all__ = ["PER_USER_NAME", "RANKED_ITEMS", "RANKED_SCORES", "RUN_FORMAT", "RUN_FORMAT_VERSION"]

#: ``run.json``'s ``format``.
RUN_FORMAT = "kgrec-run"
# 2: run.json records the graph's digest, checked on every load.
RUN_FORMAT_VERSION = 2

#: Each evaluated user's metrics, one row per (evaluation, user), beside ``metrics.json`` (``kgrec compare`` reads it).
PER_USER_NAME = "per_user.parquet"
#: Each user's best unseen items, ``(U, depth)`` int32 item indices and float32 scores (:mod:`kgrec.inference.ranked`).
RANKED_ITEMS = "ranked_items.npy"
RANKED_SCORES = "ranked_scores.npy"
