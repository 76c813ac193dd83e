"""fit: the training loop (BPR/BCE, AdamW, full-graph propagation per step, early stopping on validation)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from kgrec.config import TrainConfig
from kgrec.models import LOSSES, KGRecommender, PropagationGraph
from kgrec.train.sampling import NegativeSampler

__all__ = ["FitResult", "fit", "resolve_device"]


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


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` without a GPU is an error, not a silent fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from kgrec.errors import InputError

        raise InputError("--device cuda was asked for but torch sees no CUDA device (torch.cuda.is_available() is False)")
    return torch.device(name)


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
    """
    from tqdm.auto import tqdm

    loss_fn = LOSSES[config.loss]
    trained = list(model.parameters()) if parameters is None else parameters
    chosen = {id(p) for p in trained}
    frozen = [p for p in model.parameters() if id(p) not in chosen and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    optimizer = torch.optim.AdamW(trained, lr=config.lr, weight_decay=config.weight_decay)
    autocast = device.type == "cuda" and config.mixed_precision
    if start is None:
        result = FitResult(copy.deepcopy(model.state_dict()), 0, float("-inf"))
    else:
        result = FitResult(copy.deepcopy(start[1]), 0, start[0])
    try:
        started = time.perf_counter()
        generator = torch.Generator().manual_seed(config.seed)
        stale = 0
        max_epochs = config.epochs if epochs is None else epochs
        bar = tqdm(range(1, max_epochs + 1), desc=f"train ({stage})", unit="epoch", disable=quiet)
        for epoch in bar:
            model.train()
            total, batches = 0.0, 0
            for users, positives, negatives in sampler.epoch(config.batch_size, config.negatives):
                u = torch.from_numpy(users).to(device)
                i = torch.from_numpy(positives).to(device)
                j = torch.from_numpy(negatives).to(device)  # (B, n)
                drop = None
                if stage == "side" and config.item_dropout > 0:
                    drop = torch.rand(model.num_items, generator=generator) < config.item_dropout
                    drop = drop.to(device)
                text_items = None
                if stage == "side" and model.text_encoder is not None:
                    text_items = torch.unique(torch.cat([i, j.flatten()]))
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                    reps = model(graph, drop, text_items)
                    user = reps.user[u]  # (B, d)
                    positive = model.scorer(user, reps.item[i])  # (B,)
                    negative = model.scorer(user.unsqueeze(1).expand(-1, j.size(1), -1), reps.item[j])  # (B, n)
                    loss = loss_fn(positive.float(), negative.float())
                    # LightGCN's penalty: the layer-0 embeddings of the batch, not every parameter.
                    penalty = reps.user_base[u].pow(2).sum() + reps.item_base[i].pow(2).sum() + reps.item_base[j].pow(2).sum()
                    loss = loss + config.reg * penalty / len(users)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
                batches += 1
            row = {"stage": stage, "epoch": epoch, "loss": total / max(1, batches), "seconds": time.perf_counter() - started}
            if validate is not None and (epoch % config.eval_every == 0 or epoch == max_epochs):
                model.eval()
                score = validate(model)
                row["valid"] = score
                if score > result.best_score:
                    result.best_score, result.best_epoch, stale = score, epoch, 0
                    result.best_state = copy.deepcopy(model.state_dict())
                    result.seconds_to_best = time.perf_counter() - started
                else:
                    stale += 1
                bar.set_postfix(loss=f"{row['loss']:.4f}", valid=f"{score:.4f}", best=f"{result.best_score:.4f}")
            result.history.append(row)
            if stale >= config.patience:
                break
    finally:  # the frozen parameters train again in later calls, even after an interruption
        for p in frozen:
            p.requires_grad_(True)
    result.seconds = time.perf_counter() - started
    if validate is None:
        result.best_state, result.best_epoch = copy.deepcopy(model.state_dict()), len(result.history)
        result.seconds_to_best = result.seconds
    result.seconds_per_epoch = result.seconds / max(1, len(result.history))
    if not np.isfinite(result.best_score):
        result.best_score = float("nan")
    return result
