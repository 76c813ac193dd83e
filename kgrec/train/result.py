"""What a training run gives back: :class:`TrainResult` (as PyKEEN's pipeline returns a ``PipelineResult``), and the
files of a run folder made from it."""

from __future__ import annotations

import resource
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from kgrec.inference import Recommender, write_per_user
from kgrec.io import write_json
from kgrec.train.report import plot_curve, write_history

__all__ = ["TrainResult", "write_run"]


@dataclass
class TrainResult:
    """A trained recommender and what training measured and decided.

    Attributes:
        recommender: The trained model bound to its graph, in its best validation state (what is saved).
        metrics: Validation and test metrics measured once after training (``{"valid": {...}, "test": {...}}``),
            PyKEEN's link prediction under ``"kge"`` where it ran.
        timings: Seconds per stage, and the peak memory (``peak_rss_mib``, ``peak_cuda_mib``).
        blend: The blend weights chosen on validation for the score terms (EASE, repeat use), or None.
        per_user: Per-user metrics of the final evaluations, by name (``"valid"``, ``"test"``).
        notes: What training decided for the user to read (a view left out, ...).
        history: One row per epoch: loss, validation score, stage.
    """

    recommender: Recommender
    metrics: dict[str, Any]
    timings: dict[str, float]
    blend: dict[str, Any] | None = None
    per_user: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.timings["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if self.recommender.device.type == "cuda":
            self.timings["peak_cuda_mib"] = torch.cuda.max_memory_allocated(self.recommender.device) / 2**20


def write_run(result: TrainResult, out: Path, graph_dir: str | Path, extra: dict[str, Any]) -> None:
    """metrics.json, per_user.parquet, history.csv, curve.png, the model and (last) run.json of a trained run."""
    recommender = result.recommender
    config = recommender.config
    write_json(out / "metrics.json", result.metrics)
    if result.per_user:
        write_per_user(out, result.per_user, recommender.graph.split_digest)
    write_history(result.history, out / "history.csv")
    plot_curve(
        result.history, config.eval.select_metric if "rank" in config.train.tasks else "-rmse", out / "curve.png"
    )
    info = {
        **extra,
        "device": str(recommender.device),
        "timings": result.timings,
        "blend": result.blend,
        "notes": result.notes,
    }
    recommender.save(out, graph_dir, info)
