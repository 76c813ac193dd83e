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


def test_features_are_count_shares_and_leave_one_out_takes_the_own_observation_out():
    users, items, tokens = _observations()
    repeat = RepeatUse(num_fields=2).set_counts(
        users, items, tokens, num_users=2, num_items=4, num_tokens=6, unknown=UNKNOWN
    )
    counts = repeat.features(np.array([0]), np.array([[WORK, WEEKDAY]]))[0]  # (K, I): user, item, user x field, field
    assert torch.allclose(counts[0], torch.tensor([3, 2, 0, 0]) / 5)  # the user's own uses, as shares
    assert torch.allclose(counts[1], torch.tensor([3, 2, 1, 0]) / 6)  # everyone's
    assert torch.allclose(counts[2], torch.tensor([3, 0, 0, 0]) / 3)  # the user's uses at work
    assert torch.allclose(counts[3], torch.tensor([3, 1, 0, 0]) / 4)  # the user's uses on weekdays
    assert torch.allclose(counts[4], torch.tensor([3, 0, 0, 0]) / 3)  # everyone's at work
    # User 1's home use left out: the item's own count drops by one; the unknown day was never counted.
    left = repeat.features(np.array([1]), np.array([[HOME, 3]]), leave_out=np.array([2]))[0]
    assert left[:, 2].tolist() == [0, 0, 0, 0, 0, 0]
    assert torch.allclose(
        repeat.features(np.array([1]), np.array([[HOME, 3]]))[0][:, 2], torch.tensor([1, 1 / 6, 1, 0, 1 / 3, 0])
    )


def test_forward_is_the_log_of_the_mixture_of_the_features():
    users, items, tokens = _observations()
    repeat = RepeatUse(num_fields=2).set_counts(users, items, tokens, 2, 4, 6, UNKNOWN)
    with torch.no_grad():
        repeat.logits.copy_(torch.tensor([1.0, 0.3, 2.0, -0.5, 0.7, 0.1]))
    queries, query_tokens = np.array([0, 1, 0]), np.array([[WORK, WEEKDAY], [HOME, 3], [0, WEEKEND]])
    with torch.no_grad():
        expected = repeat.score_features(repeat.features(queries, query_tokens))
    got = repeat(torch.from_numpy(queries), torch.from_numpy(query_tokens))
    assert torch.allclose(got, expected, atol=1e-4)
    # Without context tokens only the user and item terms speak.
    plain = repeat(torch.from_numpy(queries), None)
    mixture = torch.softmax(repeat.logits.detach(), 0)[:2]
    assert torch.allclose(
        plain,
        torch.log1p(torch.einsum("bki,k->bi", repeat.features(queries, query_tokens)[:, :2], mixture) / 1e-10),
        atol=1e-4,
    )


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
    own = repeat.features(users[:1], tokens[:1])[0, 0]
    assert own[items[0]] == own[items[1]]  # the user's own counts alone: a tie
    losses = repeat.fit(users, items, tokens, epochs=3, lr=0.1, seed=0)
    assert losses[-1] < losses[0]
    mixture = torch.softmax(repeat.logits.detach(), 0)
    assert mixture[2] > 0.5 and mixture[2] > 2 * mixture[3]  # the place matters, the day does not
    after = repeat(torch.from_numpy(users[:2]), torch.from_numpy(tokens[:2]))
    assert after[0, items[0]] > after[0, items[1]] and after[1, items[1]] > after[1, items[0]]


def test_counts_must_match_the_fields_it_was_built_for():
    users, items, tokens = _observations()
    with pytest.raises(ValueError, match="2 context fields"):
        RepeatUse(num_fields=2).set_counts(users, items, None, 2, 4)
    with pytest.raises(ValueError, match="no counts"):
        RepeatUse(num_fields=0)(torch.tensor([0]))
    assert repr(RepeatUse(num_fields=2)).startswith("RepeatUse(fields=2, mixture=[0.8")
