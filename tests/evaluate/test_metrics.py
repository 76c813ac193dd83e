"""Metrics on hand-computed cases, and full ranking against a brute-force reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kgrec.errors import InputError
from kgrec.evaluate import (
    auc,
    coverage,
    evaluate_ranking,
    interaction_matrix,
    intra_list_diversity,
    topk_contributions,
    topk_metrics,
)


def test_topk_metrics_by_hand():
    # Ranks 1..4: relevant at ranks 2 and 4; 3 relevant items in total.
    hits = torch.tensor([[False, True, False, True]])
    result = topk_metrics(hits, torch.tensor([3.0]), ks=(2, 4))
    dcg4 = 1 / math.log2(3) + 1 / math.log2(5)
    idcg4 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert result["recall@2"].item() == pytest.approx(1 / 3)
    assert result["precision@4"].item() == pytest.approx(0.5)
    assert result["hit@2"].item() == 1.0
    assert result["mrr@4"].item() == pytest.approx(0.5)
    assert result["ndcg@4"].item() == pytest.approx(dcg4 / idcg4)
    assert result["ndcg@2"].item() == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_contributions_by_rank_sum_to_each_users_metric():
    generator = torch.Generator().manual_seed(0)
    hits = torch.rand(50, 20, generator=generator) < 0.2
    num_relevant = torch.maximum(hits.sum(1), torch.randint(1, 8, (50,), generator=generator)).float()
    metrics = topk_metrics(hits, num_relevant, ks=(5, 20))
    for name, values in metrics.items():
        assert topk_contributions(hits, num_relevant, name).sum(1) == pytest.approx(values, abs=1e-6), name
    first = topk_contributions(torch.tensor([[False, True, True]]), torch.tensor([2.0]), "mrr@3")
    assert first.tolist() == [[0.0, 0.5, 0.0]]  # only the first hit counts, at its own rank
    with pytest.raises(ValueError, match="unknown metric 'ndcg@30'"):
        topk_contributions(hits, num_relevant, "ndcg@30")


def test_no_hit_gives_zeros():
    result = topk_metrics(torch.zeros(1, 3, dtype=torch.bool), torch.tensor([2.0]), ks=(3,))
    assert all(value.item() == 0.0 for value in result.values())


def test_auc_by_hand_and_exclusion():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.7, 5.0]])
    relevant = torch.tensor([[True, False, True, False, False]])
    excluded = torch.tensor([[False, False, False, False, True]])  # the top-scored item is not a candidate
    # Positives 0.9 and 0.5 against negatives 0.1 and 0.7: 3 of 4 pairs ordered right.
    assert auc(scores, relevant, excluded).item() == pytest.approx(0.75)
    with pytest.raises(ValueError, match="both relevant and excluded"):
        auc(scores, relevant, excluded | relevant)


@pytest.mark.parametrize("share_relevant", [0.005, 0.5])  # few relevant items: compared one by one; many: one sort
def test_auc_counts_ties_as_half_pairs(share_relevant):
    rng = np.random.default_rng(1)
    scores = torch.from_numpy(rng.integers(0, 4, size=(6, 300)).astype(np.float32))  # many ties
    relevant = torch.from_numpy(rng.random((6, 300)) < share_relevant)
    relevant[:, 0] = True
    excluded = torch.from_numpy(rng.random((6, 300)) < 0.3) & ~relevant
    expected = []
    for row in range(6):
        positives = scores[row][relevant[row]]
        negatives = scores[row][~relevant[row] & ~excluded[row]]
        difference = positives[:, None] - negatives[None, :]
        expected.append(float(((difference > 0).double() + 0.5 * (difference == 0).double()).mean()))
    assert auc(scores, relevant, excluded).tolist() == pytest.approx(expected, abs=1e-6)
    flat = auc(torch.zeros(6, 300), relevant, excluded)
    assert flat.tolist() == pytest.approx([0.5] * 6)  # equal scores order nothing, whatever the item order


def test_coverage_and_diversity():
    top = torch.tensor([[0, 1], [0, 2]])
    assert coverage(top, 4) == 0.75
    features = torch.tensor([[1, 0], [1, 0], [0, 1], [1, 1]], dtype=torch.bool)
    assert intra_list_diversity(top, features).tolist() == pytest.approx([0.0, 1.0])


def _brute_force(scores: np.ndarray, truth: np.ndarray, exclude: np.ndarray, k: int) -> dict[str, float]:
    recalls, ndcgs, mrrs, aucs = [], [], [], []
    for row in range(scores.shape[0]):
        relevant = set(np.flatnonzero(truth[row]))
        if not relevant:
            continue
        candidates = [i for i in range(scores.shape[1]) if not exclude[row, i] or i in relevant]
        ranked = sorted(candidates, key=lambda i: -scores[row, i])[:k]
        gains = [1.0 if i in relevant else 0.0 for i in ranked]
        recalls.append(sum(gains) / len(relevant))
        ideal = sum(1 / math.log2(r + 2) for r in range(min(k, len(relevant))))
        ndcgs.append(sum(g / math.log2(r + 2) for r, g in enumerate(gains)) / ideal)
        mrrs.append(next((1 / (r + 1) for r, g in enumerate(gains) if g), 0.0))
        negatives = [i for i in candidates if i not in relevant]
        pairs = [(p, n) for p in relevant for n in negatives]
        aucs.append(sum(scores[row, p] > scores[row, n] for p, n in pairs) / len(pairs))
    return {
        f"recall@{k}": np.mean(recalls),
        f"ndcg@{k}": np.mean(ndcgs),
        f"mrr@{k}": np.mean(mrrs),
        "auc": np.mean(aucs),
    }


def test_full_ranking_matches_brute_force():
    rng = np.random.default_rng(0)
    num_users, num_items = 37, 23
    scores = rng.normal(size=(num_users, num_items)).astype(np.float32)
    train = rng.random((num_users, num_items)) < 0.2
    truth = (rng.random((num_users, num_items)) < 0.15) & ~train
    truth[5] = False  # a user with nothing to find is skipped
    truth_csr = interaction_matrix(*np.nonzero(truth), num_users, num_items)
    exclude_csr = interaction_matrix(*np.nonzero(train), num_users, num_items)
    result = evaluate_ranking(
        lambda users: torch.from_numpy(scores)[users], truth_csr, exclude_csr, ks=(5,), batch_size=8
    )
    reference = _brute_force(scores, truth, train, 5)
    for name, value in reference.items():
        assert result.metrics[name] == pytest.approx(value, abs=1e-5), name
    assert result.num_users == int((truth.sum(1) > 0).sum())


def test_candidates_restrict_ranking_and_relevance():
    # One user; items 0-1 are "seen" candidates, 2-3 the held-out ones. Item 0 scores highest but is
    # not a candidate, so among candidates the relevant item 3 ranks first; relevant item 1 is not a
    # candidate and must not count against recall.
    scores = torch.tensor([[9.0, 8.0, 1.0, 2.0]])
    truth = interaction_matrix(np.array([0, 0]), np.array([1, 3]), 1, 4)
    nothing = interaction_matrix(np.array([], dtype=int), np.array([], dtype=int), 1, 4)
    every = evaluate_ranking(lambda users: scores[users], truth, nothing, ks=(1,))
    cold = evaluate_ranking(
        lambda users: scores[users], truth, nothing, ks=(1,), candidates=np.array([False, False, True, True])
    )
    assert every.metrics["recall@1"] == 0.0
    assert cold.metrics["recall@1"] == 1.0 and cold.metrics["ndcg@1"] == 1.0
    assert cold.metrics["auc"] == 1.0
    with pytest.raises(InputError, match="nothing to evaluate"):  # no relevant candidate: no metric, never a 0
        evaluate_ranking(
            lambda users: scores[users], truth, nothing, ks=(1,), candidates=np.array([True, False, True, False])
        )


def test_ties_are_broken_at_random_not_by_item_index():
    # A model that scores every item the same must not get credit for relevant items having low indices.
    num_items = 200
    truth = interaction_matrix(np.zeros(5, dtype=int), np.arange(5), 1, num_items)
    nothing = interaction_matrix(np.array([], dtype=int), np.array([], dtype=int), 1, num_items)
    flat = evaluate_ranking(lambda users: torch.zeros(len(users), num_items), truth, nothing, ks=(5,))
    assert flat.metrics["recall@5"] < 0.5  # index order would give 1.0
    again = evaluate_ranking(lambda users: torch.zeros(len(users), num_items), truth, nothing, ks=(5,))
    assert again.metrics == flat.metrics  # the order is fixed, so results repeat


def test_topk_only_gives_the_same_topk_metrics():
    rng = np.random.default_rng(3)
    scores = torch.from_numpy(rng.normal(size=(30, 40)).astype(np.float32))
    truth = interaction_matrix(rng.integers(0, 30, 90), rng.integers(0, 40, 90), 30, 40)
    exclude = interaction_matrix(rng.integers(0, 30, 60), rng.integers(0, 40, 60), 30, 40)
    full = evaluate_ranking(lambda users: scores[users], truth, exclude, ks=(5, 10), batch_size=7)
    fast = evaluate_ranking(lambda users: scores[users], truth, exclude, ks=(5, 10), batch_size=7, topk_only=True)
    assert "auc" in full.metrics and "auc" not in fast.metrics and "coverage@5" not in fast.metrics
    assert fast.metrics == {name: value for name, value in full.metrics.items() if name in fast.metrics}


def test_an_empty_split_is_an_error_not_a_zero():
    empty = interaction_matrix(np.array([], dtype=int), np.array([], dtype=int), 3, 4)
    with pytest.raises(InputError, match="nothing to evaluate"):
        evaluate_ranking(lambda rows: torch.zeros(len(rows), 4), empty, empty)


def test_kgin_protocol_on_a_hand_computed_example():
    """KGIN's definitions: training items excluded, users without test items skipped, Recall@K = hits / |test|,
    NDCG@K with binary gains over an ideal DCG of min(|test|, K) hits."""
    scores = torch.tensor([[9.0, 5.0, 1.0, 8.0, 2.0]]).repeat(3, 1)
    train = interaction_matrix(np.array([0]), np.array([0]), 3, 5)  # user 0 trained on item 0
    test = interaction_matrix(np.array([0, 0, 1]), np.array([1, 3, 2]), 3, 5)  # user 2 has no test item
    result = evaluate_ranking(lambda users: scores[users], test, train, ks=(1, 2, 5))
    # user 0 ranks 3, 1, 4, 2 (item 0 excluded): both test items on top. user 1 ranks 0, 3, 1, 4, 2: its item last.
    assert result.num_users == 2
    assert result.metrics["recall@1"] == pytest.approx((1 / 2 + 0) / 2)
    assert result.metrics["ndcg@1"] == pytest.approx((1.0 + 0) / 2)  # ideal DCG@1 of user 0 is one hit, not two
    assert result.metrics["recall@2"] == pytest.approx((1.0 + 0) / 2)
    assert result.metrics["ndcg@2"] == pytest.approx((1.0 + 0) / 2)
    assert result.metrics["recall@5"] == pytest.approx(1.0)
    assert result.metrics["ndcg@5"] == pytest.approx((1.0 + 1 / math.log2(6)) / 2)


@pytest.mark.parametrize("levels", [None, 3, 1])  # distinct scores, many ties, all equal
def test_top_items_match_a_ranking_in_the_tie_order(levels):
    from kgrec.evaluate.ranking import _top

    rng = np.random.default_rng(levels or 0)
    scores = rng.normal(size=(40, 30)) if levels is None else rng.integers(0, levels, size=(40, 30))
    scores = torch.from_numpy(scores.astype(np.float32))
    excluded = torch.from_numpy(rng.random((40, 30)) < 0.3)
    order = torch.randperm(30, generator=torch.Generator().manual_seed(5))
    for k in (5, 30):
        reference = order[scores.masked_fill(excluded, float("-inf"))[:, order].topk(k, dim=1).indices]
        assert torch.equal(_top(scores, excluded, order, k), reference)
