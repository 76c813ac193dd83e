"""The KG nearest-neighbour score term: cosine of KG rows, only for items with few training interactions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.models import KGNeighbourTerm


def test_scores_are_cosines_and_only_trusted_items_get_them():
    features = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8]]))  # 4 items, 2 entities
    history = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0]]))  # user 0 took item 0, user 1 item 1
    term = KGNeighbourTerm(max_degree=3)
    term.set_history(features, history, item_degree=np.array([9, 9, 1, 2]))  # items 2 and 3 have few interactions
    scores = term.term_scores(None, torch.tensor([0, 1]))
    assert torch.allclose(scores, torch.tensor([[0.0, 0.0, 1.0, 0.6], [0.0, 0.0, 0.0, 0.8]]), atol=1e-6)
    assert not term.active and repr(term) == "KGNeighbourTerm(max_degree=3) x 0"
    with pytest.raises(ValueError, match="disagree"):
        term.set_history(features, history, item_degree=np.array([1, 2]))
    with pytest.raises(ValueError, match="set_history first"):
        KGNeighbourTerm().term_scores(None, torch.tensor([0]))


def test_a_run_with_the_term_chooses_its_weight_and_loads_as_trained(tmp_path):
    from kgrec import api
    from kgrec.config import GraphConfig, RunConfig, SplitConfig
    from kgrec.data import read_dataset
    from kgrec.graph import build_graph, save_graph
    from kgrec.inference import Recommender
    from tests.conftest import TINY_TRAINING, write_tiny_files

    graph = build_graph(
        read_dataset(**write_tiny_files(tmp_path / "files"), name="tiny"),
        GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))),
    )
    save_graph(graph, str(tmp_path / "graph"))
    settings = {**TINY_TRAINING, "train.epochs": 4, "model.use_text": False, "model.kg_neighbours": "on"}
    result = api.train(
        graph, RunConfig().override(settings), out=tmp_path / "run", graph_dir=tmp_path / "graph", quiet=True
    )
    term = result.recommender.model.kg_neighbours
    assert term is not None and result.blend is not None and "kg_neighbours_weight" in result.blend
    assert float(term.blend) == pytest.approx(result.blend["kg_neighbours_weight"])
    loaded = Recommender.load(tmp_path / "run")
    assert loaded.model.kg_neighbours is not None and float(loaded.model.kg_neighbours.blend) == float(term.blend)
    users = list(graph.users.ids)
    assert [r.item_ids for r in loaded.recommend(users, k=3)] == [
        r.item_ids for r in result.recommender.recommend(users, k=3)
    ]
