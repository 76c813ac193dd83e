"""Baselines on the tiny graph: each ranks by what it reads, and the evaluation is a trained run's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.baselines import (
    BASELINES,
    EASEBaseline,
    ItemKNN,
    KGNeighbours,
    Popularity,
    baseline_segments,
    evaluate_baseline,
    make_baseline,
)
from kgrec.errors import InputError
from kgrec.inference import split_matrix


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    """The tiny dataset with held-out interactions in every part (the default ratios leave its test part empty)."""
    from kgrec.config import GraphConfig, SplitConfig
    from kgrec.data import read_dataset
    from kgrec.graph import build_graph
    from tests.conftest import write_tiny_files

    files = write_tiny_files(tmp_path_factory.mktemp("baselines"))
    return build_graph(read_dataset(**files, name="tiny"), GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))))


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
def test_every_baseline_is_evaluated_like_a_run(graph, name):
    result = evaluate_baseline(graph, name, split="test", ks=(5,))
    assert 0.0 <= result.metrics["ndcg@5"] <= 1.0 and result.per_user is not None


def test_on_a_cold_items_split_only_the_kg_tells_new_items_apart(tmp_path):
    from kgrec.config import GraphConfig, SplitConfig
    from kgrec.data import read_dataset
    from kgrec.graph import build_graph
    from tests.conftest import write_tiny_files

    cold = build_graph(
        read_dataset(**write_tiny_files(tmp_path), name="tiny"),
        GraphConfig(split=SplitConfig(kind="cold-items", cold_item_share=0.4)),
    )
    train = split_matrix(cold, "train")
    new = np.flatnonzero(train.getnnz(axis=0) == 0)  # items without training interactions
    users = torch.arange(len(cold.users))
    assert float(ItemKNN().fit(cold, train).score(users)[:, new].abs().max()) == 0.0  # interactions say nothing
    kg = KGNeighbours().fit(cold, train).score(users)[:, new]
    assert float(kg.max()) > 0.0 and len(torch.unique(kg)) > 1  # shared entities do
    assert evaluate_baseline(cold, "kg-knn", candidates="unseen", ks=(5,)).num_users > 0


def test_text_neighbours_read_the_bundled_encoder(graph, tmp_path):
    result = evaluate_baseline(graph, "text-knn", split="test", ks=(5,), cache_dir=tmp_path)
    assert 0.0 <= result.metrics["ndcg@5"] <= 1.0 and any(tmp_path.rglob("*"))  # the embeddings were cached


def test_bad_names_and_splits_are_one_line(graph):
    with pytest.raises(
        InputError, match="unknown baseline 'slim' \\(known: popularity, item-knn, ease, kg-knn, text-knn\\)"
    ):
        make_baseline("slim")
    with pytest.raises(InputError, match="split 'valid' or 'test'"):
        evaluate_baseline(graph, "popularity", split="train")


def test_the_command_line_runs_every_baseline_that_applies(graph, tmp_path):
    from click.testing import CliRunner

    from kgrec.cli import BASELINE_NAMES, main
    from kgrec.graph import save_graph

    assert BASELINE_NAMES == tuple(BASELINES)  # written out in the CLI so that --help does not import torch
    save_graph(graph, str(tmp_path / "graph"))
    result = CliRunner().invoke(main, ["baseline", "--graph", str(tmp_path / "graph"), "--name", "kg-knn", "-k", "5"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "baseline kg-knn" and "test  ndcg@5" in result.output


def test_ease_is_the_closed_form_and_segments_add_up(graph):
    train = split_matrix(graph, "train")
    ease = EASEBaseline(l2=5.0).fit(graph, train)
    x = train.toarray().astype(np.float64)
    precision = np.linalg.inv(x.T @ x + 5.0 * np.eye(x.shape[1]))
    expected = np.eye(x.shape[1]) - precision / np.diag(precision)
    np.fill_diagonal(expected, 0.0)
    assert np.allclose(ease.weight, expected, atol=1e-5)
    users = torch.arange(len(graph.users))
    assert torch.allclose(ease.score(users), torch.from_numpy(x @ expected).float(), atol=1e-4)
    table = baseline_segments(graph, "ease", ks=(5,))
    items = table[table["by"] == "item popularity"]
    assert items["targets"].sum() == split_matrix(graph, "test").nnz  # every held-out interaction in one segment
