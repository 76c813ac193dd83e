"""The KGAT / KGIN dataset layout, used by most knowledge-graph recommendation papers, read into a Dataset.

A folder holds ``train.txt`` and ``test.txt`` (one line per user: ``user item item ...``, remapped
integer ids), ``kg_final.txt`` (``head relation tail``, integer entity ids; ids below the number of
items *are* the items) and, optionally, ``item_list.txt``, ``entity_list.txt`` and
``relation_list.txt`` (``org_id remap_id ...`` with a header line). The given test set is kept: every
interaction carries ``given_split`` (``train`` or ``test``), which the ``given`` split kind reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data.dataset import Dataset
from kgrec.data.split import GIVEN_SPLIT_COLUMN
from kgrec.errors import InputError

__all__ = ["read_kgat_dir", "read_user_lines", "pair_checksum"]


def _integers(tokens: list[str], path: Path, line: int) -> list[int]:
    try:
        values = [int(token) for token in tokens]
    except ValueError:
        bad = next(t for t in tokens if not t.lstrip("-").isdigit())
        raise InputError(f"'{bad}' is not an integer id", path, line) from None
    if any(v < 0 for v in values):
        raise InputError(f"id {min(values)} is negative", path, line)
    return values


def read_user_lines(path: str | Path) -> pd.DataFrame:
    """``user item item ...`` lines as a ``user, item`` int64 frame (repeated pairs once; a user alone on a line has none).

    Raises:
        InputError: a missing file, a token that is no integer id, a user on two lines.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path)
    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    seen: dict[int, int] = {}
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            tokens = text.split()
            if not tokens:
                continue
            values = _integers(tokens, path, number)
            if values[0] in seen:
                raise InputError(
                    f"user {values[0]} has a second line (the first is line {seen[values[0]]})", path, number
                )
            seen[values[0]] = number
            row = np.unique(np.asarray(values[1:], dtype=np.int64))
            users.append(np.full(len(row), values[0], dtype=np.int64))
            items.append(row)
    if not seen:
        raise InputError("the file has no user lines", path)
    return pd.DataFrame({"user": np.concatenate(users), "item": np.concatenate(items)})


def pair_checksum(pairs: pd.DataFrame) -> str:
    """sha256 of the sorted ``user<TAB>item`` lines joined by newlines: the same for any order of lines and items."""
    import hashlib

    ordered = pairs.sort_values(["user", "item"], kind="stable")
    text = "\n".join(ordered["user"].astype(str) + "\t" + ordered["item"].astype(str))
    return hashlib.sha256(text.encode()).hexdigest()


def _id_list(path: Path) -> dict[int, str]:
    """``remap_id -> org_id`` from an ``org_id remap_id ...`` list with a header line."""
    names: dict[int, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            tokens = text.split()
            if number == 1 or not tokens:
                continue
            if len(tokens) < 2:
                raise InputError("expected 'org_id remap_id'", path, number)
            names[_integers([tokens[1]], path, number)[0]] = tokens[0]
    return names


def _read_triples(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError("no such file", path)
    try:
        triples = np.loadtxt(path, dtype=np.int64, ndmin=2)
    except ValueError as error:
        raise InputError(f"expected three integer ids per line ({' '.join(str(error).split())[:120]})", path) from None
    if triples.shape[1] != 3:
        raise InputError(f"expected three ids per line (head relation tail), found {triples.shape[1]}", path)
    if len(triples) and triples.min() < 0:
        raise InputError("a negative id", path, int(np.flatnonzero((triples < 0).any(1))[0]) + 1)
    return np.unique(triples, axis=0)


def read_kgat_dir(folder: str | Path, name: str | None = None) -> Dataset:
    """Read a KGAT/KGIN-layout folder into a :class:`Dataset` whose interactions keep the given test set.

    Item ids are the remapped integers as strings (``"0"`` ... ``"30039"``), so KG entity *i* below the
    number of items is item *i*, as in the layout; other entities keep their integer id. Relation names
    come from ``relation_list.txt`` when present. The catalog has no text (the layout has none).

    Raises:
        InputError: naming the file and line of the first problem; also a (user, item) pair in both train
            and test, which would evaluate a model on its own training data.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("no such folder (a KGAT/KGIN dataset folder holds train.txt, test.txt, kg_final.txt)", folder)
    train, test = read_user_lines(folder / "train.txt"), read_user_lines(folder / "test.txt")
    both = train.merge(test, on=["user", "item"])
    if len(both):
        first = both.iloc[0]
        raise InputError(
            f"user {first['user']} has item {first['item']} in both train and test ({len(both):,} pairs like this)",
            folder / "test.txt",
        )
    triples = _read_triples(folder / "kg_final.txt")
    item_names = _id_list(folder / "item_list.txt") if (folder / "item_list.txt").is_file() else {}
    if item_names:
        num_items = max(item_names) + 1
    else:  # without item_list.txt, the items are those the pairs name
        num_items = int(max(train["item"].max(), test["item"].max())) + 1
    for part, frame in (("train.txt", train), ("test.txt", test)):
        if (frame["item"] >= num_items).any():
            raise InputError(
                f"item {int(frame['item'].max())} is beyond the {num_items:,} items of item_list.txt", folder / part
            )
    relation_names = _id_list(folder / "relation_list.txt") if (folder / "relation_list.txt").is_file() else {}
    relations = pd.Series(triples[:, 1]).map(lambda r: relation_names.get(int(r), f"r{r}"))
    log = pd.concat(
        [train.assign(**{GIVEN_SPLIT_COLUMN: "train"}), test.assign(**{GIVEN_SPLIT_COLUMN: "test"})], ignore_index=True
    )
    interactions = pd.DataFrame(
        {
            "user_id": log["user"].astype(str),
            "item_id": log["item"].astype(str),
            GIVEN_SPLIT_COLUMN: log[GIVEN_SPLIT_COLUMN],
        }
    )
    item_ids = [str(i) for i in range(num_items)]
    empty = [()] * num_items
    catalog = pd.DataFrame({"item_id": item_ids, "title": "", "description": "", "categories": empty, "brands": empty})
    kg = pd.DataFrame(
        {"head": triples[:, 0].astype(str), "relation": relations.to_numpy(), "tail": triples[:, 2].astype(str)}
    )
    notes = (
        f"{folder}: {len(train):,} train and {len(test):,} test pairs read (its own split, which split kind 'given' "
        f"keeps); {len(kg):,} triples",
    )
    return Dataset(name=name or folder.name, interactions=interactions, items=catalog, triples=kg, notes=notes)
