"""Seeded train/validation/test splits of a Dataset's interactions: random, leave-last-out, cold items."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kgrec.config import SplitConfig
from kgrec.data.dataset import Dataset
from kgrec.errors import InputError

__all__ = ["Split", "split_interactions", "SPLIT_NAMES", "GIVEN_SPLIT_COLUMN"]

SPLIT_NAMES = ("train", "valid", "test")
# A log column holding a dataset's own split (train/valid/test), read by the 'given' split kind.
GIVEN_SPLIT_COLUMN = "given_split"


@dataclass(frozen=True)
class Split:
    """Interactions labelled ``train``, ``valid`` or ``test`` in a ``split`` column.

    Attributes:
        interactions: The dataset's interactions (positives only) with a categorical ``split`` column.
        config: The :class:`~kgrec.config.SplitConfig` that produced it.
        cold_items: For ``cold-items`` splits, the item ids held out of training.
    """

    interactions: pd.DataFrame
    config: SplitConfig
    cold_items: tuple[str, ...] = ()

    def part(self, name: str) -> pd.DataFrame:
        """The interactions of one part (``train``, ``valid`` or ``test``)."""
        return self.interactions[self.interactions["split"] == name]

    @property
    def train(self) -> pd.DataFrame:
        """Training interactions: the only ones any propagation graph may contain."""
        return self.part("train")

    @property
    def valid(self) -> pd.DataFrame:
        """Validation interactions, for early stopping and model selection."""
        return self.part("valid")

    @property
    def test(self) -> pd.DataFrame:
        """Test interactions, for the final figures only."""
        return self.part("test")

    def counts(self) -> dict[str, int]:
        """Number of interactions per part."""
        return {name: int((self.interactions["split"] == name).sum()) for name in SPLIT_NAMES}


def _labels(codes: np.ndarray) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=list(SPLIT_NAMES))


def _random(log: pd.DataFrame, config: SplitConfig, rng: np.random.Generator) -> np.ndarray:
    # Shuffle within each user, then cut by ratio as RecBole does: valid and test get
    # floor(share * n) each and train keeps the rest, so small users stay in train.
    order = np.lexsort((rng.random(len(log)), log["user_id"].to_numpy()))
    users = log["user_id"].to_numpy()[order]
    sizes = pd.Series(users).groupby(users, sort=False).transform("size").to_numpy()
    rank = pd.Series(users).groupby(users, sort=False).cumcount().to_numpy()
    num_valid = np.floor(config.ratios[1] * sizes).astype(int)
    num_test = np.floor(config.ratios[2] * sizes).astype(int)
    codes_sorted = np.where(rank < sizes - num_valid - num_test, 0, np.where(rank < sizes - num_test, 1, 2))
    codes = np.empty(len(log), dtype=np.int8)
    codes[order] = codes_sorted
    return codes


def _leave_last_out(log: pd.DataFrame) -> np.ndarray:
    if "timestamp" not in log:
        raise InputError("split kind 'loo' needs a timestamp column in the interaction log")
    # Ties in time keep file order, so the split is a pure function of the file.
    order = np.lexsort((np.arange(len(log)), log["timestamp"].to_numpy(), log["user_id"].to_numpy()))
    users = pd.Series(log["user_id"].to_numpy()[order])
    sizes = users.groupby(users, sort=False).transform("size").to_numpy()
    from_end = sizes - 1 - users.groupby(users, sort=False).cumcount().to_numpy()
    # Users with fewer than three interactions cannot give one to each part; they stay in train.
    codes_sorted = np.where(sizes < 3, 0, np.select([from_end == 0, from_end == 1], [2, 1], 0))
    codes = np.empty(len(log), dtype=np.int8)
    codes[order] = codes_sorted
    return codes


def _cold_items(log: pd.DataFrame, config: SplitConfig, rng: np.random.Generator) -> tuple[np.ndarray, tuple[str, ...]]:
    items = np.array(sorted(pd.unique(log["item_id"])))
    num_cold = max(2, int(round(config.cold_item_share * len(items))))
    if num_cold >= len(items):
        raise InputError(f"cannot hold out {num_cold} of {len(items)} items and still train")
    cold = rng.permutation(items)[:num_cold]
    # Half the held-out items validate, half test, so model selection never sees test items.
    valid_items, test_items = set(cold[: num_cold // 2]), set(cold[num_cold // 2 :])
    item_ids = log["item_id"]
    codes = np.where(item_ids.isin(valid_items), 1, np.where(item_ids.isin(test_items), 2, 0)).astype(np.int8)
    return codes, tuple(sorted(cold))


def _given(log: pd.DataFrame, config: SplitConfig, rng: np.random.Generator) -> np.ndarray:
    """The dataset's own split; without validation rows, ``valid_share`` of each user's training part validates.

    Per user, round(share * n) of its n training interactions (never all of them) are drawn at random.
    """
    if GIVEN_SPLIT_COLUMN not in log:
        raise InputError(
            f"split kind 'given' needs the dataset's own split: a {GIVEN_SPLIT_COLUMN} column (train/valid/test) in the log, "
            "as a KGAT/KGIN folder provides"
        )
    given = log[GIVEN_SPLIT_COLUMN].astype(str).str.strip().str.lower()
    unknown = sorted(set(given) - set(SPLIT_NAMES))
    if unknown:
        raise InputError(f"{GIVEN_SPLIT_COLUMN} holds '{unknown[0]}'; its values are train, valid and test")
    codes = given.map({name: i for i, name in enumerate(SPLIT_NAMES)}).to_numpy(np.int8)
    if (codes == 1).any() or config.valid_share == 0:
        return codes
    train_rows = np.flatnonzero(codes == 0)
    users = log["user_id"].to_numpy()[train_rows]
    order = np.lexsort((rng.random(len(train_rows)), users))
    sorted_users = pd.Series(users[order])
    sizes = sorted_users.groupby(sorted_users, sort=False).transform("size").to_numpy()
    rank = sorted_users.groupby(sorted_users, sort=False).cumcount().to_numpy()
    num_valid = np.minimum(sizes - 1, np.floor(config.valid_share * sizes + 0.5).astype(int))
    codes[train_rows[order[rank < num_valid]]] = 1
    return codes


def split_warnings(split: Split, log: pd.DataFrame) -> list[str]:
    """What a user should know about a split before training on it: empty parts, users left out of evaluation,
    and a 0/1 log whose zeros count as positives. ``log`` is the dataset's interaction log before any threshold."""
    warnings = []
    if split.config.kind != "given":
        for part in ("valid", "test"):
            if not len(split.part(part)):
                warnings.append(
                    f"warning: the {split.config.kind} split left {part} empty"
                    + (
                        f" (each user gives floor({split.config.ratios[1 if part == 'valid' else 2]:g} x n) interactions to it: "
                        "users need enough interactions)"
                        if split.config.kind == "random"
                        else ""
                    )
                )
        users = split.interactions["user_id"].nunique()
        tested = split.test["user_id"].nunique()
        if len(split.test) and tested < users:
            warnings.append(
                f"warning: {users - tested:,} of {users:,} users ({(users - tested) / users:.0%}) have no test interaction "
                "(too few interactions for their share): they are trained on but never evaluated"
            )
    if split.config.min_rating is None and "rating" in log:
        ratings = log["rating"].dropna()
        zeros = int((ratings == 0).sum())
        if zeros and ratings.isin((0, 1)).all():
            warnings.append(
                f"warning: the ratings are 0/1 and {zeros:,} rows are 0, yet every row counts as a positive; "
                "if 0 means 'not clicked', set graph.split.min_rating=1"
            )
    return warnings


def split_interactions(dataset: Dataset, config: SplitConfig | None = None) -> Split:
    """Split a dataset's interactions into train, validation and test.

    Args:
        dataset: The validated dataset.
        config: Kind, ratios, seed and optional rating threshold for positives.

    Returns:
        A :class:`Split`; the same dataset and config always give the same split.
    """
    config = config or SplitConfig()
    log = dataset.interactions
    if config.min_rating is not None:
        if "rating" not in log:
            raise InputError("split.min_rating is set but the interaction log has no rating column")
        log = log[log["rating"] >= config.min_rating]
        if log.empty:
            raise InputError(f"no interaction has a rating of at least {config.min_rating}")
    log = log.reset_index(drop=True)
    rng = np.random.default_rng(config.seed)
    cold: tuple[str, ...] = ()
    if config.kind == "random":
        codes = _random(log, config, rng)
    elif config.kind == "loo":
        codes = _leave_last_out(log)
    elif config.kind == "given":
        codes = _given(log, config, rng)
    else:
        codes, cold = _cold_items(log, config, rng)
    split = log.assign(split=_labels(codes))
    if config.train_fraction < 1.0:
        split = _thin_training(split, config.train_fraction, np.random.default_rng([config.seed, 1]))
    return Split(split, config, cold)


def _thin_training(log: pd.DataFrame, fraction: float, rng: np.random.Generator) -> pd.DataFrame:
    """Keep ``fraction`` of each user's training interactions (rounded up: at least one), drawn by ``rng``, which is
    not the split's own generator, so validation and test are those of the full split whatever the fraction."""
    train = np.flatnonzero((log["split"] == "train").to_numpy())
    order = train[rng.permutation(len(train))]
    users = log["user_id"].to_numpy()[order]
    rank = pd.Series(np.ones(len(order), dtype=np.int64)).groupby(users).cumsum().to_numpy()  # 1, 2, ... per user
    sizes = pd.Series(users).map(pd.Series(users).value_counts()).to_numpy()
    dropped = order[rank > np.ceil(sizes * fraction)]
    return log.drop(index=log.index[dropped]).reset_index(drop=True)
