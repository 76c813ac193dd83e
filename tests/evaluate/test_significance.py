"""Paired comparisons against scipy and by hand; per-user values average to the reported metrics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy import stats

from kgrec.evaluate import evaluate_blends, evaluate_ranking, holm, paired_comparison


def test_holm_by_hand():
    # Sorted 0.01, 0.03, 0.04 -> 3 x 0.01, 2 x 0.03, max(that, 1 x 0.04); back in input order.
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_paired_comparison_matches_scipy_and_covers_the_difference():
    generator = np.random.default_rng(0)
    baseline = generator.random(300)
    better = baseline + 0.05 + 0.1 * generator.standard_normal(300)
    result = paired_comparison(baseline, better, resamples=2000, seed=1)
    assert result["difference"] == pytest.approx((better - baseline).mean())
    assert result["t_p"] == pytest.approx(stats.ttest_rel(better, baseline).pvalue)
    assert result["wilcoxon_p"] == pytest.approx(stats.wilcoxon(better, baseline).pvalue)
    assert result["ci_low"] < result["difference"] < result["ci_high"] and result["ci_low"] > 0  # clearly better
    assert paired_comparison(baseline, better, resamples=2000, seed=1) == result  # seeded
    same = paired_comparison(baseline, baseline)
    assert same["difference"] == 0.0 and same["t_p"] == same["wilcoxon_p"] == 1.0
    with pytest.raises(ValueError, match="equal-length"):
        paired_comparison(baseline, better[:10])


def test_per_user_values_average_to_the_metrics():
    truth = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1]], dtype=bool))
    exclude = sp.csr_matrix((4, 4), dtype=bool)
    scores = torch.tensor([[4.0, 3, 2, 1], [1, 2, 3, 4], [1, 1, 1, 1], [4, 3, 2, 1]])
    result = evaluate_ranking(lambda rows: scores[rows], truth, exclude, ks=(2,))
    table = result.per_user
    assert table["row"].tolist() == [0, 1, 3]  # the user without relevant items is not ranked
    assert table["ndcg@2"].mean() == pytest.approx(result.metrics["ndcg@2"])
    assert table["recall@2"].tolist() == pytest.approx([0.5, 0.0, 0.0])
    assert evaluate_ranking(lambda rows: scores[rows], truth, exclude, ks=(2,), topk_only=True).per_user is None


def test_per_user_values_fill_in_user_order_whatever_the_batches():
    # Per-user results are written into arrays allocated once, batch by batch: one user a batch must
    # give the table, coverage and blend sweep of one batch for all.
    generator = torch.Generator().manual_seed(0)
    scores, linear = torch.rand(9, 12, generator=generator), torch.rand(9, 12, generator=generator)
    relevant = np.random.default_rng(0).random((9, 12)) < 0.2
    relevant[4] = False  # a user with nothing to rank is skipped, not written as a zero row
    truth = sp.csr_matrix(relevant)
    exclude = sp.csr_matrix((np.random.default_rng(1).random((9, 12)) < 0.2) & ~relevant)
    whole = evaluate_ranking(lambda rows: scores[rows], truth, exclude, ks=(3,), batch_size=64)
    single = evaluate_ranking(lambda rows: scores[rows], truth, exclude, ks=(3,), batch_size=1)
    assert 4 not in whole.per_user["row"].tolist()
    assert single.per_user.equals(whole.per_user) and single.metrics == pytest.approx(whole.metrics)

    def parts(rows):
        return scores[rows], linear[rows]

    blends = [
        evaluate_blends(parts, truth, exclude, [0.0, 2.0], ks=(3,), batch_size=size, per_user="ndcg@3")
        for size in (64, 1)
    ]
    for together, apart in zip(*blends):
        np.testing.assert_array_equal(together["per_user"], apart["per_user"])
        assert together["per_user"].mean() == pytest.approx(together["ndcg@3"])


def test_compare_refuses_runs_on_different_splits(tmp_path, tiny_dataset):
    from kgrec import api
    from kgrec.config import GraphConfig, RunConfig, SplitConfig
    from kgrec.errors import InputError
    from kgrec.graph import build_graph

    fast = {
        "kge.epochs": 1,
        "kge.dim": 8,
        "model.dim": 8,
        "train.epochs": 2,
        "train.side_epochs": 0,
        "model.use_text": False,
        "model.linear": "none",
    }
    for seed in (1, 2):
        graph = build_graph(tiny_dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2), seed=seed)))
        api.train(graph, RunConfig().override(fast), out=tmp_path / f"seed{seed}", quiet=True)
    with pytest.raises(InputError, match="evaluated on another split than the baseline"):
        api.compare(tmp_path / "seed1", [tmp_path / "seed2"])
    with pytest.raises(InputError, match=r"no per-user 'test_unseen' metrics \(it has: test, valid\)"):
        api.compare(tmp_path / "seed1", [tmp_path / "seed1"], evaluation="test_unseen")
    (itself,) = api.compare(tmp_path / "seed1", [tmp_path / "seed1"], metric="auc")
    assert itself.difference == 0.0 and itself.users > 0
