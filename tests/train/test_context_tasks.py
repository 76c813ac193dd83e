"""Context-aware training and multi-task training on tiny data: the context is used, each task trains what it names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kgrec import api
from kgrec.config import GraphConfig, RunConfig, SplitConfig
from kgrec.data import read_dataset
from kgrec.errors import InputError
from kgrec.explain import score_shares
from kgrec.graph import build_graph
from kgrec.inference import Recommender, repeat_enabled
from kgrec.inference.tasks import RankingTasks
from tests.conftest import TINY_TRAINING

FAST = {**TINY_TRAINING, "train.epochs": 12, "train.eval_every": 2, "model.use_text": False}


@pytest.fixture
def device_graph(tmp_path):
    """200 users, each with 6 random phone items (i0-i19) and 6 random web items (i20-i39) in random order.

    Which items a user picks carries no signal; the device of the last interaction says which half it is in.
    """
    rng = np.random.default_rng(0)
    rows = []
    for user in range(200):
        items = [*rng.choice(20, 6, replace=False), *(20 + rng.choice(20, 6, replace=False))]
        for item, when in zip(items, rng.permutation(12)):
            device = "mobile" if item < 20 else "web"
            rows.append((f"u{user}", f"i{item}", 4.0, 1_600_000_000 + 3600 * int(when), device))
    path = tmp_path / "log.csv"
    pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp", "device"]).to_csv(path, index=False)
    dataset = read_dataset(path, name="devices")
    return build_graph(dataset, GraphConfig(split=SplitConfig(kind="loo")))


def _settings(**extra):
    return {
        **FAST,
        "model.use_kg": False,
        "model.linear": "none",
        "train.epochs": 40,
        "train.lr": 0.05,
        "context.dropout": 0.0,
        **extra,
    }


def test_context_changes_the_ranking_where_it_carries_signal(device_graph, tmp_path):
    plain_result = api.train(device_graph, RunConfig().override(_settings()), quiet=True)
    plain = plain_result.recommender
    aware_result = api.train(
        device_graph, RunConfig().override(_settings(**{"context.columns": ["device"]})), quiet=True
    )
    aware = aware_result.recommender
    # Each test interaction is ranked in its own context: knowing the device halves the candidates.
    assert aware_result.metrics["test"]["ndcg@10"] > plain_result.metrics["test"]["ndcg@10"] + 0.05
    mobile, web = (
        aware.recommend(["u0"], k=10, exclude_seen=False, context={"device": d})[0] for d in ("mobile", "web")
    )
    mobile_items = {f"i{i}" for i in range(20)}
    assert len(set(mobile.item_ids) & mobile_items) >= 9
    assert len(set(web.item_ids) & mobile_items) <= 1
    with pytest.raises(InputError, match="trained without context"):
        plain.recommend(["u0"], context={"device": "web"})


def test_context_run_saves_and_loads_with_the_same_metrics(device_graph, tmp_path):
    config = RunConfig().override(
        _settings(**{"context.columns": ["device"], "context.time": ["hour", "weekday"], "train.epochs": 4})
    )
    trained_result = api.train(device_graph, config, out=tmp_path / "run", quiet=True)
    assert (tmp_path / "run" / "context.json").is_file()
    loaded = Recommender.load(tmp_path / "run")
    assert loaded.context.names == ["hour", "weekday", "device"]
    assert loaded.evaluate("test").metrics == pytest.approx(trained_result.metrics["test"])


def test_new_user_from_attributes_alone(tiny_dataset, tmp_path):
    graph = build_graph(tiny_dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))))
    config = RunConfig().override({**FAST, "context.user": ["age", "gender"], "context.min_count": 1})
    recommender = api.train(graph, config, quiet=True).recommender
    with torch.no_grad():  # make the attribute matter, as training would on real data
        recommender.model.context.embedding.weight.normal_()
    female, male = (recommender.recommend_for_history([], k=3, context={"gender": g}) for g in ("F", "M"))
    assert len(female.item_ids) == 3 and (female.item_ids, female.scores) != (male.item_ids, male.scores)
    with pytest.raises(InputError, match="at least one item id"):
        recommender.recommend_for_history([], k=3)
    plain = api.train(graph, RunConfig().override(FAST), quiet=True).recommender
    with pytest.raises(InputError, match="context.user fields"):
        plain.recommend_for_history([], k=3, context={"gender": "F"})


def test_rating_task_learns_ratings_and_reports_rmse(tiny_dataset):
    graph = build_graph(tiny_dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))))
    config = RunConfig().override({**FAST, "train.tasks": ["rank", "rating"], "train.epochs": 30, "train.lr": 0.05})
    recommender_result = api.train(graph, config, quiet=True)
    recommender = recommender_result.recommender
    train = recommender.rating_errors("train")
    assert {"rmse", "mae"} <= set(recommender_result.metrics["test"])
    ratings = graph.split.train["rating"]
    baseline = float(np.sqrt(((ratings - ratings.mean()) ** 2).mean()))
    assert train["rmse"] < baseline  # better than predicting the mean rating


def test_kg_task_fine_tunes_pykeen_embeddings_and_reports_link_prediction(tiny_dataset, tmp_path):
    graph = build_graph(tiny_dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))))
    settings = {
        **FAST,
        "kge.eval_share": 0.3,
        "kge.link_prediction": True,
        "train.tasks": ["rank", "kg"],
        "train.schedule": "joint",
        "train.task_weighting": "uncertainty",
        "train.kg_batch_size": 4,
    }
    recommender_result = api.train(graph, RunConfig().override(settings), out=tmp_path / "run", quiet=True)
    recommender = recommender_result.recommender
    model = recommender.model
    assert model.kg_model is not None
    assert not torch.allclose(model.kg_table(), model.kg_emb)  # moved away from PyKEEN's frozen values
    assert {"mrr", "hits@10"} <= set(
        recommender_result.metrics["kge_finetuned"]
    ) and "mrr" in recommender_result.metrics["kge"]
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert {"loss_kg", "weight_kg", "weight_rank"} <= set(history.columns)
    loaded = Recommender.load(tmp_path / "run")
    assert torch.allclose(loaded.model.kg_table(), model.kg_table().cpu())
    assert loaded.evaluate("test").metrics == pytest.approx(recommender_result.metrics["test"])


def test_task_inputs_are_checked_before_training(tiny_dataset):
    graph = build_graph(tiny_dataset)
    with pytest.raises(InputError, match="model.use_kg is false"):
        api.train(
            graph, RunConfig().override({**FAST, "model.use_kg": False, "train.tasks": ["rank", "kg"]}), quiet=True
        )
    no_ratings = graph.split.interactions.drop(columns="rating")
    from dataclasses import replace

    unrated = replace(graph, split=replace(graph.split, interactions=no_ratings))
    with pytest.raises(InputError, match="no rating"):
        api.train(unrated, RunConfig().override({**FAST, "train.tasks": ["rating"]}), quiet=True)
    with pytest.raises(InputError, match="names a task twice"):
        RunConfig().override({"train.tasks": ["rank", "rank"]})


@pytest.fixture
def place_graph():
    """60 users, each with 3 work apps (of w0-w19) opened at work on weekdays and 3 home apps (of h0-h19) opened at
    home every day: the same app recurs in many contexts, so the unit is (user, item, place, day)."""
    from kgrec.config import DataConfig

    rng = np.random.default_rng(1)
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    rows = []
    for user in range(60):
        work, home = rng.choice(20, 3, replace=False), rng.choice(20, 3, replace=False)
        rows += [(f"u{user}", f"w{w}", 1.0, "work", day) for w in work for day in days[:5]]
        rows += [(f"u{user}", f"h{h}", 1.0, "home", day) for h in home for day in days]
    rows += rows[:10]  # repeated observations: merged, their counts summed
    log = pd.DataFrame(rows, columns=["user", "item", "cnt", "place", "day"])
    dataset = read_dataset(log, config=DataConfig(interactions={"rating": "cnt"}, repeats="sum"), name="places")
    assert len(dataset.interactions) == 60 * 36 and dataset.interactions["rating"].max() == 2.0
    return build_graph(dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))))


def test_in_context_ranking_uses_the_context_and_discovery_masks_seen_items(place_graph):
    settings = _settings(**{"eval.task": "in-context", "train.epochs": 20, "train.batch_size": 64})
    plain_result = api.train(place_graph, RunConfig().override(settings), quiet=True)
    aware_result = api.train(
        place_graph, RunConfig().override({**settings, "context.columns": ["place", "day"]}), quiet=True
    )
    aware = aware_result.recommender
    # In context the targets are the user's own apps (used on other days): nothing is masked, and the place says
    # which three of the six it is.
    assert plain_result.metrics["test"]["recall@10"] > 0.8
    assert aware_result.metrics["test"]["ndcg@10"] > plain_result.metrics["test"]["ndcg@10"] + 0.05
    # Ranked for discovery, a held-out use of an app seen in training is not a target.
    truth, *_ = aware.tasks.ranking("test", "all")
    discovery = RankingTasks(aware.graph, "discovery", aware.context)
    discovery_truth, discovery_exclude, *_ = discovery.ranking("test", "all")
    assert not discovery_truth.multiply(discovery_exclude).nnz and discovery_truth.nnz < truth.nnz


def test_in_context_run_learns_a_repeat_term_that_reads_the_context_and_survives_a_reload(place_graph, tmp_path):
    settings = _settings(
        **{"eval.task": "in-context", "train.epochs": 6, "train.batch_size": 64, "context.columns": ["place", "day"]}
    )
    aware_result = api.train(place_graph, RunConfig().override(settings), out=tmp_path / "run", quiet=True)
    aware = aware_result.recommender
    repeat = aware.model.repeat
    assert repeat is not None and repeat.num_fields == 2 and aware_result.blend["repeat_weight"] > 0
    # The place tells work from home apps. (The day weight comes out negative, rightly: an observation is a whole
    # context, merged, so an app this user already used on this weekday is, here, never the held-out one.)
    mixture = torch.softmax(repeat.logits.detach(), 0)
    assert mixture[2] > mixture[3]
    log = place_graph.split.train
    work_apps = set(log[(log["user_id"] == "u0") & (log["place"] == "work")]["item_id"])
    at_work = aware.recommend(["u0"], k=3, exclude_seen=False, context={"place": "work"})[0]
    at_home = aware.recommend(["u0"], k=3, exclude_seen=False, context={"place": "home"})[0]
    assert set(at_work.item_ids) == work_apps and not set(at_home.item_ids) & work_apps
    loaded = Recommender.load(tmp_path / "run")
    again = loaded.recommend(["u0"], k=3, exclude_seen=False, context={"place": "work"})[0]
    assert again.item_ids == at_work.item_ids and np.allclose(again.scores, at_work.scores, atol=1e-5)
    assert loaded.evaluate("test").metrics["ndcg@10"] == pytest.approx(
        aware_result.metrics["test"]["ndcg@10"], abs=1e-6
    )
    shares = score_shares(loaded, ["u0"], [at_work.item_ids], context={"place": "work"})[0][0]
    assert set(shares) >= {"graph", "repeat"} and shares["repeat"] > 0
    # Labeled rows (a click-through protocol) are each scored in their own context, as score() scores one stated context.
    app = sorted(work_apps)[0]
    rows = pd.DataFrame(
        {
            "user_id": ["u0", "u0", "u1"],
            "item_id": [app, app, app],
            "place": ["work", "home", "work"],
            "day": ["mon", "sun", "mon"],
        }
    )
    scored = loaded.score_log(rows)
    assert scored[0] > scored[1]
    assert scored[0] == pytest.approx(loaded.score(["u0"], [app], context={"place": "work", "day": "mon"})[0], abs=1e-5)
    assert scored[2] == pytest.approx(loaded.score(["u1"], [app], context={"place": "work", "day": "mon"})[0], abs=1e-5)
    with pytest.raises(InputError, match="no 'day' column"):
        loaded.score_log(rows.drop(columns="day"))
    with pytest.raises(InputError, match="unknown user id 'nobody'"):
        loaded.score_log(rows.assign(user_id=["u0", "nobody", "u1"]))
    # Asked "which of my apps now", an in-context run answers with the user's own apps unless told otherwise.
    now = api.recommend(tmp_path / "run", ["u0"], k=3, context={"place": "work"}, explain=True)[0]
    assert set(now.item_ids) == work_apps
    # ... and explains each by the user's own use of it, not by a KG detour through another of their apps.
    assert all(
        path["relations"] == ["interacted with"] and path["history_item_id"] == app
        for path, app in zip(now.explanations, now.item_ids)
    )
    used = set(place_graph.split.interactions.query("user_id == 'u0'")["item_id"])
    assert (
        not set(api.recommend(tmp_path / "run", ["u0"], k=3, context={"place": "work"}, include_seen=False)[0].item_ids)
        & used
    )
    from click.testing import CliRunner

    from kgrec.cli import main

    shown = CliRunner().invoke(
        main, ["recommend", "--run", str(tmp_path / "run"), "--user", "u0", "-k", "3", "--context", "place=work"]
    )
    assert shown.exit_code == 0, shown.output
    assert all(f"[item {app}]" in shown.output for app in work_apps)
    # A value training never saw (a typo) is answered as unknown, and said so.
    from kgrec.errors import ContextWarning

    with pytest.warns(
        ContextWarning, match=r"place=wrok was not seen in training and reads as unknown \(known: home, work\)"
    ):
        loaded.recommend(["u0"], k=3, context={"place": "wrok"})
    typo = CliRunner().invoke(
        main, ["recommend", "--run", str(tmp_path / "run"), "--user", "u0", "--context", "place=wrok"]
    )
    assert typo.exit_code == 0 and "note: context place=wrok was not seen in training" in typo.output
    # Discovery runs get no repeat term unless asked for.
    assert not repeat_enabled(RunConfig()) and repeat_enabled(RunConfig().override({"model.repeat": "on"}))
    assert not repeat_enabled(RunConfig().override({"eval.task": "in-context", "model.repeat": "off"}))
