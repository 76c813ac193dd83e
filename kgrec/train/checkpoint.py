"""Resumable training checkpoints: everything the loop needs to continue as if it had never stopped.

A checkpoint (``checkpoint.pt`` in the run directory, written atomically after every
``train.checkpoint_every`` epochs) holds the stage and epoch, the model, optimizer and
task-weighting states, the early-stopping state (best state, score, epoch, patience counter), the
history so far, and every random generator the loop draws from (the negative sampler's numpy
generator, the loop's torch generator, torch's global generator). It is plain tensors, numbers and
strings, read back with ``weights_only=True``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kgrec.errors import InputError
from kgrec.io import load_tensors, save_tensors

__all__ = ["CHECKPOINT_NAME", "Checkpointer", "read_checkpoint"]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check a checkpoint file.

    Raises:
        InputError: when it is missing, unreadable (truncated, foreign) or of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no checkpoint to resume from (a run writes one after its first epoch)", path)
    try:
        state = load_tensors(path)
    except Exception as error:  # a truncated or foreign file: say so, never unpickle arbitrary objects
        raise InputError(f"cannot read the checkpoint: {' '.join(str(error).split())[:200]}", path) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"not a kgrec checkpoint of format {CHECKPOINT_FORMAT}", path)
    return state


@dataclass
class Checkpointer:
    """Writes checkpoints for one training run and holds the one it resumes from.

    Args:
        path: The checkpoint file (``<run>/checkpoint.pt``).
        every: Epochs between checkpoints (0: never).
        meta: Strings identifying the run (config and graph checksums, graph directory), saved in every
            checkpoint and compared on resume.
        resume: A checkpoint read with :func:`read_checkpoint` to continue from, or ``None``.
    """

    path: Path
    every: int = 1
    meta: dict[str, str] = field(default_factory=dict)
    resume: dict[str, Any] | None = None
    previous: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.resume is not None:
            theirs = {k: self.resume.get("meta", {}).get(k) for k in self.meta if k != "graph_dir"}
            ours = {k: v for k, v in self.meta.items() if k != "graph_dir"}
            if theirs != ours:
                changed = next(k for k in ours if theirs.get(k) != ours[k])
                raise InputError(
                    f"the checkpoint was written for another {changed.replace('_', ' ')}; train afresh", self.path
                )
            self.previous = json.loads(self.resume.get("previous", "{}"))

    def resumes(self, stage: str) -> dict[str, Any] | None:
        """The saved state of ``stage`` if the run stopped inside it, else ``None``."""
        if self.resume is not None and self.resume["stage"] == stage:
            return self.resume
        return None

    def skips(self, stage: str, order: tuple[str, ...]) -> bool:
        """Whether ``stage`` finished before the checkpoint's stage began."""
        return self.resume is not None and order.index(stage) < order.index(self.resume["stage"])

    def save(self, state: dict[str, Any]) -> None:
        """Write a checkpoint atomically (the previous one stays whole until the new one is)."""
        if self.every <= 0:
            return
        record = {
            **state,
            "format": CHECKPOINT_FORMAT,
            "meta": dict(self.meta),
            "previous": json.dumps(self.previous),
            "torch_rng": torch.get_rng_state(),
        }
        save_tensors(record, self.path)

    def due(self, epoch: int, last: bool) -> bool:
        """Whether a checkpoint is written after ``epoch`` (always after the last one of a stage)."""
        return self.every > 0 and (last or epoch % self.every == 0)
