"""Uniform negative sampling of (user, positive, negatives) batches from training interactions, seeded."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["NegativeSampler"]


class NegativeSampler:
    """Shuffled batches of training pairs with uniform negatives that the user has not interacted with.

    Negatives come from items that have training interactions. An item nobody interacted with
    (a cold item) is never a negative: otherwise the model would learn that "unseen" means
    "bad" and bury exactly the items that text and KG are there to place.

    Args:
        users: ``(N,)`` user index of each training interaction.
        items: ``(N,)`` item index of each training interaction.
        num_items: Items to draw negatives from.
        seed: Seed of the sampler's own generator (no global RNG is touched).
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, num_items: int, seed: int) -> None:
        self.users, self.items, self.num_items = users.astype(np.int64), items.astype(np.int64), num_items
        self.known = np.unique(self.users * num_items + self.items)  # sorted pair keys
        self.pool = np.unique(self.items)  # candidate negatives
        self.rng = np.random.default_rng(seed)

    def negatives(self, users: np.ndarray, count: int) -> np.ndarray:
        """``(len(users), count)`` items drawn uniformly from the pool, redrawn where the user already has the item."""
        drawn = self.pool[self.rng.integers(0, len(self.pool), size=(len(users), count))]
        for _ in range(20):  # a few rounds suffice unless a user has nearly every item
            keys = users[:, None] * self.num_items + drawn
            position = np.searchsorted(self.known, keys).clip(max=len(self.known) - 1)
            clash = self.known[position] == keys
            if not clash.any():
                break
            drawn[clash] = self.pool[self.rng.integers(0, len(self.pool), size=int(clash.sum()))]
        return drawn

    def epoch(
        self, batch_size: int, num_negatives: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """One pass over the training pairs: ``(users (B,), positives (B,), negatives (B, n), rows (B,))`` batches.

        ``rows`` are the pairs' positions in the training log, to look up their context and rating.
        """
        order = self.rng.permutation(len(self.users))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            users = self.users[batch]
            yield users, self.items[batch], self.negatives(users, num_negatives), batch

    def state(self) -> dict:
        """The generator state, for checkpoints."""
        return dict(self.rng.bit_generator.state)

    def set_state(self, state: dict) -> None:
        """Restore a state from :meth:`state`."""
        self.rng.bit_generator.state = state
