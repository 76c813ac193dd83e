"""Property-based tests: random small catalogs and logs through read -> split -> build-graph -> train -> recommend.

Whatever hypothesis generates, the pipeline either works or refuses with kgrec's one-line InputError; it
never crashes, and every split keeps its invariants.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgrec import api
from kgrec.config import RunConfig, SplitConfig
from kgrec.data import read_dataset, split_interactions
from kgrec.errors import InputError
from kgrec.graph import build_graph, save_graph

PROFILE = settings(
    max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def datasets(draw):
    """A catalog of 2-12 items with categories and brands, and a log of 2-60 interactions of 1-9 users."""
    num_items = draw(st.integers(2, 12))
    num_users = draw(st.integers(1, 9))
    names = st.text(alphabet="abcxyz é-", min_size=1, max_size=6).map(str.strip).filter(bool)
    items = pd.DataFrame(
        {
            "item": [f"i{j}" for j in range(num_items)],
            "title": draw(st.lists(names, min_size=num_items, max_size=num_items)),
            "category": draw(st.lists(st.sampled_from(["A", "B", "A|B", ""]), min_size=num_items, max_size=num_items)),
            "brand": draw(st.lists(st.sampled_from(["X", "Y", ""]), min_size=num_items, max_size=num_items)),
        }
    )
    pairs = draw(
        st.lists(st.tuples(st.integers(0, num_users - 1), st.integers(0, num_items - 1)), min_size=2, max_size=60)
    )
    log = pd.DataFrame(
        {
            "user": [f"u{u}" for u, _ in pairs],
            "item": [f"i{i}" for _, i in pairs],
            "rating": draw(st.lists(st.integers(1, 5), min_size=len(pairs), max_size=len(pairs))),
            "timestamp": draw(
                st.lists(st.integers(1_500_000_000, 1_700_000_000), min_size=len(pairs), max_size=len(pairs))
            ),
        }
    )
    return log, items


def _read(tmp_path, log, items):
    log.to_csv(tmp_path / "log.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    return read_dataset(tmp_path / "log.csv", tmp_path / "items.csv", name="random")


@PROFILE
@given(data=datasets(), kind=st.sampled_from(["random", "loo", "cold-items"]), seed=st.integers(0, 2**16))
def test_split_invariants(tmp_path_factory, data, kind, seed):
    dataset = _read(tmp_path_factory.mktemp("split"), *data)
    try:
        split = split_interactions(dataset, SplitConfig(kind=kind, seed=seed))
    except InputError as error:
        assert kind == "cold-items" and "cannot hold out" in error.message, error.message  # refused, not crashed
        return
    log = split.interactions
    # Every (deduplicated) interaction lands in exactly one part.
    assert len(log) == len(dataset.interactions) and set(log["split"]) <= {"train", "valid", "test"}
    assert not log.duplicated(["user_id", "item_id"]).any()
    assert len(split.train) > 0
    if kind == "loo":
        for _, rows in log.groupby("user_id"):
            if len(rows) >= 3:
                # One test and one validation interaction: the user's last two, in time.
                assert (rows["split"] == "test").sum() == 1 and (rows["split"] == "valid").sum() == 1
                test, valid = (rows.loc[rows["split"] == part, "timestamp"].iloc[0] for part in ("test", "valid"))
                assert test >= valid >= rows.loc[rows["split"] == "train", "timestamp"].max()
            else:
                assert (rows["split"] == "train").all()
    if kind == "cold-items":
        assert set(split.cold_items).isdisjoint(split.train["item_id"])
        assert set(split.valid["item_id"]).isdisjoint(split.test["item_id"])
    # Same inputs, same split.
    again = split_interactions(dataset, SplitConfig(kind=kind, seed=seed))
    assert (again.interactions["split"] == log["split"]).all()


@PROFILE
@given(data=datasets(), kind=st.sampled_from(["random", "loo", "cold-items"]))
def test_build_train_recommend_never_crashes(tmp_path_factory, data, kind):
    folder = tmp_path_factory.mktemp("pipeline")
    dataset = _read(folder, *data)
    config = RunConfig().override(
        {
            "graph.split.kind": kind,
            "kge.epochs": 1,
            "kge.dim": 4,
            "kge.eval_share": 0.0,
            "model.dim": 4,
            "model.use_text": False,
            "train.epochs": 1,
            "train.side_epochs": 1,
        }
    )
    try:
        graph = build_graph(dataset, config.graph)
        save_graph(graph, str(folder / "graph"))
        recommender_result = api.train(graph, config, out=folder / "run", graph_dir=folder / "graph", quiet=True)
    except InputError as error:
        # The one refusal random logs meet: a cold-items split with too few items to hold some out.
        assert kind == "cold-items" and "cannot hold out" in error.message, error.message
        return
    users = list(graph.users.ids)[:3]
    for rec in api.recommend(folder / "run", users, k=3):
        seen = set(graph.split.interactions.loc[graph.split.interactions["user_id"] == rec.user_id, "item_id"])
        assert len(rec.item_ids) <= 3 and not seen & set(rec.item_ids)
        assert np.all(np.isfinite(rec.scores)) and rec.scores == sorted(rec.scores, reverse=True)
    metrics = recommender_result.metrics.get("test", {})
    assert all(0.0 <= value <= 1.0 for name, value in metrics.items() if "@" in name)
