"""The training schedule: backbone, then KG/text on top (or both jointly), then the EASE blend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from kgrec.config import TrainConfig
from kgrec.models import PropagationGraph, RecommenderNetwork
from kgrec.train.blend import choose_blend
from kgrec.train.callbacks import Checkpointing, EarlyStopping, EpochTracking, Progress, TrainingCallback
from kgrec.train.checkpoint import Checkpointer
from kgrec.train.distributed import Distributed
from kgrec.train.loop import FitResult, fit
from kgrec.train.objectives import TaskInputs
from kgrec.train.sampling import NegativeSampler

__all__ = ["ScheduleResult", "run_schedule", "training_callbacks"]


@dataclass
class ScheduleResult:
    """History of every epoch (with its stage), timings, the best epoch and the chosen blend."""

    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    seconds_to_best: float = 0.0
    best_epoch: int = 0
    best_score: float = float("nan")
    blend: dict[str, float] | None = None


def training_callbacks(
    config: TrainConfig,
    validate: Callable[[RecommenderNetwork], float] | None,
    quiet: bool = False,
    checkpoint: Checkpointer | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    extra: Sequence[TrainingCallback] = (),
) -> Callable[[], list[TrainingCallback]]:
    """A fresh set of the usual callbacks for each :func:`~kgrec.train.loop.fit` call: early stopping on ``validate``
    (if any), a tracker's per-epoch log, a progress bar unless ``quiet``, the caller's ``extra`` ones (the same
    instances in every call), a checkpoint writer."""

    def make() -> list[TrainingCallback]:
        callbacks: list[TrainingCallback] = []
        if validate is not None:
            callbacks.append(EarlyStopping(validate, config.eval_every, config.patience))
        if on_epoch is not None:
            callbacks.append(EpochTracking(on_epoch))
        callbacks.append(Progress(quiet))
        callbacks.extend(extra)
        if checkpoint is not None:
            callbacks.append(Checkpointing(checkpoint))
        return callbacks

    return make


def run_schedule(
    model: RecommenderNetwork,
    prop_graph: PropagationGraph,
    sampler: NegativeSampler,
    config: TrainConfig,
    *,
    validate: Callable[[RecommenderNetwork], float] | None,
    device: torch.device,
    ease_l2: tuple[float, ...] = (250.0,),
    quiet: bool = False,
    task_inputs: TaskInputs | None = None,
    checkpoint: Checkpointer | None = None,
    distributed: Distributed | None = None,
    validate_blends: Callable[[RecommenderNetwork, list[float]], list[Any]] | None = None,
    ease_kg_weights: tuple[float, ...] = (0.0,),
    ease_text_weights: tuple[float, ...] = (0.0,),
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    blend_rule: str = "best",
    callbacks: Sequence[TrainingCallback] = (),
) -> ScheduleResult:
    """Train ``model`` in place and leave it in its best state (by validation).

    ``staged``: the backbone first, with KG and text silent (their outputs start at zero); then the
    KG/text parameters on top of the best backbone, kept only if validation improves, so side
    information can add to collaborative filtering but never replace it. ``joint``: all at once.
    Last, an EASE component (if the model has one) is blended in with a weight chosen on validation
    (``blend_rule``, see :func:`~kgrec.train.blend.choose_blend`). ``callbacks`` join the usual ones
    (:func:`training_callbacks`) in every stage.
    """
    make_callbacks = training_callbacks(config, validate, quiet, checkpoint, on_epoch, callbacks)
    if config.schedule == "joint":
        fitted = fit(
            model,
            prop_graph,
            sampler,
            config,
            device=device,
            callbacks=make_callbacks(),
            task_inputs=task_inputs,
            distributed=distributed,
        )
        result = ScheduleResult(fitted.history, fitted.seconds, fitted.seconds_to_best)
    else:
        if checkpoint is not None and checkpoint.skips("backbone", ("backbone", "side")):
            # Resuming inside the side stage: the backbone's outcome is in the checkpoint.
            done = checkpoint.previous
            fitted = FitResult({}, 0, done["best_score"], done["history"], done["seconds_to_best"], done["seconds"])
        else:
            fitted = fit(
                model,
                prop_graph,
                sampler,
                config,
                device=device,
                callbacks=make_callbacks(),
                parameters=model.backbone_parameters(),
                stage="backbone",
                task_inputs=task_inputs,
                distributed=distributed,
            )
        result = ScheduleResult(fitted.history, fitted.seconds, fitted.seconds_to_best)
        side = model.side_parameters()
        if side and config.side_epochs > 0:
            if fitted.best_state:
                model.load_training_state(fitted.best_state)
            if checkpoint is not None:
                checkpoint.previous = {
                    "best_score": fitted.best_score,
                    "history": fitted.history,
                    "seconds": fitted.seconds,
                    "seconds_to_best": fitted.seconds_to_best,
                }
            start = (fitted.best_score, fitted.best_state) if validate is not None else None
            second = fit(
                model,
                prop_graph,
                sampler,
                config,
                device=device,
                callbacks=make_callbacks(),
                parameters=side,
                epochs=config.side_epochs,
                start=start,
                stage="side",
                task_inputs=task_inputs,
                distributed=distributed,
            )
            if second.best_epoch > 0 or validate is None:
                result.seconds_to_best = result.seconds + second.seconds_to_best
            offset = len(result.history)
            result.history += [{**row, "epoch": row["epoch"] + offset} for row in second.history]
            result.seconds += second.seconds
            fitted = second
    model.load_training_state(fitted.best_state)
    model.eval()
    result.best_score = fitted.best_score
    result.best_epoch = next(
        (i + 1 for i, row in enumerate(result.history) if row.get("valid") == fitted.best_score), len(result.history)
    )
    if model.ease is not None:
        result.blend = choose_blend(
            model,
            prop_graph,
            l2_grid=ease_l2,
            validate=validate,
            baseline=fitted.best_score,
            validate_blends=validate_blends,
            kg_weights=ease_kg_weights,
            text_weights=ease_text_weights,
            rule=blend_rule,
        )
    return result
