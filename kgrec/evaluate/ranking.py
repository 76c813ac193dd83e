"""Full-ranking evaluation: every user against every item, known interactions masked, in user batches."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from kgrec.errors import DivergedError, InputError
from kgrec.evaluate.metrics import auc, coverage, intra_list_diversity, topk_contributions, topk_metrics

__all__ = ["EvaluationResult", "evaluate_blends", "evaluate_ranking", "interaction_matrix"]


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics averaged over users with at least one relevant item (``"ndcg@20"`` keys), and how long it took.

    ``per_user``: one row per ranked user (column ``row``, the row of ``truth``) with each user's @K
    metrics and AUC (NaN where undefined), for paired significance tests (``kgrec compare``);
    ``None`` for a ``topk_only`` evaluation.
    """

    metrics: dict[str, float]
    num_users: int
    seconds: float
    per_user: pd.DataFrame | None = field(default=None, repr=False, compare=False)


def interaction_matrix(users: np.ndarray, items: np.ndarray, num_users: int, num_items: int) -> sp.csr_matrix:
    """A ``(num_users, num_items)`` 0/1 CSR matrix of the given pairs."""
    data = np.ones(len(users), dtype=np.bool_)
    matrix = sp.csr_matrix((data, (users, items)), shape=(num_users, num_items), dtype=np.bool_)
    matrix.sum_duplicates()
    return matrix


# Rows per batch are capped so that one (rows, items) float32 score matrix stays within 32 MiB on CPU:
# glibc's malloc maps larger blocks fresh from the kernel for every batch and each new page faults (at
# Alibaba-iFashion's 30,040 items, 512-user batches spent 40% of an evaluation in the kernel; 256 do not).
CPU_SCORES_BYTES = 32 * 2**20


def _rows_per_batch(batch_size: int, num_items: int, device: torch.device) -> int:
    if device.type != "cpu":  # CUDA's caching allocator reuses its blocks
        return batch_size
    return max(1, min(batch_size, CPU_SCORES_BYTES // (4 * max(1, num_items))))


def _dense(matrix: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(matrix[rows].toarray()).to(device)


def _ranked_users(
    truth: sp.csr_matrix, candidates: np.ndarray | None, device: torch.device, tie_seed: int
) -> tuple[sp.csr_matrix, np.ndarray, torch.Tensor | None, torch.Tensor]:
    """What a full ranking needs before its first batch: ``(truth, users, not_candidate, order)``.

    ``truth`` counts relevant items among the candidates only; ``users`` are those with at least one.

    Raises:
        InputError: when no user has a relevant item to rank (an empty split, or no candidate among it).
    """
    not_candidate = None
    if candidates is not None:
        candidates = np.asarray(candidates, dtype=bool)
        truth = sp.csr_matrix(truth.multiply(candidates[None, :]))  # relevance counts among candidates only
        truth.eliminate_zeros()
        not_candidate = torch.from_numpy(~candidates).to(device)
    users = np.flatnonzero(truth.getnnz(axis=1) > 0)
    if not len(users):  # a mean over no users is no metric; never report it as 0
        raise InputError("no user has a relevant item among the ranked candidates: there is nothing to evaluate")
    # Ties are broken in one fixed random order, not by item index: where a model gives many items the
    # same score (items it knows nothing about), index order would rank them by however the ids were
    # assigned (for MovieLens, roughly by age and popularity) and reward the model for it.
    order = torch.randperm(truth.shape[1], generator=torch.Generator().manual_seed(tie_seed)).to(device)
    return truth, users, not_candidate, order


def _batch_masks(
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix,
    rows: np.ndarray,
    not_candidate: torch.Tensor | None,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(relevant, excluded)`` ``(B, I)`` masks of a batch of users."""
    relevant, excluded = _dense(truth, rows, device), _dense(exclude, rows, device)
    excluded &= ~relevant  # a relevant item is always a candidate, whatever the exclusion says
    if not_candidate is not None:
        excluded |= not_candidate  # (I,) broadcasts over the batch
    return relevant, excluded


def _num_relevant(truth: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """``(B,)`` relevant items of each row, from the CSR matrix (summing the dense bool mask costs a tenth of a second a batch)."""
    return torch.from_numpy(truth.getnnz(axis=1)[rows].astype(np.float32)).to(device)


def _finite(scores: torch.Tensor) -> torch.Tensor:
    """``scores`` unless one is NaN or +inf (-inf is how a scorer hides an item): metrics of a diverged model's
    scores are noise that looks like a result."""
    highest = scores.max() if scores.numel() else scores.new_zeros(())  # NaN if any is NaN: one pass for both checks
    if bool(torch.isnan(highest)) or bool(torch.isposinf(highest)):
        raise DivergedError(
            "the model's scores are not finite (NaN or infinite): it diverged, and no metrics are computed "
            "from it; train again with a smaller train.lr"
        )
    return scores


def _top(scores: torch.Tensor, excluded: torch.Tensor, order: torch.Tensor, k: int) -> torch.Tensor:
    """``(B, k)`` best item indices, never an excluded one, ties in the fixed random ``order``."""
    return _top_masked(scores.masked_fill(excluded, float("-inf")), order, k)


def _top_masked(masked: torch.Tensor, order: torch.Tensor, k: int) -> torch.Tensor:
    """``(B, k)`` indices of the highest ``masked`` scores (excluded items already -inf), ties in ``order``.

    What ``order[masked[:, order].topk(k)]`` gives (topk keeps the first of equals), without shuffling
    every row's columns, which costs several times the topk itself: where a row's best ``k + 1``
    scores are all distinct, its top ``k`` and their order are the same in any column order; only the
    rows with a tie among them are shuffled.
    """
    k = min(k, masked.size(1))
    values, indices = masked.topk(min(k + 1, masked.size(1)), dim=1)
    top = indices[:, :k].contiguous()
    tied = (values[:, 1:] == values[:, :-1]).any(1).nonzero().squeeze(1)
    if len(tied):
        top[tied] = order[masked[tied][:, order].topk(k, dim=1).indices]
    return top


@torch.no_grad()
def evaluate_blends(
    score_parts: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix,
    weights: list[float],
    ks: tuple[int, ...] = (10, 20),
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    candidates: np.ndarray | None = None,
    tie_seed: int = 0,
    per_user: str | None = None,
    per_item: bool = False,
) -> list[dict[str, Any]]:
    """The @K metrics of ``learned + w * linear`` for every ``w`` in ``weights``, in one pass over the users.

    Exactly what :func:`evaluate_ranking` with ``topk_only=True`` gives for each weight (same users,
    exclusions, candidates and tie order), but each batch's two score parts are computed once: on a
    large catalog the linear part (a sparse product with an items x items matrix) is most of the cost.
    With ``per_user`` (a metric name), each weight's dict also holds ``"per_user"``: that metric's
    ``(users,)`` values, for paired comparisons between weights; with ``per_item`` as well, ``"per_item"``:
    its totals over users for each item relevant to some ranked user, in index order
    (:func:`~kgrec.evaluate.metrics.topk_contributions`; they sum to ``per_user``'s total), for
    comparisons that treat the held-out items as the sample.
    """
    if per_item and per_user is None:
        raise ValueError("per_item needs per_user (the metric whose contributions are summed by item)")
    if any(weight < 0.0 for weight in weights):  # the masking below relies on it
        raise ValueError(f"blend weights are >= 0 (got {min(weights)})")
    device = torch.device(device)
    truth, users, not_candidate, order = _ranked_users(truth, candidates, device, tie_seed)
    batch_size = _rows_per_batch(batch_size, truth.shape[1], device)
    sums: list[dict[str, float]] = [{} for _ in weights]
    # Allocated once, as in evaluate_ranking: per-batch copies kept to the end fragment the heap.
    kept = [np.empty(len(users)) for _ in weights] if per_user is not None else []
    item_totals = [torch.zeros(truth.shape[1], dtype=torch.float64, device=device) for _ in weights] if per_item else []
    for start in range(0, len(users), batch_size):
        rows = users[start : start + batch_size]
        learned, linear = (_finite(part) for part in score_parts(torch.from_numpy(rows).to(device)))
        relevant, excluded = _batch_masks(truth, exclude, rows, not_candidate, device)
        num_relevant = _num_relevant(truth, rows, device)
        # Both parts are masked once, not once per weight: an excluded item's learned score is -inf and its
        # linear one 0, so every blend of them is -inf.
        learned = learned.float().masked_fill(excluded, float("-inf"))
        linear = linear.float().masked_fill(excluded, 0.0)
        blended = torch.empty_like(learned)
        for index, (totals, weight) in enumerate(zip(sums, weights)):
            scores = torch.mul(linear, weight, out=blended).add_(learned) if weight != 0.0 else learned
            top = _top_masked(scores, order, max(ks))
            hits = relevant.gather(1, top)
            if per_item and per_user is not None:
                contributions = topk_contributions(hits, num_relevant, per_user)
                item_totals[index].index_add_(
                    0, top[:, : contributions.size(1)].reshape(-1), contributions.reshape(-1).double()
                )
            for name, values in topk_metrics(hits, num_relevant, ks).items():
                totals[name] = totals.get(name, 0.0) + float(values.sum())
                if name == per_user:
                    kept[index][start : start + len(rows)] = values.double().cpu().numpy()
    results: list[dict[str, Any]] = [
        {name: total / len(users) for name, total in sorted(totals.items())} for totals in sums
    ]
    if per_user is not None:
        if per_user not in results[0]:
            raise ValueError(f"unknown metric '{per_user}' (known: {', '.join(results[0])})")
        for result, values_kept in zip(results, kept):
            result["per_user"] = values_kept
        relevant_items = torch.from_numpy(np.flatnonzero(truth.getnnz(axis=0) > 0)).to(device)
        for result, totals_by_item in zip(results, item_totals):
            result["per_item"] = totals_by_item[relevant_items].cpu().numpy()
    return results


@torch.no_grad()
def evaluate_ranking(
    score_users: Callable[[torch.Tensor], torch.Tensor],
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix,
    ks: tuple[int, ...] = (10, 20),
    batch_size: int = 512,
    item_features: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
    candidates: np.ndarray | None = None,
    tie_seed: int = 0,
    topk_only: bool = False,
) -> EvaluationResult:
    """Rank all items for every user with relevant items and average the metrics.

    Args:
        score_users: Maps ``user_index (B,)`` to scores ``(B, num_items)``.
        truth: ``(U, I)`` relevant pairs (e.g. the test split).
        exclude: ``(U, I)`` pairs never ranked (training items, plus validation ones at test time).
        ks: Cut-offs.
        batch_size: Users per batch (memory is ``batch_size * num_items`` scores); on CPU at most
            :data:`CPU_SCORES_BYTES` of float32 scores a batch.
        item_features: ``(I, F)`` multi-hot features for intra-list diversity, or None to skip it.
        device: Where the scoring happens.
        candidates: ``(I,)`` booleans: rank only these items (e.g. the items held out of training,
            for a cold-start benchmark); None ranks all items.
        tie_seed: Seed of the fixed random order that breaks ties between equal scores.
        topk_only: Only the @K metrics (what validation during training needs): AUC compares each
            relevant item with the user's whole catalogue and costs about twice the ranking itself.

    Returns:
        Recall/NDCG/MRR/Hit/Precision@K, AUC, coverage@K and diversity@K.

    Raises:
        InputError: when no user has a relevant item to rank (an empty split, or no candidate among it).
    """
    started = time.perf_counter()
    device = torch.device(device)
    truth, users, not_candidate, order = _ranked_users(truth, candidates, device, tie_seed)
    batch_size = _rows_per_batch(batch_size, truth.shape[1], device)
    sums: dict[str, float] = {}
    auc_sum, auc_count = 0.0, 0
    # Per-user results go into arrays allocated once: small tensors kept from every batch land in the
    # holes the batch's large temporaries leave, so those no longer fit there and the heap grows each
    # batch (on Alibaba-iFashion, 8 GB held by the allocator after one validation pass).
    per_user: defaultdict[str, np.ndarray] = defaultdict(lambda: np.empty(len(users)))
    top_all: torch.Tensor | None = None
    for start in range(0, len(users), batch_size):
        rows = users[start : start + batch_size]
        part = slice(start, start + len(rows))
        scores = _finite(score_users(torch.from_numpy(rows).to(device)).float())  # (B, I)
        relevant, excluded = _batch_masks(truth, exclude, rows, not_candidate, device)
        top = _top(scores, excluded, order, max(ks))  # (B, K) item indices
        hits = relevant.gather(1, top)
        for name, values in topk_metrics(hits, _num_relevant(truth, rows, device), ks).items():
            sums[name] = sums.get(name, 0.0) + float(values.sum())
            if not topk_only:
                per_user[name][part] = values.double().cpu().numpy()
        if topk_only:
            continue
        if top_all is None:  # K columns, or fewer in a catalogue smaller than K
            top_all = torch.empty(len(users), top.size(1), dtype=torch.long)
        per_user_auc = auc(scores, relevant, excluded)
        per_user["auc"][part] = per_user_auc.double().cpu().numpy()
        valid = ~torch.isnan(per_user_auc)
        auc_sum += float(per_user_auc[valid].sum())
        auc_count += int(valid.sum())
        top_all[part] = top.cpu()
    metrics = {name: total / max(1, len(users)) for name, total in sorted(sums.items())}
    if not topk_only and auc_count:  # AUC needs a user with both relevant and irrelevant candidates
        metrics["auc"] = auc_sum / auc_count
    if top_all is not None:
        for k in ks:
            metrics[f"coverage@{k}"] = coverage(top_all[:, :k], truth.shape[1])
            if item_features is not None and k >= 2 and item_features.size(1) > 0:
                metrics[f"diversity@{k}"] = float(intra_list_diversity(top_all[:, :k], item_features).mean())
    table = None
    if not topk_only:
        table = pd.DataFrame({"row": users, **dict(sorted(per_user.items()))})
    return EvaluationResult(metrics, len(users), time.perf_counter() - started, table)
