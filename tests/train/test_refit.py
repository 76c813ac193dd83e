"""train.refit_linear: EASE solved again on training plus validation once validation has chosen it."""

from __future__ import annotations

import pytest
import torch

from kgrec import api
from kgrec.config import RunConfig
from kgrec.graph import load_graph
from kgrec.inference import Recommender
from kgrec.models.ease import EASE
from tests.train.test_blend import FAST, graph_dir  # noqa: F401  (the module's graph fixture)

REFIT = {**FAST, "model.ease_kg_weight": [0.0], "train.schedule": "joint"}


@pytest.fixture(scope="module")
def runs(graph_dir, tmp_path_factory):  # noqa: F811
    folder = tmp_path_factory.mktemp("refit")
    graph = load_graph(graph_dir)
    plain = api.train(graph, RunConfig().override(REFIT), out=folder / "plain", graph_dir=graph_dir, quiet=True)
    refit = api.train(
        graph,
        RunConfig().override({**REFIT, "train.refit_linear": True}),
        out=folder / "refit",
        graph_dir=graph_dir,
        quiet=True,
    )
    return graph, plain, refit, folder


def test_refit_solves_ease_on_train_and_valid_after_the_same_selection(runs):
    graph, plain_result, refit_result, _ = runs
    plain, refit = plain_result.recommender, refit_result.recommender
    if not float(refit.model.ease.blend):
        pytest.skip("validation blended EASE out on this tiny graph")
    # Selection saw the same model: the same blend and the same validation metrics (measured before the refit).
    assert refit_result.blend == plain_result.blend
    assert refit_result.metrics["valid"] == plain_result.metrics["valid"]
    both = torch.from_numpy(refit.interactions("train", "valid").toarray()).float()
    expected = EASE(len(graph.items), refit.model.ease.l2).fit(both).weight
    torch.testing.assert_close(refit.model.ease.weight, expected)
    assert not torch.allclose(plain.model.ease.weight, expected)
    # Users' input rows now hold their validation items.
    assert refit.history_parts == ("train", "valid")
    assert refit.prop_graph.history.to_dense().sum() == both.sum() > plain.prop_graph.history.to_dense().sum()
    assert "refit_linear_seconds" in refit_result.timings


def test_a_loaded_refit_run_scores_as_the_trained_one(runs):
    graph, _, refit_result, folder = runs
    refit = refit_result.recommender
    loaded = Recommender.load(folder / "refit")
    assert loaded.history_parts == ("train", "valid")
    assert loaded.evaluate("test").metrics == pytest.approx(refit_result.metrics["test"])
    users = list(graph.users.ids)
    assert [r.item_ids for r in loaded.recommend(users, k=3)] == [r.item_ids for r in refit.recommend(users, k=3)]
    plain_loaded = Recommender.load(folder / "plain")
    assert plain_loaded.history_parts == ("train",)
