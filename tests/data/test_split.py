"""Split invariants: seeded, disjoint, complete, and the right shape for each kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from kgrec.config import SplitConfig
from kgrec.data import Dataset, split_interactions


def _pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["user_id"], frame["item_id"]))


def test_same_seed_same_split_and_other_seed_differs(tiny_dataset):
    first = split_interactions(tiny_dataset, SplitConfig(ratios=(0.6, 0.2, 0.2)))
    again = split_interactions(tiny_dataset, SplitConfig(ratios=(0.6, 0.2, 0.2)))
    other = split_interactions(tiny_dataset, SplitConfig(ratios=(0.6, 0.2, 0.2), seed=7))
    assert first.interactions["split"].tolist() == again.interactions["split"].tolist()
    assert first.interactions["split"].tolist() != other.interactions["split"].tolist()


def test_random_split_per_user_counts(tiny_dataset):
    split = split_interactions(tiny_dataset, SplitConfig(ratios=(0.6, 0.2, 0.2)))
    # Every user has 5 interactions: floor(0.2 * 5) = 1 to valid and to test, 3 to train.
    per_user = split.interactions.groupby(["user_id", "split"], observed=False).size().unstack()
    assert (per_user["train"] == 3).all() and (per_user["valid"] == 1).all() and (per_user["test"] == 1).all()
    assert not _pairs(split.train) & _pairs(split.test)
    assert len(split.interactions) == len(tiny_dataset.interactions)


def test_default_ratio_keeps_small_users_in_train(tiny_dataset):
    split = split_interactions(tiny_dataset)  # 80/10/10: floor(0.1 * 5) = 0
    assert split.counts() == {"train": 40, "valid": 0, "test": 0}


def test_leave_last_out_takes_latest(tiny_dataset):
    split = split_interactions(tiny_dataset, SplitConfig(kind="loo"))
    log = split.interactions
    for _, rows in log.groupby("user_id"):
        latest = rows.sort_values("timestamp")
        assert latest.iloc[-1]["split"] == "test" and latest.iloc[-2]["split"] == "valid"
        assert (latest.iloc[:-2]["split"] == "train").all()


def test_cold_items_never_in_train(tiny_dataset):
    split = split_interactions(tiny_dataset, SplitConfig(kind="cold-items", cold_item_share=0.3))
    assert len(split.cold_items) == 3
    assert not set(split.train["item_id"]) & set(split.cold_items)
    assert set(split.valid["item_id"]).isdisjoint(split.test["item_id"])
    assert set(split.valid["item_id"]) | set(split.test["item_id"]) == set(split.cold_items)


def test_min_rating_keeps_positives_only(tiny_dataset):
    split = split_interactions(tiny_dataset, SplitConfig(min_rating=4))
    assert (split.interactions["rating"] >= 4).all()
    assert len(split.interactions) == int((tiny_dataset.interactions["rating"] >= 4).sum())


logs = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 30), st.integers(0, 10**6)), min_size=1, max_size=200).map(
    lambda rows: (
        pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
        .astype(str)
        .drop_duplicates(["user_id", "item_id"])
    )
)


@settings(max_examples=40, deadline=None)
@given(log=logs, kind=st.sampled_from(["random", "loo", "cold-items"]), seed=st.integers(0, 100))
def test_split_invariants_hold_for_any_log(log, kind, seed):
    log = log.assign(timestamp=log["timestamp"].astype(np.int64)).reset_index(drop=True)
    dataset = Dataset(name="h", interactions=log, items=pd.DataFrame({"item_id": log["item_id"].unique()}))
    if kind == "cold-items" and log["item_id"].nunique() < 3:
        return
    split = split_interactions(dataset, SplitConfig(kind=kind, seed=seed))
    assert len(split.interactions) == len(log)
    assert not _pairs(split.train) & (_pairs(split.valid) | _pairs(split.test))
    assert len(split.train) > 0
    if kind == "cold-items":
        assert set(split.train["item_id"]).isdisjoint(split.cold_items)


def test_split_warnings_say_what_a_user_would_miss(tiny_dataset):
    from kgrec.data.split import split_warnings

    # Five interactions per user: 80/10/10 gives floor(0.5) = 0 to validation and test.
    small = split_interactions(tiny_dataset, SplitConfig())
    text = " ".join(split_warnings(small, tiny_dataset.interactions))
    assert "left valid empty" in text and "left test empty" in text
    fine = split_interactions(tiny_dataset, SplitConfig(ratios=(0.6, 0.2, 0.2)))
    assert split_warnings(fine, tiny_dataset.interactions) == []  # ratings 1-5, every user tested
    clicks = tiny_dataset.interactions.assign(rating=[float(i % 2) for i in range(len(tiny_dataset.interactions))])
    zeros = split_warnings(fine, clicks)
    assert len(zeros) == 1 and "0/1" in zeros[0] and "graph.split.min_rating=1" in zeros[0]
    thresholded = split_interactions(
        Dataset(tiny_dataset.name, clicks, tiny_dataset.items), SplitConfig(ratios=(0.6, 0.2, 0.2), min_rating=1)
    )
    assert not any("0/1" in w for w in split_warnings(thresholded, clicks))


def test_a_thinner_training_part_keeps_validation_and_test(tiny_dataset):
    config = SplitConfig(ratios=(0.6, 0.2, 0.2))
    full = split_interactions(tiny_dataset, config).interactions
    thin = split_interactions(tiny_dataset, config.model_copy(update={"train_fraction": 0.5})).interactions
    held_out = ["valid", "test"]
    key = ["user_id", "item_id", "split"]
    pd.testing.assert_frame_equal(
        full[full["split"].isin(held_out)][key].reset_index(drop=True),
        thin[thin["split"].isin(held_out)][key].reset_index(drop=True),
    )
    kept = thin[thin["split"] == "train"].groupby("user_id").size()
    before = full[full["split"] == "train"].groupby("user_id").size()
    assert (kept == np.ceil(before * 0.5)).all()  # rounded up: every user keeps at least one
    assert set(thin[thin["split"] == "train"]["item_id"] + thin[thin["split"] == "train"]["user_id"]) <= set(
        full[full["split"] == "train"]["item_id"] + full[full["split"] == "train"]["user_id"]
    )
    again = split_interactions(tiny_dataset, config.model_copy(update={"train_fraction": 0.5})).interactions
    pd.testing.assert_frame_equal(thin, again)
