"""IdMap: the one mapping between external string ids and kgrec's contiguous indices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["IdMap"]


def _sort_ids(ids: Iterable[str]) -> list[str]:
    unique = set(ids)
    # All-digit ids (MovieLens, most logs) sort numerically so index order matches the user's intuition.
    if unique and all(i.isdigit() for i in unique):
        return sorted(unique, key=int)
    return sorted(unique)


@dataclass(frozen=True)
class IdMap:
    """Immutable bijection between external ids (``*_id``, strings) and indices (``*_index``, 0..n-1).

    Args:
        ids: The external ids in index order; must be unique.
    """

    ids: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _array: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {id_: i for i, id_ in enumerate(self.ids)}
        if len(index) != len(self.ids):
            raise ValueError("IdMap ids must be unique")
        object.__setattr__(self, "_index", index)
        # An object array maps a batch of indices back in one numpy take (serving answers thousands at once).
        object.__setattr__(self, "_array", np.array(self.ids, dtype=object))

    @classmethod
    def from_ids(cls, ids: Iterable[str]) -> IdMap:
        """Build a map over the distinct ``ids`` in a deterministic (numeric, else lexicographic) order."""
        return cls(tuple(_sort_ids(str(i) for i in ids)))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._index

    def to_index(self, ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Map external ids to indices; raises ``KeyError`` naming the first unknown id."""
        try:
            return np.fromiter((self._index[i] for i in ids), dtype=np.int64, count=len(ids))
        except KeyError as error:
            raise KeyError(f"unknown id {error.args[0]!r}") from None

    def index_of(self, id_: str) -> int:
        """Return the index of one external id; raises ``KeyError`` if unknown."""
        return self._index[id_]

    def to_ids(self, indices: Iterable[int]) -> list[str]:
        """Map indices back to external ids."""
        positions = indices if isinstance(indices, np.ndarray) else np.fromiter(indices, dtype=np.int64)
        return self._array[positions.astype(np.int64, copy=False)].tolist()

    @property
    def id_to_index(self) -> dict[str, int]:
        """A copy of the mapping, e.g. for PyKEEN's ``entity_to_id``."""
        return dict(self._index)
