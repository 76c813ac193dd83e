"""Metrics of the auxiliary tasks: rating errors (RMSE, MAE) and KG link prediction (PyKEEN's evaluator)."""

from __future__ import annotations

import logging

import torch

__all__ = ["rating_errors", "link_prediction"]


def rating_errors(predicted: torch.Tensor, actual: torch.Tensor) -> dict[str, float]:
    """``{"rmse", "mae"}`` of ``predicted (N,)`` against ``actual (N,)`` ratings."""
    if len(actual) == 0:
        return {}
    error = predicted.double().cpu() - actual.double().cpu()
    return {"rmse": float(error.pow(2).mean().sqrt()), "mae": float(error.abs().mean())}


@torch.no_grad()
def link_prediction(
    kg_model: torch.nn.Module, testing: torch.Tensor, training: torch.Tensor, batch_size: int = 256
) -> dict[str, float]:
    """Filtered rank-based link prediction of held-out ``testing (m, 3)`` triples, as PyKEEN's pipeline measures it.

    Both head and tail are predicted; known training triples are filtered out of the ranking.
    Returns ``mrr``, ``hits@1``, ``hits@10`` (PyKEEN's realistic ranks) and ``eval_triples``.
    """
    from pykeen.evaluation import RankBasedEvaluator

    if len(testing) == 0:
        return {}
    logging.getLogger("pykeen").setLevel(logging.WARNING)
    device = next(kg_model.parameters()).device
    was_training = kg_model.training
    kg_model.eval()
    try:
        result = RankBasedEvaluator().evaluate(
            kg_model,  # type: ignore[arg-type]  # a PyKEEN Model, typed as the nn.Module it is
            testing.to(device),
            batch_size=batch_size,
            use_tqdm=False,
            additional_filter_triples=[training.to(device)],
        )
    finally:
        kg_model.train(was_training)
    metrics = {
        name: float(result.get_metric(f"both.realistic.{metric}"))
        for name, metric in (("mrr", "inverse_harmonic_mean_rank"), ("hits@1", "hits_at_1"), ("hits@10", "hits_at_10"))
    }
    return {**metrics, "eval_triples": int(len(testing))}
