"""fit: the training loop — one objective or several (ranking with BPR, BCE or sampled softmax; rating; KG), AdamW,
full-graph or sampled-subgraph propagation per step. Early stopping, checkpoints, progress and trackers are
callbacks (:mod:`kgrec.train.callbacks`)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from kgrec.config import TrainConfig
from kgrec.models import PropagationGraph, RecommenderNetwork, TaskWeighting
from kgrec.train.callbacks import Checkpointing, EarlyStopping, FitResult, TrainingCallback, TrainingState, diverged
from kgrec.train.distributed import Distributed
from kgrec.train.objectives import Batch, TaskInputs, TrainingStep
from kgrec.train.sampling import NegativeSampler

__all__ = ["FitResult", "fit"]


def fit(
    model: RecommenderNetwork,
    prop_graph: PropagationGraph,
    sampler: NegativeSampler,
    config: TrainConfig,
    *,
    device: torch.device,
    callbacks: Sequence[TrainingCallback] = (),
    parameters: list[torch.nn.Parameter] | None = None,
    epochs: int | None = None,
    start: tuple[float, dict[str, torch.Tensor]] | None = None,
    stage: str = "joint",
    task_inputs: TaskInputs | None = None,
    distributed: Distributed | None = None,
) -> FitResult:
    """Train ``model`` (or only ``parameters`` of it) for up to ``epochs``; the callbacks decide the rest.

    Without an :class:`~kgrec.train.callbacks.EarlyStopping` callback the last state is the result;
    with one, the state with the best validation score. Progress bars, checkpoints and trackers are
    callbacks too (:mod:`kgrec.train.callbacks`).

    Args:
        model: The recommender, on ``device``.
        prop_graph: Propagation inputs (training interactions and KG), on ``device``.
        sampler: Training pairs and negative sampling.
        config: Epochs, batch size, learning rate, loss, tasks.
        device: Where training runs; CUDA uses bfloat16 autocast when ``config.mixed_precision``.
        callbacks: Run at the start, after every epoch and at the end (see :class:`~kgrec.train.callbacks.TrainingCallback`).
        parameters: Train only these; the others are frozen for this call. Default: all.
        epochs: Maximum epochs; default ``config.epochs``.
        start: ``(score, state)`` to beat: a later stage keeps the earlier state unless validation improves.
        stage: Name written into the history rows.
        task_inputs: Context tokens, ratings and KG triples for the tasks in ``config.tasks``.
        distributed: This process's place in a data-parallel group (torchrun); each process trains
            on its slice of every batch and DistributedDataParallel averages the gradients.
    """
    task_inputs = task_inputs or TaskInputs()
    trained = list(model.parameters()) if parameters is None else parameters
    chosen = {id(p) for p in trained}
    trains_kg = model.kg_model is not None and any(id(p) in chosen for p in model.kg_model.parameters())
    active = tuple(t for t in config.tasks if t != "kg" or trains_kg)
    if not active:  # e.g. tasks=kg alone in a stage that does not train the KG model
        return FitResult(
            copy.deepcopy(model.training_state() if start is None else start[1]),
            0,
            float("-inf") if start is None else start[0],
        )
    frozen = [p for p in model.parameters() if id(p) not in chosen and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    weighting = TaskWeighting(
        active,
        {str(task): weight for task, weight in config.task_weights.items()},
        learned=config.task_weighting == "uncertainty",
    ).to(device)
    groups: list[dict[str, Any]] = [{"params": trained}]
    if weighting.learned:
        groups.append({"params": [weighting.log_variance], "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    autocast = device.type == "cuda" and config.mixed_precision
    best = (float("-inf"), model.training_state()) if start is None else start
    state = TrainingState(
        model,
        optimizer,
        weighting,
        sampler,
        torch.Generator().manual_seed(config.seed),
        stage,
        config.epochs if epochs is None else epochs,
        FitResult(copy.deepcopy(best[1]), 0, best[0]),
    )
    # A checkpoint is restored before the other callbacks start, and written once they have seen the epoch.
    restore = [c for c in callbacks if isinstance(c, Checkpointing)]
    ordered = [c for c in callbacks if not isinstance(c, Checkpointing)] + restore
    try:
        for callback in restore + ordered[: len(ordered) - len(restore)]:
            callback.on_fit_start(state)
        distributed = distributed or Distributed()
        step = distributed.wrap(
            TrainingStep(
                model, weighting, task_inputs, config, state.generator, trains_kg, config.samples(len(sampler.users))
            ),
            device,
        )
        epoch = state.first_epoch
        while not state.stop and epoch <= state.max_epochs:
            losses = _train_epoch(state, step, prop_graph, config, device, distributed, autocast, trains_kg, epoch)
            _check_finite(trained, config, stage, epoch)
            state.epoch = epoch
            row: dict[str, Any] = {
                "stage": stage,
                "epoch": epoch,
                "loss": losses.pop("loss"),
                "seconds": state.elapsed,
                **losses,
            }
            state.result.history.append(row)
            for callback in ordered:
                callback.on_epoch_end(state, row)
            epoch += 1
    finally:  # the frozen parameters train again in later calls, even after an interruption
        for p in frozen:
            p.requires_grad_(True)
        for callback in ordered:
            callback.on_fit_end(state)
    result = state.result
    result.seconds = state.elapsed
    if not any(isinstance(c, EarlyStopping) for c in callbacks):
        result.best_state, result.best_epoch = copy.deepcopy(model.training_state()), len(result.history)
        result.seconds_to_best = result.seconds
    result.seconds_per_epoch = result.seconds / max(1, len(result.history))
    if not np.isfinite(result.best_score):
        result.best_score = float("nan")
    return result


def _train_epoch(
    state: TrainingState,
    step: torch.nn.Module,
    prop_graph: PropagationGraph,
    config: TrainConfig,
    device: torch.device,
    distributed: Distributed,
    autocast: bool,
    trains_kg: bool,
    epoch: int,
) -> dict[str, float]:
    """One pass over the training pairs; returns the epoch's mean loss (and each task's, and their weights)."""
    model, generator = state.model, state.generator
    model.train()
    total, batches = 0.0, 0
    task_totals: dict[str, float] = {}
    for users, positives, negatives, rows in state.sampler.epoch(config.batch_size, config.negatives):
        batch = Batch(*(torch.from_numpy(a).to(device) for a in (users, positives, negatives, rows)))
        drop = None
        if state.stage == "side" and config.item_dropout > 0:
            drop = (torch.rand(model.num_items, generator=generator) < config.item_dropout).to(device)
        text_items = None
        if state.stage == "side" and model.text_encoder is not None:
            text_items = torch.unique(torch.cat([batch.positives, batch.negatives.flatten()]))
        shard, scale = distributed.shard(batch)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss, losses = step(prop_graph, shard, drop, text_items, scale)
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        state.optimizer.step()
        if trains_kg and model.kg_model is not None:
            model.kg_model.post_parameter_update()  # type: ignore[operator]  # PyKEEN's constraints (e.g. TransE's unit-norm entities)
        step_loss = float(loss.detach())  # read after the step, as before: no extra device sync ahead of backward
        if not np.isfinite(step_loss):  # the run is discarded, so the step it took does not matter
            raise diverged(state.stage, epoch, f"the loss is {step_loss}", config.lr)
        total += step_loss
        for name, value in losses.items():
            task_totals[name] = task_totals.get(name, 0.0) + float(value.detach())
        batches += 1
    row = {"loss": total / max(1, batches)}
    if config.tasks != ("rank",):
        row.update({f"loss_{name}": value / max(1, batches) for name, value in task_totals.items()})
        row.update({f"weight_{name}": value for name, value in state.weighting.weights().items()})
    return row


def _check_finite(parameters: list[torch.nn.Parameter], config: TrainConfig, stage: str, epoch: int) -> None:
    """Stop on an infinite or NaN parameter: scores computed from it would be reported as results."""
    with torch.no_grad():
        if parameters and not bool(torch.stack([p.isfinite().all() for p in parameters]).all()):
            raise diverged(stage, epoch, "a parameter is no longer finite", config.lr)
