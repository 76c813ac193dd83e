"""The linear blend of a training run: EASE's KG rows follow the KG switch and survive saving."""

from __future__ import annotations

import pytest

from kgrec import api
from kgrec.config import GraphConfig, RunConfig, SplitConfig
from kgrec.data import read_dataset
from kgrec.graph import build_graph, load_graph, save_graph
from kgrec.inference import Recommender
from tests.conftest import TINY_TRAINING

FAST = {**TINY_TRAINING, "train.epochs": 3, "train.side_epochs": 1, "model.use_text": False, "model.ease_l2": [10.0]}


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory):
    from tests.conftest import write_tiny_files

    folder = tmp_path_factory.mktemp("blend")
    graph = build_graph(
        read_dataset(**write_tiny_files(folder / "files"), name="tiny"),
        GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))),
    )
    save_graph(graph, str(folder / "graph"))
    return folder / "graph"


def test_kg_rows_are_tried_with_the_kg_and_never_without_it(graph_dir, tmp_path):

    graph = load_graph(graph_dir)
    with_kg_result = api.train(
        graph,
        RunConfig().override({**FAST, "model.ease_kg_weight": [3.0]}),
        out=tmp_path / "kg",
        graph_dir=graph_dir,
        quiet=True,
    )
    with_kg = with_kg_result.recommender
    assert with_kg_result.blend["kg_weight"] == 3.0 and with_kg.model.ease.kg_weight == 3.0
    no_kg_result = api.train(
        graph,
        RunConfig().override({**FAST, "model.ease_kg_weight": [3.0], "model.use_kg": False}),
        out=tmp_path / "no-kg",
        graph_dir=graph_dir,
        quiet=True,
    )
    no_kg = no_kg_result.recommender
    assert (
        no_kg_result.blend["kg_weight"] == 0.0 and no_kg.model.ease.kg_weight == 0.0
    )  # the ablation has no KG anywhere
    loaded = Recommender.load(tmp_path / "kg")
    assert loaded.model.ease.kg_weight == 3.0 and "kg_weight=3" in repr(loaded.model)
    users = list(graph.users.ids)
    assert [r.item_ids for r in loaded.recommend(users, k=3)] == [r.item_ids for r in with_kg.recommend(users, k=3)]


def test_text_rows_are_tried_with_the_text_view_and_survive_saving(graph_dir, tmp_path):

    graph = load_graph(graph_dir)
    settings = {**FAST, "model.use_text": True, "model.ease_kg_weight": [0.0], "model.ease_text_weight": [5.0]}
    with_text_result = api.train(
        graph, RunConfig().override(settings), out=tmp_path / "text", graph_dir=graph_dir, quiet=True
    )
    with_text = with_text_result.recommender
    assert with_text_result.blend["text_weight"] == 5.0 and with_text.model.ease.text_weight == 5.0
    no_text_result = api.train(graph, RunConfig().override({**settings, "model.use_text": False}), quiet=True)
    no_text = no_text_result.recommender
    assert no_text_result.blend["text_weight"] == 0.0 and no_text.model.ease.text_weight == 0.0
    loaded = Recommender.load(tmp_path / "text")
    assert "text_weight=5" in repr(loaded.model)
    assert loaded.evaluate("test").metrics == pytest.approx(with_text_result.metrics["test"])


def test_the_one_se_rule_takes_the_simplest_blend_near_the_best():
    import numpy as np

    from kgrec.train.blend import _simplest_near_best

    base = np.linspace(0.0, 1.0, 400)
    wobble = np.where(np.arange(400) % 2 == 0, 0.05, -0.05)  # per-user differences of std 0.05: one SE is 0.0025
    best = {"l2": 100.0, "kg_weight": 1.0, "text_weight": 3.0, "weight": 2.0, "valid": float(base.mean())}
    noisy_tie = {
        "l2": 100.0,
        "kg_weight": 0.0,
        "text_weight": 3.0,
        "weight": 900.0,
        "valid": float(base.mean() - 0.002),
    }
    clearly_worse = {
        "l2": 500.0,
        "kg_weight": 0.0,
        "text_weight": 0.0,
        "weight": 1000.0,
        "valid": float(base.mean() - 0.1),
    }
    measured = [
        (best, 2.0, (base,)),
        (noisy_tie, 1000.0, (base - 0.002 + wobble,)),
        (clearly_worse, 1000.0, (base - 0.1 + wobble,)),
    ]
    assert _simplest_near_best(measured, best) is noisy_tie  # 0.002 below the best, within one SE
    assert _simplest_near_best([measured[0], measured[2]], best) is best  # a simpler blend far below is never taken


def test_the_item_paired_rule_sees_the_noise_of_a_few_held_out_items():
    """400 users share 8 held-out items: a blend 0.01 below the best on every user is clearly worse paired over
    users, but item by item it gains on some and loses on others (which items were held out decides), so paired
    over items it is a tie."""
    import numpy as np

    from kgrec.train.blend import _simplest_near_best

    users, base = 400, np.full(400, 0.3)
    best_items = np.full(8, 0.3 * users / 8)  # each item's total over users
    skewed = best_items + np.array([3.0, -3.0, 3.0, -3.0, 3.0, -3.0, -4.0, 0.0])  # the same total loss, 0.01 per user
    best = {"l2": 100.0, "kg_weight": 1.0, "text_weight": 3.0, "weight": 2.0, "valid": 0.3}
    simpler = {"l2": 100.0, "kg_weight": 0.0, "text_weight": 3.0, "weight": 900.0, "valid": 0.29}
    by_user = np.where(np.arange(users) % 2 == 0, -0.012, -0.008)  # -0.01 on average, nearly the same for everyone
    measured_users = [(best, 2.0, (base,)), (simpler, 1000.0, (base + by_user,))]
    assert _simplest_near_best(measured_users, best) is best  # one-se over users: far below
    measured_items = [(best, 2.0, (base, best_items)), (simpler, 1000.0, (base + by_user, skewed))]
    assert _simplest_near_best(measured_items, best) is simpler  # one-se-blend: within the item-level noise
    spread = best_items - 0.01 * users / 8  # the same loss spread evenly over the items: no item-level noise to hide in
    assert (
        _simplest_near_best([(best, 2.0, (base, best_items)), (simpler, 1000.0, (base + by_user, spread))], best)
        is best
    )


def test_the_blend_rule_keeps_the_best_candidates_ease_rows():
    import numpy as np

    from kgrec.train.blend import _rule_choice

    base = np.full(50, 0.2)
    best = {"l2": 500.0, "kg_weight": 1.0, "text_weight": 12.0, "weight": 5.0, "valid": 0.2}
    fewer_rows = {"l2": 500.0, "kg_weight": 0.0, "text_weight": 0.0, "weight": 5000.0, "valid": 0.2}
    more_ease = {"l2": 500.0, "kg_weight": 1.0, "text_weight": 12.0, "weight": 50.0, "valid": 0.2}
    measured = [(best, 1.0, (base,)), (fewer_rows, 1000.0, (base,)), (more_ease, 16.0, (base,))]  # all tied
    assert _rule_choice("one-se", measured, best) is fewer_rows  # simplest overall: no side rows
    assert _rule_choice("one-se-blend", measured, best) is more_ease  # the rows stay; EASE gets more of the blend


def test_auto_blend_rule_pairs_over_items_when_ranking_new_items(tmp_path):
    import json

    from kgrec.train.pipeline import blend_rule
    from tests.conftest import write_tiny_files

    assert blend_rule(RunConfig()) == "best"
    assert blend_rule(RunConfig().override({"eval.candidates": "unseen"})) == "one-se-blend"
    assert blend_rule(RunConfig().override({"eval.candidates": "unseen", "model.blend_rule": "best"})) == "best"
    cold = build_graph(
        read_dataset(**write_tiny_files(tmp_path / "files"), name="tiny"),
        GraphConfig(split=SplitConfig(kind="cold-items", cold_item_share=0.4)),
    )
    save_graph(cold, str(tmp_path / "graph"))
    settings = {
        **FAST,
        "model.use_text": True,
        "model.ease_l2": [10.0, 1000.0],
        "model.ease_text_weight": [0.0, 5.0],
        "eval.candidates": "unseen",
    }
    run_result = api.train(
        cold, RunConfig().override(settings), out=tmp_path / "run", graph_dir=tmp_path / "graph", quiet=True
    )
    assert run_result.blend["rule"] == "one-se-blend"
    assert json.loads((tmp_path / "run" / "run.json").read_text())["blend"]["rule"] == "one-se-blend"
