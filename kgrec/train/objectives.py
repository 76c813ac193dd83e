"""The training objectives on one batch: ranking, rating regression and the KG loss, over shared representations.

Each task reads what it needs from :class:`TaskInputs` (per training interaction: context tokens
and ratings; the KG's training triples). Which tasks run is ``train.tasks``; how their losses
combine is :class:`~kgrec.models.TaskWeighting`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from kgrec.config import TrainConfig
from kgrec.models import LOSSES, PropagationGraph, RecommenderNetwork, Representations, TaskWeighting
from kgrec.models.propagation import sampled_training_problem
from kgrec.models.subgraph import sample_subgraph

if TYPE_CHECKING:
    from pykeen.models import ERModel

__all__ = ["TaskInputs", "Batch", "TrainingStep", "task_losses"]


@dataclass
class TaskInputs:
    """What the tasks need besides the interactions themselves, on the training device.

    Attributes:
        context: ``(N, F)`` context tokens of each training interaction, or ``None``.
        context_dropout: Share of context fields hidden per example.
        ratings: ``(N,)`` rating of each training interaction, for the rating task.
        kg_training: ``(n, 3)`` KG triples the kg task trains on (the KGE held-out triples excluded).
    """

    context: torch.Tensor | None = None
    context_dropout: float = 0.0
    ratings: torch.Tensor | None = None
    kg_training: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.kg_sampler: Any = None  # pykeen's BasicNegativeSampler
        if self.kg_training is not None:
            from pykeen.sampling import BasicNegativeSampler

            # Unfiltered, as PyKEEN's default: a corrupted triple that happens to be true stays a negative.
            self.kg_sampler = BasicNegativeSampler(mapped_triples=self.kg_training, num_negs_per_pos=1)


@dataclass
class Batch:
    """One step's interactions: ``users (B,)``, ``positives (B,)``, ``negatives (B, n)``, ``rows (B,)``."""

    users: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor
    rows: torch.Tensor


def task_losses(
    model: RecommenderNetwork,
    reps: Representations,
    batch: Batch,
    task_inputs: TaskInputs,
    config: TrainConfig,
    generator: torch.Generator,
    trains_kg: bool,
) -> dict[str, torch.Tensor]:
    """``{task: loss}`` for the tasks in ``config.tasks`` that have something to train in this call.

    The kg task runs only while the KG model's parameters are being trained (``trains_kg``).
    """
    losses: dict[str, torch.Tensor] = {}
    u, i, j = batch.users, batch.positives, batch.negatives
    context = None if task_inputs.context is None else task_inputs.context[batch.rows]
    user = model.user_vectors(reps, u, context, task_inputs.context_dropout, generator)  # (B, d)
    positive = model.scorer(user, reps.item[i])  # (B,)
    if "rank" in config.tasks:
        negative = model.scorer(user.unsqueeze(1).expand(-1, j.size(1), -1), reps.item[j])  # (B, n)
        loss = LOSSES[config.loss](positive.float(), negative.float())
        # LightGCN's penalty: the layer-0 embeddings of the batch, not every parameter.
        penalty = reps.user_base[u].pow(2).sum() + reps.item_base[i].pow(2).sum() + reps.item_base[j].pow(2).sum()
        losses["rank"] = loss + config.reg * penalty / len(u)
    if "rating" in config.tasks:
        assert model.rating is not None and task_inputs.ratings is not None, (
            "the rating task needs the rating head and ratings"
        )
        predicted = model.rating(u, i, positive.float())
        penalty = reps.user_base[u].pow(2).sum() + reps.item_base[i].pow(2).sum()
        losses["rating"] = F.mse_loss(predicted, task_inputs.ratings[batch.rows]) + config.reg * penalty / len(u)
    if "kg" in config.tasks and trains_kg:
        assert model.kg_model is not None
        losses["kg"] = kg_loss(model.kg_model, task_inputs, config.kg_batch_size, generator)  # type: ignore[arg-type]  # an ERModel
    return losses


def kg_loss(kg_model: ERModel, task_inputs: TaskInputs, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """PyKEEN's own sLCWA step on a random batch of training triples: its negative sampler, scores and loss."""
    triples = task_inputs.kg_training
    if triples is None or task_inputs.kg_sampler is None:
        raise ValueError("the kg task needs the KG's training triples in TaskInputs")
    pick = torch.randint(len(triples), (min(batch_size, len(triples)),), generator=generator).to(triples.device)
    positive = triples[pick]
    negative, _ = task_inputs.kg_sampler.sample(positive)  # (B, 1, 3)
    positive_scores = kg_model.score_hrt(positive)  # (B, 1)
    negative_scores = kg_model.score_hrt(negative.view(-1, 3)).view(len(positive), -1)
    loss = kg_model.loss.process_slcwa_scores(positive_scores, negative_scores, num_entities=kg_model.num_entities)
    return loss + kg_model.collect_regularization_term()


class TrainingStep(nn.Module):
    """One training step as a module (what DistributedDataParallel wraps): forward pass, task losses, combined loss.

    Args:
        model: The recommender being trained.
        weighting: How the task losses combine (its learned weights train with the model).
        task_inputs: Context tokens, ratings, KG triples.
        config: The training config.
        generator: The loop's seeded generator (dropout masks, KG batches).
        trains_kg: Whether the kg task runs in this stage.
        sampled: Propagate over each batch's sampled neighbourhood (``config.fanout``) instead of the whole graph.
    """

    def __init__(
        self,
        model: RecommenderNetwork,
        weighting: TaskWeighting,
        task_inputs: TaskInputs,
        config: TrainConfig,
        generator: torch.Generator,
        trains_kg: bool,
        sampled: bool = False,
    ) -> None:
        super().__init__()
        self.model, self.weighting = model, weighting
        self.task_inputs, self.config, self.generator, self.trains_kg = task_inputs, config, generator, trains_kg
        self.sampled = sampled
        if sampled and (
            problem := sampled_training_problem(config.tasks, repr(model.propagation), model.propagation.needs_whole_kg)
        ):
            raise ValueError(problem)

    def forward(
        self,
        prop_graph: PropagationGraph,
        batch: Batch,
        drop: torch.Tensor | None = None,
        text_items: torch.Tensor | None = None,
        scale: float = 1.0,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, {task: loss})`` of ``batch``; the combined loss is multiplied by ``scale`` (data-parallel slices)."""
        if self.sampled:
            reps, batch = self._sampled(prop_graph, batch, drop, text_items)
        else:
            reps = self.model(prop_graph, drop, text_items)
        losses = task_losses(self.model, reps, batch, self.task_inputs, self.config, self.generator, self.trains_kg)
        return self.weighting(losses) * scale, losses

    def _sampled(
        self, prop_graph: PropagationGraph, batch: Batch, drop: torch.Tensor | None, text_items: torch.Tensor | None
    ) -> tuple[Representations, Batch]:
        """Representations of the batch's sampled subgraph, and the batch re-indexed into it."""
        layers = max(1, len(self.model.propagation.convs))
        fanout = tuple(self.config.fanout[min(hop, len(self.config.fanout) - 1)] for hop in range(layers))
        offset = prop_graph.num_users
        seeds = torch.cat([batch.users, batch.positives + offset, batch.negatives.flatten() + offset])
        sub = sample_subgraph(prop_graph, seeds, fanout, self.generator)
        reps = self.model.forward_sampled(prop_graph, sub, drop, text_items)
        local = Batch(
            sub.local(batch.users),
            sub.local(batch.positives + offset) - sub.num_users,
            (sub.local(batch.negatives.flatten() + offset) - sub.num_users).view_as(batch.negatives),
            batch.rows,
        )
        return reps, local

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.model!r}, {self.weighting!r}, sampled={self.sampled})"
