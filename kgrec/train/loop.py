"""fit: the training loop — one objective or several (ranking with BPR, BCE or sampled softmax; rating; KG), AdamW,
full-graph or sampled-subgraph propagation per step, early stopping on validation, resumable checkpoints."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from kgrec.config import TrainConfig
from kgrec.models import KGRecommender, PropagationGraph, TaskWeighting
from kgrec.train.checkpoint import Checkpointer
from kgrec.train.sampling import NegativeSampler
from kgrec.train.distributed import Distributed
from kgrec.train.tasks import Batch, TaskInputs, TrainingStep

__all__ = ["FitResult", "fit"]


@dataclass
class FitResult:
    """What training produced: the best state (by validation), the per-epoch history, and timings."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_score: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds_to_best: float = 0.0
    seconds: float = 0.0
    seconds_per_epoch: float = 0.0


def fit(
    model: KGRecommender,
    graph: PropagationGraph,
    sampler: NegativeSampler,
    config: TrainConfig,
    validate: Callable[[KGRecommender], float] | None,
    device: torch.device,
    quiet: bool = False,
    parameters: list[torch.nn.Parameter] | None = None,
    epochs: int | None = None,
    start: tuple[float, dict[str, torch.Tensor]] | None = None,
    stage: str = "joint",
    inputs: TaskInputs | None = None,
    checkpoint: Checkpointer | None = None,
    distributed: Distributed | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> FitResult:
    """Train ``model`` (or only ``parameters`` of it) and keep the state with the best validation score.

    Args:
        model: The recommender, on ``device``.
        graph: Propagation inputs (training interactions and KG), on ``device``.
        sampler: Training pairs and negative sampling.
        config: Epochs, batch size, learning rate, loss, early stopping.
        validate: Returns the selection metric (higher is better) for the model in eval mode; with None,
            there is no early stopping and the last state is kept.
        device: Where training runs; CUDA uses bfloat16 autocast when ``config.mixed_precision``.
        quiet: No progress bar.
        parameters: Train only these; the others are frozen for this call. Default: all.
        epochs: Maximum epochs; default ``config.epochs``.
        start: ``(score, state)`` to beat: a later stage keeps the earlier state unless validation improves.
        stage: Name written into the history rows.
        inputs: Context tokens, ratings and KG triples for the tasks in ``config.tasks``.
        checkpoint: Writes a resumable checkpoint after epochs; if it holds a checkpoint of this
            stage, training continues from there exactly as if it had not stopped.
        distributed: This process's place in a data-parallel group (torchrun); each process trains
            on its slice of every batch and DistributedDataParallel averages the gradients.
    """
    from tqdm.auto import tqdm

    inputs = inputs or TaskInputs()
    trained = list(model.parameters()) if parameters is None else parameters
    chosen = {id(p) for p in trained}
    trains_kg = model.kg_model is not None and any(id(p) in chosen for p in model.kg_model.parameters())
    active = tuple(t for t in config.tasks if t != "kg" or trains_kg)
    if not active:  # e.g. tasks=kg alone in a stage that does not train the KG model
        return FitResult(copy.deepcopy(model.training_state() if start is None else start[1]), 0, float("-inf") if start is None else start[0])
    frozen = [p for p in model.parameters() if id(p) not in chosen and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    weighting = TaskWeighting(active, {str(task): weight for task, weight in config.task_weights.items()}, learned=config.task_weighting == "uncertainty").to(device)
    groups: list[dict[str, Any]] = [{"params": trained}]
    if weighting.learned:
        groups.append({"params": [weighting.log_variance], "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    autocast = device.type == "cuda" and config.mixed_precision
    if start is None:
        result = FitResult(copy.deepcopy(model.training_state()), 0, float("-inf"))
    else:
        result = FitResult(copy.deepcopy(start[1]), 0, start[0])
    try:
        started = time.perf_counter()
        generator = torch.Generator().manual_seed(config.seed)
        stale, first_epoch = 0, 1
        max_epochs = config.epochs if epochs is None else epochs
        saved = checkpoint.resumes(stage) if checkpoint is not None else None
        if saved is not None:
            model.load_training_state(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            weighting.load_state_dict(saved["weighting"])
            result = FitResult(saved["best_state"], saved["best_epoch"], saved["best_score"], json.loads(saved["history"]), saved["seconds_to_best"])
            stale, first_epoch = saved["stale"], saved["epoch"] + 1
            sampler.set_state(json.loads(saved["sampler"]))
            generator.set_state(saved["generator"])
            torch.set_rng_state(saved["torch_rng"])
            started -= saved["seconds"]
        distributed = distributed or Distributed()
        sampled = config.samples(len(sampler.users))
        step = distributed.wrap(TrainingStep(model, weighting, inputs, config, generator, trains_kg, sampled), device)
        epochs_left = range(first_epoch, max_epochs + 1) if stale < config.patience else range(0)
        bar = tqdm(epochs_left, desc=f"train ({stage})", unit="epoch", disable=quiet)
        for epoch in bar:
            model.train()
            total, batches = 0.0, 0
            task_totals: dict[str, float] = {}
            for users, positives, negatives, rows in sampler.epoch(config.batch_size, config.negatives):
                batch = Batch(*(torch.from_numpy(a).to(device) for a in (users, positives, negatives, rows)))
                drop = None
                if stage == "side" and config.item_dropout > 0:
                    drop = (torch.rand(model.num_items, generator=generator) < config.item_dropout).to(device)
                text_items = None
                if stage == "side" and model.text_encoder is not None:
                    text_items = torch.unique(torch.cat([batch.positives, batch.negatives.flatten()]))
                shard, scale = distributed.shard(batch)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                    loss, losses = step(graph, shard, drop, text_items, scale)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if trains_kg and model.kg_model is not None:
                    model.kg_model.post_parameter_update()  # type: ignore[operator]  # PyKEEN's constraints (e.g. TransE's unit-norm entities)
                total += float(loss.detach())
                for name, value in losses.items():
                    task_totals[name] = task_totals.get(name, 0.0) + float(value.detach())
                batches += 1
            row = {"stage": stage, "epoch": epoch, "loss": total / max(1, batches), "seconds": time.perf_counter() - started}
            if config.tasks != ("rank",):
                row.update({f"loss_{name}": value / max(1, batches) for name, value in task_totals.items()})
                row.update({f"weight_{name}": value for name, value in weighting.weights().items()})
            if validate is not None and (epoch % config.eval_every == 0 or epoch == max_epochs):
                model.eval()
                score = validate(model)
                row["valid"] = score
                if score > result.best_score:
                    result.best_score, result.best_epoch, stale = score, epoch, 0
                    result.best_state = copy.deepcopy(model.training_state())
                    result.seconds_to_best = time.perf_counter() - started
                else:
                    stale += 1
                bar.set_postfix(loss=f"{row['loss']:.4f}", valid=f"{score:.4f}", best=f"{result.best_score:.4f}")
            result.history.append(row)
            if on_epoch is not None:
                on_epoch(row)  # an experiment tracker, live
            last = stale >= config.patience or epoch == max_epochs
            if checkpoint is not None and checkpoint.due(epoch, last):
                checkpoint.save(
                    {
                        "stage": stage,
                        "epoch": epoch,
                        "model": model.training_state(),
                        "optimizer": optimizer.state_dict(),
                        "weighting": weighting.state_dict(),
                        "best_state": result.best_state,
                        "best_score": result.best_score,
                        "best_epoch": result.best_epoch,
                        "stale": stale,
                        "seconds_to_best": result.seconds_to_best,
                        "seconds": time.perf_counter() - started,
                        "history": json.dumps(result.history),
                        "sampler": json.dumps(sampler.state()),
                        "generator": generator.get_state(),
                    }
                )
            if stale >= config.patience:
                break
    finally:  # the frozen parameters train again in later calls, even after an interruption
        for p in frozen:
            p.requires_grad_(True)
    result.seconds = time.perf_counter() - started
    if validate is None:
        result.best_state, result.best_epoch = copy.deepcopy(model.training_state()), len(result.history)
        result.seconds_to_best = result.seconds
    result.seconds_per_epoch = result.seconds / max(1, len(result.history))
    if not np.isfinite(result.best_score):
        result.best_score = float("nan")
    return result
