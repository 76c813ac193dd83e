"""`kgrec update`: warm start from a run on old plus new interactions."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from kgrec import api
from kgrec.config import GraphConfig, RunConfig, SplitConfig
from kgrec.data import read_dataset
from kgrec.errors import InputError
from kgrec.graph import build_graph, save_graph
from kgrec.inference import Recommender
from tests.conftest import TINY_TRAINING

FAST = {**TINY_TRAINING, "train.epochs": 15, "model.use_text": False}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.conftest import write_tiny_files

    folder = tmp_path_factory.mktemp("update")
    dataset = read_dataset(**write_tiny_files(folder / "files"), name="tiny")
    graph = build_graph(dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))))
    save_graph(graph, str(folder / "graph"))
    api.train(graph, RunConfig().override(FAST), out=folder / "run", graph_dir=folder / "graph", quiet=True)
    return folder


def test_update_adds_users_items_and_interactions_and_trains_them(trained, tmp_path):
    events = tmp_path / "events.csv"
    pd.DataFrame(
        [
            ("u1", "10", 4, 1_700_000_000),
            ("newbie", "3", 5, 1_700_000_001),
            ("newbie", "n1", 5, 1_700_000_002),
            ("u1", "1", 5, 1_700_000_003),
        ],
        columns=["user", "item", "rating", "timestamp"],
    ).to_csv(events, index=False)
    catalog = tmp_path / "new.csv"
    pd.DataFrame(
        [("n1", "New", "A film about alpha", "A", "StudioX")],
        columns=["item", "title", "description", "category", "brand"],
    ).to_csv(catalog, index=False)
    before = Recommender.load(trained / "run")
    updated = api.update(
        trained / "run", events, tmp_path / "updated", epochs=2, new_items=catalog, quiet=True
    ).recommender
    graph = updated.graph
    assert len(graph.users) == len(before.graph.users) + 1 and graph.users.ids[-1] == "newbie"
    assert len(graph.items) == len(before.graph.items) + 1
    stats = graph.stats["update"]
    # (u1, 1) is already in the run in some part: left out, counted.
    assert stats["new_users"] == 1 and stats["added"] + stats["already_known"] == 4 and stats["already_known"] >= 1
    train = graph.split.train
    assert ((train["user_id"] == "newbie") & (train["item_id"] == "n1")).any()
    for part in ("valid", "test"):  # measured like its predecessor
        pd.testing.assert_frame_equal(
            graph.split.part(part).reset_index(drop=True), before.graph.split.part(part).reset_index(drop=True)
        )
    assert (
        1 <= json.loads((tmp_path / "updated" / "run.json").read_text())["best_epoch"] <= 2
    )  # an update epoch, not the start
    # Trained users moved from where the run left them: the update trained them.
    assert not torch.allclose(updated.model.user_emb.weight[: len(before.graph.users)], before.model.user_emb.weight)
    # The updated run is a complete run: it loads, and the new user gets recommendations.
    again = Recommender.load(tmp_path / "updated")
    assert again.recommend(["newbie"], k=3)[0].item_ids
    assert again.graph.digest == graph.digest


def test_update_rejects_an_unknown_item_and_leaves_nothing(trained, tmp_path):
    events = tmp_path / "events.csv"
    events.write_text("user,item\nu1,1\nu2,nope\n")
    with pytest.raises(InputError, match=r"events.csv: row 3: unknown item id 'nope'"):
        api.update(trained / "run", events, tmp_path / "updated", epochs=1, quiet=True)
    assert not (tmp_path / "updated").exists()


def test_one_pass_blend_sweep_matches_one_evaluation_per_weight(trained):
    """evaluate_blends gives evaluate()'s metrics for every weight; choose_blend picks the same penalty and weight either way."""
    from kgrec.train.blend import choose_blend

    run = Recommender.load(trained / "run")
    model, select = run.model, run.config.eval.select_metric
    weights = [0.0, 0.3, 1.0, 5.0]
    swept = run.evaluate_blends(weights, "valid")
    with_users = run.evaluate_blends(weights, "valid", per_user=select, per_item=True)
    for weight, metrics, kept in zip(weights, swept, with_users):
        assert kept["per_item"].sum() == pytest.approx(kept["per_user"].sum(), abs=1e-9)  # the same total, by item
        model.ease.blend.fill_(weight)
        evaluation = run.evaluate("valid")
        single = evaluation.metrics
        assert metrics == pytest.approx({k: single[k] for k in metrics}, abs=1e-12)
        assert kept["per_user"] == pytest.approx(
            evaluation.per_user[select].to_numpy(), abs=1e-12
        )  # same users, same order
    validate = lambda _: run.evaluate("valid", topk_only=True).metrics[select]  # noqa: E731
    one_pass = lambda _, ws: [m[select] for m in run.evaluate_blends(ws, "valid")]  # noqa: E731
    model.ease.blend.zero_()
    baseline = validate(model)
    slow = choose_blend(
        model, run.prop_graph, l2_grid=(10.0, 100.0), validate=validate, baseline=baseline, kg_weights=(0.0, 2.0)
    )
    fast = choose_blend(
        model,
        run.prop_graph,
        l2_grid=(10.0, 100.0),
        validate=validate,
        baseline=baseline,
        validate_blends=one_pass,
        kg_weights=(0.0, 2.0),
    )
    assert fast == pytest.approx(slow) and set(fast) == {"l2", "kg_weight", "text_weight", "weight", "valid"}
    assert (model.ease.l2, model.ease.kg_weight) == (fast["l2"], fast["kg_weight"])  # the model holds the choice


def test_an_update_into_the_run_it_starts_from_is_refused_and_the_run_kept(trained, tmp_path):
    events = tmp_path / "events.csv"
    events.write_text("user,item,rating,timestamp\nu1,10,4,1700000000\n")
    before = {p.name: p.read_bytes() for p in (trained / "run").iterdir() if p.is_file()}
    for out in (trained / "run", trained / "run" / ".." / "run"):
        with pytest.raises(InputError, match="is the run this update starts from"):
            api.update(trained / "run", events, out=out)
    assert {p.name: p.read_bytes() for p in (trained / "run").iterdir() if p.is_file()} == before
