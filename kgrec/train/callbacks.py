"""What happens around the training loop, one behaviour per callback: early stopping, checkpoints, progress, trackers.

:func:`~kgrec.train.loop.fit` runs the optimisation steps and calls each callback at the start, after every
epoch and at the end, handing it the :class:`TrainingState`; a callback reads and changes that state
(records a validation score in the epoch's history row, asks to stop, restores a checkpoint). A new
behaviour is a new callback, as with PyKEEN's ``TrainingCallback``. Callbacks run in the order given,
except :class:`Checkpointing`: it restores before the others start and saves after the others have
finished each epoch, so a checkpoint holds the epoch as they left it.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from kgrec.config import TrainConfig
from kgrec.errors import DivergedError
from kgrec.logs import bars_wanted, stage_line
from kgrec.models import RecommenderNetwork, TaskWeighting
from kgrec.train.checkpoint import Checkpointer
from kgrec.train.sampling import NegativeSampler

__all__ = [
    "Checkpointing",
    "EarlyStopping",
    "EpochTracking",
    "FitResult",
    "Progress",
    "TrainingCallback",
    "TrainingState",
]


@dataclass
class FitResult:
    """What training produced: the best state (by validation), the per-epoch history, and timings."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_score: float
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds_to_best: float = 0.0
    seconds: float = 0.0
    seconds_per_epoch: float = 0.0


@dataclass
class TrainingState:
    """The loop's state as callbacks see it; they may change ``result``, ``stale``, ``first_epoch`` and ``stop``.

    Attributes:
        model, optimizer, weighting, sampler, generator: What one epoch trains and draws from.
        stage: ``backbone``, ``side``, ``joint`` or ``update`` (written into the history rows).
        max_epochs: The last epoch this call may run.
        result: The best state so far, the history and timings; returned by ``fit``.
        epoch: The epoch that just ended (0 before the first).
        first_epoch: The first epoch to run (a resumed checkpoint moves it).
        stale: Validations since the last improvement.
        started: ``time.perf_counter()`` at the start, moved back by the time a resumed run had spent.
        stop: Set by a callback to end training after this epoch.
    """

    model: RecommenderNetwork
    optimizer: torch.optim.Optimizer
    weighting: TaskWeighting
    sampler: NegativeSampler
    generator: torch.Generator
    stage: str
    max_epochs: int
    result: FitResult
    epoch: int = 0
    first_epoch: int = 1
    stale: int = 0
    started: float = field(default_factory=time.perf_counter)
    stop: bool = False

    @property
    def elapsed(self) -> float:
        """Seconds of training so far (a resumed run's earlier time included)."""
        return time.perf_counter() - self.started

    @property
    def last(self) -> bool:
        """Whether the epoch that just ended is the last one (the cap reached or a stop asked for)."""
        return self.stop or self.epoch >= self.max_epochs


class TrainingCallback:
    """Hooks around :func:`~kgrec.train.loop.fit`; each does nothing unless a subclass overrides it."""

    def on_fit_start(self, state: TrainingState) -> None:
        """Before the first epoch (after the optimizer exists): restore a checkpoint, ..."""

    def on_epoch_end(self, state: TrainingState, row: dict[str, Any]) -> None:
        """After each epoch; ``row`` is the epoch's history row (stage, epoch, loss, seconds), still open to additions."""

    def on_fit_end(self, state: TrainingState) -> None:
        """After the last epoch, also when training stopped by an exception."""


class EarlyStopping(TrainingCallback):
    """Validate every ``eval_every`` epochs (and at the last), keep the best state, stop after ``patience`` stale checks.

    Args:
        validate: The selection metric (higher is better) of the model in eval mode.
        eval_every: Epochs between validations.
        patience: Validations without improvement before training stops.
    """

    def __init__(
        self, validate: Callable[[RecommenderNetwork], float], eval_every: int = 1, patience: int = 10
    ) -> None:
        self.validate, self.eval_every, self.patience = validate, eval_every, patience

    def on_epoch_end(self, state: TrainingState, row: dict[str, Any]) -> None:
        """Validate every ``eval_every`` epochs (and at the last); keep the best state; stop after ``patience``."""
        if state.epoch % self.eval_every and state.epoch != state.max_epochs:
            return
        state.model.eval()
        try:
            score = self.validate(state.model)
        except DivergedError:  # finite but huge parameters overflow in the scores: say where, as the loop does
            raise diverged(
                state.stage, state.epoch, "the validation scores are not finite", state.optimizer.param_groups[0]["lr"]
            ) from None
        row["valid"] = score
        result = state.result
        if score > result.best_score:
            result.best_score, result.best_epoch, state.stale = score, state.epoch, 0
            result.best_state = copy.deepcopy(state.model.training_state())
            result.seconds_to_best = state.elapsed
        else:
            state.stale += 1
        if state.stale >= self.patience:
            state.stop = True

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(eval_every={self.eval_every}, patience={self.patience})"


class Checkpointing(TrainingCallback):
    """Continue from ``checkpoint`` when it holds this stage, and write one after the epochs it says are due.

    A resumed run draws the same batches and negatives and ends with the same weights as one that never
    stopped: the checkpoint holds the model, optimizer and task-weight states, the early-stopping state, the
    history and every random generator the loop draws from.
    """

    def __init__(self, checkpoint: Checkpointer) -> None:
        self.checkpoint = checkpoint

    def on_fit_start(self, state: TrainingState) -> None:
        """Restore the stage's checkpoint, when there is one, before the first epoch."""
        saved = self.checkpoint.resumes(state.stage)
        if saved is None:
            return
        state.model.load_training_state(saved["model"])
        state.optimizer.load_state_dict(saved["optimizer"])
        state.weighting.load_state_dict(saved["weighting"])
        state.result = FitResult(
            saved["best_state"],
            saved["best_epoch"],
            saved["best_score"],
            json.loads(saved["history"]),
            saved["seconds_to_best"],
        )
        state.stale, state.first_epoch = saved["stale"], saved["epoch"] + 1
        state.stop = bool(saved.get("stop", False))  # the stage had ended by early stopping
        state.sampler.set_state(json.loads(saved["sampler"]))
        state.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        state.started -= saved["seconds"]

    def on_epoch_end(self, state: TrainingState, row: dict[str, Any]) -> None:
        """Write the checkpoint when one is due."""
        if not self.checkpoint.due(state.epoch, state.last):
            return
        result = state.result
        self.checkpoint.save(
            {
                "stage": state.stage,
                "epoch": state.epoch,
                "model": state.model.training_state(),
                "optimizer": state.optimizer.state_dict(),
                "weighting": state.weighting.state_dict(),
                "best_state": result.best_state,
                "best_score": result.best_score,
                "best_epoch": result.best_epoch,
                "stale": state.stale,
                "seconds_to_best": result.seconds_to_best,
                "seconds": state.elapsed,
                "stop": state.stop,
                "history": json.dumps(result.history),
                "sampler": json.dumps(state.sampler.state()),
                "generator": state.generator.get_state(),
            }
        )


_DEFAULT_LR = TrainConfig.model_fields["lr"].default


def diverged(stage: str, epoch: int, what: str, lr: float) -> DivergedError:
    """The one-line error of a run whose loss, parameters or scores stopped being finite, with a smaller rate to try."""
    smaller = _DEFAULT_LR if lr > _DEFAULT_LR else lr / 10
    return DivergedError(
        f"training diverged in the {stage} stage at epoch {epoch}: {what}; nothing is saved from it. "
        f"Try a smaller learning rate (now {lr:g}): train.lr={smaller:g}"
    )


class Progress(TrainingCallback):
    """A tqdm bar over the epochs with the loss, the last validation score and the best; where stderr is not a
    terminal (a log file), one line when the stage ends instead."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def on_fit_start(self, state: TrainingState) -> None:
        """Open the bar for the epochs left (fewer for a resumed run)."""
        from tqdm.auto import tqdm

        # fit restores a checkpoint before the other callbacks start, so a resumed run's first epoch is known here.
        total = max(0, state.max_epochs - state.first_epoch + 1)
        self.bar = tqdm(total=total, desc=f"train ({state.stage})", unit="epoch", disable=not bars_wanted(self.quiet))

    def on_epoch_end(self, state: TrainingState, row: dict[str, Any]) -> None:
        """Advance the bar and show the loss and validation scores."""
        self.bar.update(1)
        if "valid" in row:
            self.bar.set_postfix(
                loss=f"{row['loss']:.4f}", valid=f"{row['valid']:.4f}", best=f"{state.result.best_score:.4f}"
            )

    def on_fit_end(self, state: TrainingState) -> None:
        """Close the bar; one line for the stage."""
        if self.bar is not None:
            self.bar.close()
        result = state.result
        best = f", best validation {result.best_score:.4f} (epoch {result.best_epoch})" if result.best_epoch else ""
        stage_line(self.quiet, f"train ({state.stage}): {len(result.history)} epochs in {state.elapsed:.0f} s{best}")


class EpochTracking(TrainingCallback):
    """Hand each finished history row to ``log`` (an experiment tracker, live)."""

    def __init__(self, log: Callable[[dict[str, Any]], None]) -> None:
        self.log = log

    def on_epoch_end(self, state: TrainingState, row: dict[str, Any]) -> None:
        """Hand the row to the log."""
        self.log(row)
