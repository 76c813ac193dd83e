"""The repeat-use term against hand-counted features, its leave-one-out fit, and its context interaction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.models import RepeatUse

# Two fields with global tokens: field 0 ("place") tokens 0 (unknown), 1 (home), 2 (work); field 1 ("day") 3 (unknown),
# 4 (weekday), 5 (weekend).
UNKNOWN = np.array([0, 3])
HOME, WORK, WEEKDAY, WEEKEND = 1, 2, 4, 5


def _observations():
    """User 0 opens item 0 at work on weekdays (3 times), item 1 at home (twice: weekday, weekend); user 1 item 2 at home."""
    users = np.array([0, 0, 0, 0, 0, 1])
    items = np.array([0, 0, 0, 1, 1, 2])
    tokens = np.array([[WORK, WEEKDAY]] * 3 + [[HOME, WEEKDAY], [HOME, WEEKEND], [HOME, 0 + 3]])
    return users, items, tokens


def test_features_are_the_log_counts_and_leave_one_out_takes_the_own_observation_out():
    users, items, tokens = _observations()
    repeat = RepeatUse(num_fields=2).set_counts(users, items, tokens, num_users=2, num_items=4, num_tokens=6, unknown=UNKNOWN)
    features = repeat.features(np.array([0]), np.array([[WORK, WEEKDAY]]))[0]  # (K, I): user, item, user x field, field
    counts = torch.expm1(features)
    assert counts[0].tolist() == [3, 2, 0, 0]  # the user's own uses
    assert counts[1].tolist() == [3, 2, 1, 0]  # everyone's
    assert counts[2].tolist() == [3, 0, 0, 0]  # the user's uses at work
    assert counts[3].tolist() == [3, 1, 0, 0]  # the user's uses on weekdays
    assert counts[4].tolist() == [3, 0, 0, 0]  # everyone's at work
    # User 1's home use left out: the item's own count drops by one; the unknown day was never counted.
    left = torch.expm1(repeat.features(np.array([1]), np.array([[HOME, 3]]), leave_out=np.array([2]))[0])
    assert left[:, 2].tolist() == [0, 0, 0, 0, 0, 0]
    assert torch.expm1(repeat.features(np.array([1]), np.array([[HOME, 3]]))[0])[:, 2].tolist() == [1, 1, 1, 0, 1, 0]


def test_forward_is_the_weighted_sum_of_the_features():
    users, items, tokens = _observations()
    repeat = RepeatUse(num_fields=2).set_counts(users, items, tokens, 2, 4, 6, UNKNOWN)
    with torch.no_grad():
        repeat.weight.copy_(torch.tensor([1.0, 0.3, 2.0, -0.5, 0.7, 0.1]))
    queries, query_tokens = np.array([0, 1, 0]), np.array([[WORK, WEEKDAY], [HOME, 3], [0, WEEKEND]])
    expected = torch.einsum("bki,k->bi", repeat.features(queries, query_tokens), repeat.weight.detach())
    got = repeat(torch.from_numpy(queries), torch.from_numpy(query_tokens))
    assert torch.allclose(got, expected, atol=1e-5)
    # Without context tokens only the user and item terms speak.
    plain = repeat(torch.from_numpy(queries), None)
    assert torch.allclose(plain, torch.einsum("bki,k->bi", repeat.features(queries, query_tokens)[:, :2], repeat.weight[:2].detach()))


def test_fit_learns_that_the_context_picks_the_item():
    """Every user uses two items equally often, one only at work and one only at home: the user's counts tie the two,
    the user-in-place counts tell them apart, and the fit must learn to weigh them."""
    rng = np.random.default_rng(0)
    users, items, tokens = [], [], []
    for user in range(40):
        work_item, home_item = rng.choice(10, 2, replace=False)
        for day in (WEEKDAY, WEEKEND) * 3:
            users += [user, user]
            items += [work_item, home_item]
            tokens += [[WORK, day], [HOME, day]]
    users, items, tokens = np.array(users), np.array(items), np.array(tokens)
    repeat = RepeatUse(num_fields=2).set_counts(users, items, tokens, 40, 10, 6, UNKNOWN)
    before = repeat(torch.from_numpy(users[:2]), torch.from_numpy(tokens[:2]))
    assert before[0, items[0]] == before[0, items[1]]  # the user's own counts alone: a tie
    losses = repeat.fit(users, items, tokens, epochs=3, lr=0.1, seed=0)
    assert losses[-1] < losses[0]
    place_weight = float(repeat.weight[2])
    assert place_weight > 0.5 and place_weight > abs(float(repeat.weight[3]))  # the place matters, the day does not
    after = repeat(torch.from_numpy(users[:2]), torch.from_numpy(tokens[:2]))
    assert after[0, items[0]] > after[0, items[1]] and after[1, items[1]] > after[1, items[0]]


def test_counts_must_match_the_fields_it_was_built_for():
    users, items, tokens = _observations()
    with pytest.raises(ValueError, match="2 context fields"):
        RepeatUse(num_fields=2).set_counts(users, items, None, 2, 4)
    with pytest.raises(ValueError, match="no counts"):
        RepeatUse(num_fields=0)(torch.tensor([0]))
    assert "RepeatUse(fields=2, weights=[1, 0, 0, 0, 0, 0]) x 0" == repr(RepeatUse(num_fields=2))
