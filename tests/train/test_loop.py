"""The training loop and run directories on the tiny graph: learning, repeatability, saving and loading."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from kgrec import api
from kgrec.config import GraphConfig, RunConfig, SplitConfig
from kgrec.errors import InputError
from kgrec.graph import build_graph
from kgrec.inference import Recommender
from kgrec.train import NegativeSampler
from tests.conftest import TINY_TRAINING

FAST = {**TINY_TRAINING, "train.epochs": 12, "train.eval_every": 2}


@pytest.fixture
def graph(tiny_dataset):
    return build_graph(tiny_dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))))


def test_sampler_never_returns_known_or_cold_items():
    users = np.array([0, 0, 1, 1, 1])
    items = np.array([0, 1, 2, 3, 4])
    sampler = NegativeSampler(users, items, num_items=7, seed=0)  # items 5 and 6 are cold
    negatives = sampler.negatives(np.zeros(500, dtype=np.int64), 3)
    assert set(np.unique(negatives).tolist()) == {2, 3, 4}
    batches = list(sampler.epoch(batch_size=3, num_negatives=2))
    assert sorted(np.concatenate([b[1] for b in batches]).tolist()) == [0, 1, 2, 3, 4]


def test_loss_decreases_and_run_is_repeatable(graph, tmp_path):
    config = RunConfig().override({**FAST, "graph.split.ratios": [0.6, 0.2, 0.2], "model.use_text": False})
    first_result = api.train(graph, config, out=tmp_path / "one", quiet=True)
    first = first_result.recommender
    second_result = api.train(graph, config, out=tmp_path / "two", quiet=True)
    second = second_result.recommender
    history = pd.read_csv(tmp_path / "one" / "history.csv")
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    assert first_result.metrics == second_result.metrics
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)


def test_run_directory_round_trip(graph, tmp_path):
    config = RunConfig().override({**FAST, "model.fusion": "attention"})
    trained = api.train(graph, config, out=tmp_path / "run", quiet=True).recommender
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.yaml", "run.json", "model.pt", "metrics.json", "history.csv", "curve.png", "graph"} <= names
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics) >= {"valid", "test"} and "ndcg@20" in metrics["test"] and "auc" in metrics["test"]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert set(run["timings"]) >= {"kge_seconds", "text_seconds", "train_seconds", "eval_test_seconds", "peak_rss_mib"}
    loaded = Recommender.load(tmp_path / "run")
    assert loaded.recommend(["u1", "u6"], k=3) == trained.recommend(["u1", "u6"], k=3)
    assert loaded.evaluate("test").metrics == pytest.approx(metrics["test"])
    # The loaded model holds the checkpoint's own tensors (mapped, copy on write): changing them in memory leaves
    # model.pt as it was, and the parameters stay trainable (kgrec update trains a loaded run further).
    checkpoint = (tmp_path / "run" / "model.pt").read_bytes()
    trainable = {name for name, value in trained.model.named_parameters() if value.requires_grad}
    assert {name for name, value in loaded.model.named_parameters() if value.requires_grad} == trainable
    with torch.no_grad():
        for value in loaded.model.state_dict().values():
            if value.is_floating_point():
                value.add_(1.0)
    assert (tmp_path / "run" / "model.pt").read_bytes() == checkpoint
    assert Recommender.load(tmp_path / "run").recommend(["u1", "u6"], k=3) == trained.recommend(["u1", "u6"], k=3)


def test_recommend_skips_everything_the_user_has_seen(graph, tmp_path):
    trained = api.train(graph, RunConfig().override(FAST), quiet=True).recommender
    seen = set(graph.split.interactions.loc[graph.split.interactions["user_id"] == "u1", "item_id"])
    (rec,) = trained.recommend(["u1"], k=10)
    assert not seen & set(rec.item_ids)
    assert len(rec.item_ids) == 10 - len(seen)  # only unseen items, even when k asks for more
    with pytest.raises(InputError, match="unknown user id 'nobody'"):
        trained.recommend(["nobody"], k=3)
    # The same ranking as a DataFrame, and the same scores for the given pairs.
    frame = trained.recommend(["u1", "u2"], k=3, as_frame=True)
    assert list(frame.columns) == ["user_id", "rank", "item_id", "title", "score"]
    assert frame.loc[frame["user_id"] == "u1", "item_id"].tolist() == rec.item_ids[:3]
    assert frame["rank"].tolist() == [1, 2, 3, 1, 2, 3]
    assert trained.score(["u1"] * len(rec.item_ids), rec.item_ids) == pytest.approx(rec.scores, rel=1e-5)
    with pytest.raises(InputError, match="give one item per user"):
        trained.score(["u1", "u2"], ["1"])
    with pytest.raises(InputError, match="unknown item id 'nothing'"):
        trained.score(["u1"], ["nothing"])


def test_exported_vectors_are_the_ones_the_dot_scorer_compares(graph):
    trained = api.train(
        graph, RunConfig().override({**FAST, "model.linear": "none", "model.use_text": False}), quiet=True
    ).recommender
    items, users = trained.item_vectors(), trained.user_vectors()
    assert list(items.index) == list(graph.items.ids) and list(users.index) == list(graph.users.ids)
    assert items.shape[1] == users.shape[1] == 8
    pairs_users, pairs_items = ["u1", "u3", "u3"], ["9", "1", "10"]
    expected = [float(users.loc[u] @ items.loc[i]) for u, i in zip(pairs_users, pairs_items)]
    assert trained.score(pairs_users, pairs_items) == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_bad_names_fail_before_training(graph):
    with pytest.raises(InputError, match="unknown model.fusion 'fancy'.*gated"):
        api.train(graph, RunConfig().override({"model.fusion": "fancy"}))
    with pytest.raises(InputError, match="select_metric"):
        api.train(graph, RunConfig().override({"eval.select_metric": "ndcg@5"}))


def test_gated_fusion_weights_are_inspectable(graph):
    trained = api.train(graph, RunConfig().override(FAST), quiet=True).recommender
    weights = trained.fusion_weights()
    assert list(weights.index) == list(graph.items.ids)
    assert ((weights > 0) & (weights < 1)).all()


def test_new_user_from_history_without_retraining(graph, tmp_path):
    # Users 1-4 watch items 1-5 and users 5-8 items 5-9: a new user who watched 1 and 2 belongs to the first group.
    config = RunConfig().override({**FAST, "model.use_text": False, "model.dim": 16, "train.epochs": 100})
    recommender = api.train(graph, config, quiet=True).recommender
    rec = recommender.recommend_for_history(["1", "2"], k=3)
    assert rec.user_id == "new" and len(rec.item_ids) == 3
    assert not {"1", "2"} & set(rec.item_ids)
    assert set(rec.item_ids) <= {"3", "4", "5", "10"}  # its own group (10 is the group's cold item)
    other = recommender.recommend_for_history(["7", "8"], k=2)
    assert set(other.item_ids) <= {"5", "6", "9"}
    with pytest.raises(InputError, match="unknown item id 'nope' in the history"):
        recommender.recommend_for_history(["1", "nope"])
    with pytest.raises(InputError, match="at least one item id"):
        recommender.recommend_for_history([])


def _new_items(tmp_path, rows):
    from kgrec.data import read_catalog

    path = tmp_path / "new.csv"
    pd.DataFrame(rows, columns=["item", "title", "description", "category", "brand"]).to_csv(path, index=False)
    return read_catalog(path)


@pytest.mark.parametrize("propagation", ["lightgcn", "knowledge"])
def test_new_items_without_retraining(graph, tmp_path, propagation):
    config = RunConfig().override({**FAST, "model.dim": 16, "model.propagation": propagation})
    recommender = api.train(graph, config, quiet=True).recommender
    users = torch.arange(len(graph.users))
    before = recommender.score_function()(users)
    rows = _new_items(tmp_path, [("11", "Kappa", "A cold film nobody watched", "A", "StudioX|StudioZ")])
    extended = recommender.add_items(rows)
    after = extended.score_function()(users)
    assert after.shape == (len(graph.users), len(graph.items) + 1)
    assert torch.allclose(after[:, : len(graph.items)], before, atol=1e-5)  # existing items untouched
    assert extended.graph.stats["new_items"] == {"items": 1, "links": 2, "unknown_entities": 1}
    # Its KG row is the mean of its category's and brand's PyKEEN rows; its text row is item 10's (same text).
    model, old = extended.model, len(graph.items)
    entity_rows = [old + 1 + graph.entities.index_of(e) for e in ("A", "StudioX")]
    assert torch.allclose(model.kg_emb[old], model.kg_emb[entity_rows].mean(0))
    assert torch.allclose(model.text_emb[old], model.text_emb[graph.items.index_of("10")], atol=1e-5)
    ranked = extended.recommend(["u1"], k=len(graph.items) + 1)[0]
    assert "11" in ranked.item_ids
    with pytest.raises(InputError, match="new item id '3' is already in the graph"):
        recommender.add_items(_new_items(tmp_path, [("3", "Again", "", "A", "")]))


def test_new_item_with_the_same_text_scores_like_a_cold_twin(graph, tmp_path):
    # Text only: a new item with item 10's text and no interactions gets item 10's learned scores exactly, and
    # EASE text-row weights that rank users as item 10's do (not the same numbers: item 10 is one of its regressors).
    settings = {**FAST, "model.use_kg": False, "model.ease_text_weight": [3.0]}
    recommender = api.train(graph, RunConfig().override(settings), quiet=True).recommender
    extended = recommender.add_items(
        _new_items(tmp_path, [("11", "Kappa", "A cold film nobody watched", "A", "StudioX")])
    )
    users, twin = torch.arange(len(graph.users)), graph.items.index_of("10")
    learned, linear = extended.model.score_parts(extended.representations(), extended.prop_graph, users)
    assert torch.allclose(learned[:, -1], learned[:, twin], atol=1e-5)
    assert extended.model.ease.text_weight == 3.0 and linear[:, -1].abs().min() > 0
    assert torch.corrcoef(torch.stack([linear[:, -1], linear[:, twin]]))[0, 1] > 0.99


def test_selection_on_unseen_candidates_for_cold_start(tiny_dataset, tmp_path):
    graph = build_graph(tiny_dataset, GraphConfig(split=SplitConfig(kind="cold-items", cold_item_share=0.3)))
    config = RunConfig().override({**FAST, "model.linear": "none", "eval.candidates": "unseen"})
    recommender = api.train(graph, config, out=tmp_path / "run", quiet=True).recommender
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    # The state kept is the best by validation ranked among unseen items, as the config asks.
    assert history["valid"].max() == pytest.approx(
        recommender.evaluate("valid", candidates="unseen").metrics["ndcg@10"]
    )


def test_batched_and_faiss_recommendations_match_exact_ranking(graph, tmp_path):
    pytest.importorskip("faiss")
    config = RunConfig().override({**FAST, "model.linear": "none", "model.use_text": False, "eval.batch_size": 3})
    recommender = api.train(graph, config, quiet=True).recommender
    users = list(graph.users.ids)
    batched = recommender.recommend(users, k=4)  # three batches of three users
    one_by_one = [recommender.recommend([user], k=4)[0] for user in users]
    assert [r.item_ids for r in batched] == [r.item_ids for r in one_by_one]
    approximate = recommender.recommend(users, k=4, retrieval="faiss")
    # HNSW over ten items finds the exact neighbours; seen items are skipped as in exact ranking.
    assert [r.item_ids for r in approximate] == [r.item_ids for r in batched]
    blended = api.train(graph, RunConfig().override({**FAST, "model.use_text": False}), quiet=True).recommender
    if float(blended.model.ease.blend) != 0.0:
        with pytest.raises(InputError, match="no blended EASE term"):
            blended.recommend(users[:1], retrieval="faiss")


def test_sampled_batching_learns_and_reports_what_it_cannot_do(graph, tmp_path):
    settings = {
        **FAST,
        "model.linear": "none",
        "model.use_text": False,
        "train.epochs": 30,
        "train.batch_size": 8,
        "train.batching": "sampled",
        "train.fanout": [2, 2, 2],
        "model.propagation": "lightgcn",
    }
    sampled_result = api.train(graph, RunConfig().override(settings), out=tmp_path / "run", quiet=True)
    sampled = sampled_result.recommender
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    full_result = api.train(graph, RunConfig().override({**settings, "train.batching": "full"}), quiet=True)
    full = full_result.recommender
    assert not torch.equal(sampled.model.user_emb.weight, full.model.user_emb.weight)  # another path, same goal
    assert abs(sampled_result.metrics["valid"]["ndcg@10"] - full_result.metrics["valid"]["ndcg@10"]) < 0.2
    with pytest.raises(InputError, match="full-batch"):
        api.train(graph, RunConfig().override({**settings, "train.tasks": ["rank", "rating"]}), quiet=True)
    for propagation in ("relational", "knowledge", "auto"):  # auto is knowledge here: the graph has triples
        with pytest.raises(
            InputError, match=r"lightgcn propagation only: (relational|knowledge) propagates over the whole KG"
        ):
            api.train(graph, RunConfig().override({**settings, "model.propagation": propagation}), quiet=True)
    # batching=auto samples only above sampled_above edges, so the knowledge default still trains small graphs.
    api.train(
        graph,
        RunConfig().override({**settings, "model.propagation": "auto", "train.batching": "auto", "train.epochs": 1}),
        quiet=True,
    )


def test_a_log_without_a_catalog_trains_without_a_text_view(tiny_files, tmp_path):
    from kgrec.data import read_dataset

    graph = build_graph(
        read_dataset(tiny_files["interactions"]), GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2)))
    )
    trained_result = api.train(
        graph, RunConfig().override(FAST), out=tmp_path / "run", quiet=True
    )  # FAST asks for text
    trained = trained_result.recommender
    assert trained.config.model.use_text is False and trained.model.text_emb is None
    assert (
        "no titles, descriptions or categories" in trained_result.notes[0]
        and "no KG triples" in trained_result.notes[1]
    )
    assert trained.config.model.use_kg is False and trained.model.kg_emb is None
    assert json.loads((tmp_path / "run" / "run.json").read_text())["notes"] == trained_result.notes
    assert "use_text: false" in (tmp_path / "run" / "config.yaml").read_text()


def test_a_callback_sees_every_epoch_and_can_stop_training(graph):
    from kgrec.train import TrainingCallback

    seen = []

    class StopAfterTwo(TrainingCallback):
        def on_epoch_end(self, state, row):
            seen.append((state.stage, row["epoch"], "valid" in row))  # early stopping has validated before it
            if state.epoch == 2:
                state.stop = True

    config = RunConfig().override({**FAST, "model.use_text": False, "train.schedule": "joint"})  # eval_every 2
    api.train(graph, config, quiet=True, callbacks=[StopAfterTwo()])
    assert seen == [("joint", 1, False), ("joint", 2, True)]


def test_a_diverging_run_stops_with_one_line_and_saves_nothing(graph, tmp_path):
    from kgrec.errors import DivergedError

    config = RunConfig().override({**FAST, "train.lr": 1e37, "model.use_text": False})
    with pytest.raises(
        DivergedError, match=r"training diverged in the \w+ stage at epoch \d+: .*train.lr=0.005"
    ) as caught:
        api.train(graph, config, out=tmp_path / "run", quiet=True)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "run").exists()  # no metrics of NaN scores, no half a run


def test_metrics_are_never_computed_from_non_finite_scores():
    from kgrec.errors import DivergedError
    from kgrec.evaluate import evaluate_ranking, interaction_matrix

    truth = interaction_matrix(np.arange(3), np.arange(3), 3, 4)
    exclude = interaction_matrix(np.array([0]), np.array([3]), 3, 4)
    evaluate_ranking(lambda users: torch.zeros(len(users), 4), truth, exclude)  # finite scores evaluate
    for bad in (float("nan"), float("inf")):
        with pytest.raises(DivergedError, match="not finite"):
            evaluate_ranking(lambda users, bad=bad: torch.full((len(users), 4), bad), truth, exclude)
