"""Baselines on the tiny graph: each ranks by what it reads, and the evaluation is a trained run's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.baselines import BASELINES, ItemKNN, KGNeighbours, Popularity, evaluate_baseline, make_baseline
from kgrec.errors import InputError
from kgrec.inference import split_matrix


def _top(baseline, graph, user: str, k: int = 3) -> list[str]:
    row = int(graph.users.to_index([user])[0])
    scores = baseline.score(torch.tensor([row]))[0].numpy()
    seen = split_matrix(graph, "train")[row].indices
    scores[seen] = -np.inf
    return list(graph.items.to_ids(np.argsort(-scores, kind="stable")[:k]))


def test_popularity_ranks_by_training_counts(tiny_graph):
    train = split_matrix(tiny_graph, "train")
    popularity = Popularity(seed=0).fit(tiny_graph, train)
    counts = np.asarray(train.sum(axis=0)).ravel()
    scores = popularity.score(torch.tensor([0, 1]))
    assert torch.equal(scores[0], scores[1])
    assert np.argmax(scores[0].numpy()) in np.flatnonzero(counts == counts.max())


def test_kg_neighbours_place_the_cold_item_by_its_director(tiny_graph):
    # Item 10 ("Kappa", nobody watched it) shares its director with items 1 and 2: users who took those rank it high.
    train = split_matrix(tiny_graph, "train")
    knn = KGNeighbours().fit(tiny_graph, train)
    fans = [
        u
        for u in tiny_graph.users.ids
        if {"1", "2"} & set(tiny_graph.items.to_ids(train[tiny_graph.users.index_of(u)].indices))
    ]
    assert fans and all("10" in _top(knn, tiny_graph, user, k=4) for user in fans)
    assert (knn.score(torch.arange(len(tiny_graph.users))) >= -1e-6).all()


def test_item_knn_recommends_what_co_occurs_and_keeps_its_neighbour_lists_short(tiny_graph):
    train = split_matrix(tiny_graph, "train")
    knn = ItemKNN(neighbours=2).fit(tiny_graph, train)
    assert knn.similarity is not None and (knn.similarity.getnnz(axis=1) <= 2).all()
    cold = tiny_graph.items.index_of("10")
    assert (
        float(knn.score(torch.arange(len(tiny_graph.users)))[:, cold].abs().max()) == 0.0
    )  # no interactions, no neighbours
    with pytest.raises(InputError, match="at least 1 neighbour"):
        ItemKNN(neighbours=0)


@pytest.mark.parametrize("name", sorted(set(BASELINES) - {"text-knn"}))
def test_every_baseline_is_evaluated_like_a_run(tiny_graph, name):
    result = evaluate_baseline(tiny_graph, name, split="test", ks=(5,))
    assert 0.0 <= result.metrics["ndcg@5"] <= 1.0 and result.per_user is not None
    unseen = evaluate_baseline(tiny_graph, name, split="valid", candidates="unseen", ks=(5,))
    assert "ndcg@5" in unseen.metrics


def test_text_neighbours_read_the_bundled_encoder(tiny_graph, tmp_path):
    result = evaluate_baseline(tiny_graph, "text-knn", split="test", ks=(5,), cache_dir=tmp_path)
    assert 0.0 <= result.metrics["ndcg@5"] <= 1.0 and any(tmp_path.rglob("*"))  # the embeddings were cached


def test_bad_names_and_splits_are_one_line(tiny_graph):
    with pytest.raises(InputError, match="unknown baseline 'ease' \\(known: popularity, item-knn, kg-knn, text-knn\\)"):
        make_baseline("ease")
    with pytest.raises(InputError, match="split 'valid' or 'test'"):
        evaluate_baseline(tiny_graph, "popularity", split="train")


def test_the_command_line_runs_every_baseline_that_applies(tiny_graph, tmp_path):
    from click.testing import CliRunner

    from kgrec.cli import BASELINE_NAMES, main
    from kgrec.graph import save_graph

    assert BASELINE_NAMES == tuple(BASELINES)  # written out in the CLI so that --help does not import torch
    save_graph(tiny_graph, str(tmp_path / "graph"))
    result = CliRunner().invoke(main, ["baseline", "--graph", str(tmp_path / "graph"), "--name", "kg-knn", "-k", "5"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "baseline kg-knn" and "test  ndcg@5" in result.output
