"""Segments: their bounds, and the item-segment definition computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.evaluate import ITEM_POPULARITY, USER_ACTIVITY, evaluate_ranking, segment_labels, segment_of
from kgrec.evaluate.segments import quantile_segments


def test_labels_and_membership():
    assert segment_labels(ITEM_POPULARITY) == ["0", "1-5", "6-20", "21-100", ">100"]
    assert segment_labels(USER_ACTIVITY) == ["1-5", "6-20", "21-100", ">100"]
    counts = np.array([0, 1, 5, 6, 20, 21, 100, 101, 5000])
    assert segment_of(counts, ITEM_POPULARITY).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert segment_of(counts, USER_ACTIVITY).tolist() == [-1, 0, 0, 1, 1, 2, 2, 3, 3]  # 0: in no user segment
    with pytest.raises(ValueError, match="increasing and disjoint"):
        segment_of(counts, ((1, 5), (5, 9)))


def test_quantile_segments_cover_the_counts_once():
    counts = np.array([1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144])
    segments = quantile_segments(counts, 4)
    found = segment_of(counts, segments)
    assert (found >= 0).all() and len(segments) == 4 and np.bincount(found).tolist() == [3, 3, 3, 3]


def test_an_item_segment_restricts_the_targets_not_the_ranking():
    # One user; scores rank items 0 > 1 > 2 > 3 > 4; held out: items 1 and 3. Item 1 is in segment A, item 3 in B.
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    truth = sp.csr_matrix(np.array([[0, 1, 0, 1, 0]], dtype=bool))
    nothing = sp.csr_matrix((1, 5), dtype=bool)

    def ranked(targets: np.ndarray) -> dict:
        restricted = sp.csr_matrix(truth.multiply(targets[None, :]), dtype=bool)
        restricted.eliminate_zeros()  # as kgrec.inference.evaluation does: an explicit False is no target
        return evaluate_ranking(lambda users: scores[users], restricted, nothing, ks=(2,), topk_only=True).metrics

    overall = ranked(np.ones(5, dtype=bool))
    assert overall["recall@2"] == pytest.approx(0.5)  # item 1 found in the top 2, item 3 not
    a = ranked(np.array([False, True, False, False, False]))
    assert a["recall@2"] == pytest.approx(1.0) and a["hit@2"] == pytest.approx(1.0)
    assert a["ndcg@2"] == pytest.approx(1 / math.log2(3))  # its one target at rank 2, ideal: at rank 1
    b = ranked(np.array([False, False, False, True, False]))
    assert b["recall@2"] == 0.0 and b["ndcg@2"] == 0.0  # item 3 sits at rank 4: item 1 stays above it
