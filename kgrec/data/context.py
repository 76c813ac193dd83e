"""Context features as categorical tokens: the time of an interaction, user attributes, declared log columns.

A :class:`ContextFeatures` is fitted on training interactions only (its vocabulary, numeric bin
edges and rare-value cut-off), then turns any interaction or any stated context
(``hour=21 device=mobile``) into one token per field. Token 0 of every field means "unknown":
a value never seen in training, a field not given, or a missing attribute.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from kgrec.config import ContextConfig
from kgrec.errors import InputError

__all__ = ["ContextField", "ContextFeatures", "TIME_FEATURES", "WEEKDAYS", "log_context_columns"]

TIME_FEATURES = ("hour", "weekday", "gap", "period")
# Columns of a split interaction log that are never context (the rest may be declared as context).
# "given_split" is kgrec.data.split.GIVEN_SPLIT_COLUMN (not imported: split imports this module through dataset).
_NOT_CONTEXT = frozenset({"user_id", "item_id", "rating", "timestamp", "split", "given_split"})


def log_context_columns(log: pd.DataFrame) -> list[str]:
    """Columns of an interaction log that can be declared as context (``device``, ``location`` ...)."""
    return [c for c in log.columns if c not in _NOT_CONTEXT]


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class ContextField:
    """One context field: where its raw value comes from and the values training saw.

    Attributes:
        name: Field name (``hour``, ``age``, ``device`` ...), the key of ``--context name=value``.
        source: ``time``, ``user`` (user-table column) or ``column`` (interaction-log column).
        values: Known values; value ``values[j]`` is the field's token ``j + 1`` (0 is unknown).
        edges: Inner bin edges for a numeric field (its values are bin numbers), else ``None``.
        prefix: Keep only the first ``prefix`` characters of the raw value (a coarse zip code).
    """

    name: str
    source: str
    values: tuple[str, ...]
    edges: tuple[float, ...] | None = None
    prefix: int | None = None

    def normalise(self, raw: pd.Series) -> pd.Series:
        """Raw values (any dtype, NaN for missing) as the strings the vocabulary holds."""
        if self.edges is not None:
            numbers = pd.to_numeric(raw, errors="coerce")
            bins = np.searchsorted(np.asarray(self.edges), numbers.to_numpy(dtype=float), side="right")
            return pd.Series(np.where(numbers.isna(), None, bins.astype(str)), index=raw.index, dtype=object)
        text = raw.astype("string").str.strip()
        if self.prefix is not None:
            text = text.str.slice(0, self.prefix)
        return text.astype(object).where(text.notna(), None)


def _time_values(name: str, timestamps: np.ndarray, previous: np.ndarray | None = None) -> pd.Series:
    """Raw time feature values from unix seconds (UTC); ``previous`` holds the user's previous timestamp or NaN."""
    seconds = timestamps.astype(np.int64)
    if name == "hour":
        return pd.Series(((seconds // 3600) % 24).astype(str))
    if name == "weekday":
        return pd.Series(np.asarray(WEEKDAYS)[((seconds // 86400) + 3) % 7])  # 1970-01-01 was a Thursday
    if name == "period":
        return pd.Series(pd.to_datetime(seconds, unit="s").strftime("%Y-%m"))
    assert previous is not None, "the gap feature needs each user's previous timestamps"
    gaps = seconds - previous
    buckets = [("first" if math.isnan(g) else str(int(math.log2(max(g, 1.0))))) for g in gaps]
    return pd.Series(buckets, dtype=object)


def _previous_timestamps(log: pd.DataFrame) -> np.ndarray:
    """Per row, the timestamp of the same user's previous interaction in time (NaN for the first)."""
    order = np.lexsort((np.arange(len(log)), log["timestamp"].to_numpy(), log["user_id"].to_numpy()))
    users = log["user_id"].to_numpy()[order]
    times = log["timestamp"].to_numpy().astype(float)[order]
    previous = np.full(len(log), np.nan)
    same = users[1:] == users[:-1]
    previous[1:][same] = times[:-1][same]
    out = np.empty(len(log))
    out[order] = previous
    return out


class ContextFeatures:
    """The fitted vocabulary of every context field and the token layout ``(field offset + local token)``.

    Args:
        fields: The fields, in token-column order.
    """

    def __init__(self, fields: list[ContextField]) -> None:
        self.fields = list(fields)
        sizes = [len(f.values) + 1 for f in self.fields]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if sizes else np.zeros(0, np.int64)
        self.num_tokens = int(sum(sizes))
        self._index = [{value: j + 1 for j, value in enumerate(f.values)} for f in self.fields]

    @property
    def names(self) -> list[str]:
        """Field names, in token-column order."""
        return [f.name for f in self.fields]

    @property
    def num_fields(self) -> int:
        """Token columns per example."""
        return len(self.fields)

    def field_offsets(self, source: str) -> list[int]:
        """Columns of the fields from one source (``time``, ``user``, ``column``)."""
        return [j for j, f in enumerate(self.fields) if f.source == source]

    # -- fitting --------------------------------------------------------------------------
    @classmethod
    def fit(cls, train: pd.DataFrame, users: pd.DataFrame | None, config: ContextConfig) -> ContextFeatures:
        """Learn each field's known values (and numeric bin edges) from the training interactions.

        Args:
            train: Training interactions (``user_id``, ``timestamp``, declared columns).
            users: The user table (``user_id`` plus attributes), needed for ``config.user``.
            config: Which fields, bins, prefixes and the rare-value cut-off.

        Raises:
            InputError: for a field whose source data is missing.
        """
        _check_sources(train, users, config)
        fields: list[ContextField] = []
        previous = _previous_timestamps(train) if "gap" in config.time else None
        for feature in config.time:
            raw = _time_values(feature, train["timestamp"].to_numpy(), previous)
            fields.append(_fitted(ContextField(feature, "time", ()), raw, config.min_count))
        for name in config.user:
            assert users is not None  # _check_sources: user fields need the user table
            column = users.set_index("user_id")[name]
            edges = None
            numbers = pd.to_numeric(column, errors="coerce")
            numeric = numbers.notna().sum() == column.notna().sum() and numbers.notna().any()
            if numeric and name not in config.prefix:  # a prefix asks for text (zip codes are digits, not amounts)
                quantiles = np.quantile(numbers.dropna(), np.linspace(0, 1, config.bins + 1)[1:-1])
                edges = tuple(float(q) for q in np.unique(quantiles))
            field = ContextField(name, "user", (), edges, None if edges else config.prefix.get(name))
            raw = column.reindex(train["user_id"].to_numpy())
            fields.append(_fitted(field, pd.Series(raw.to_numpy(), dtype=object), config.min_count))
        for name in config.columns:
            field = ContextField(name, "column", (), None, config.prefix.get(name))
            fields.append(_fitted(field, train[name].reset_index(drop=True), config.min_count))
        return cls(fields)

    # -- encoding -------------------------------------------------------------------------
    def _tokens(self, field_index: int, raw: pd.Series) -> np.ndarray:
        field = self.fields[field_index]
        known = self._index[field_index]
        local = np.fromiter((known.get(v, 0) for v in field.normalise(raw)), dtype=np.int64, count=len(raw))
        return local + self.offsets[field_index]

    def encode_log(self, log: pd.DataFrame, users: pd.DataFrame | None) -> np.ndarray:
        """``(len(log), F)`` tokens for interactions; time gaps are measured within ``log`` itself."""
        tokens = np.zeros((len(log), self.num_fields), dtype=np.int64)
        previous = _previous_timestamps(log) if any(f.name == "gap" for f in self.fields) else None
        table = users.set_index("user_id") if users is not None else None
        for j, field in enumerate(self.fields):
            if field.source == "time":
                raw = _time_values(field.name, log["timestamp"].to_numpy(), previous)
            elif field.source == "user":
                assert table is not None, "a user field needs the user table"
                raw = pd.Series(table[field.name].reindex(log["user_id"].to_numpy()).to_numpy(), dtype=object)
            else:
                raw = log[field.name].reset_index(drop=True)
            tokens[:, j] = self._tokens(j, raw)
        return tokens

    def encode_values(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """``(len(rows), F)`` tokens for stated contexts (``{"hour": 21, "device": "mobile"}``); absent fields are unknown.

        Time fields take ``hour`` (0-23), ``weekday`` (Mon..Sun or 0-6 from Monday), ``period`` (YYYY-MM)
        and ``gap`` (seconds since the previous interaction); ``timestamp`` (unix seconds or ISO time)
        fills hour, weekday and period at once.

        Raises:
            InputError: for a field the run does not know or a value of the wrong form.
        """
        names = set(self.names)
        tokens = np.zeros((len(rows), self.num_fields), dtype=np.int64)
        for j, field in enumerate(self.fields):
            raw = [_stated(field, row) for row in rows]
            tokens[:, j] = self._tokens(j, pd.Series(raw, dtype=object))
        for row in rows:
            unknown = sorted(set(row) - names - {"timestamp"})
            if unknown:
                raise InputError(
                    f"unknown context field '{unknown[0]}' (this run knows: {', '.join(self.names) or 'none'})"
                )
        return tokens

    def unseen_values(self, row: dict[str, Any]) -> list[tuple[str, str]]:
        """``("field=value", "the field's known values")`` for each value stated in ``row`` that the vocabulary does not hold.

        Such a value reads as the field's unknown token, as an absent field does; a caller tells the user so.
        """
        found = []
        for j, field in enumerate(self.fields):
            if field.name not in row or (value := _stated(field, row)) is None:
                continue
            if field.normalise(pd.Series([value], dtype=object)).iloc[0] not in self._index[j]:
                shown = ", ".join(field.values[:10]) + (", ..." if len(field.values) > 10 else "")
                found.append((f"{field.name}={row[field.name]}", shown or "nothing seen often enough"))
        return found

    def user_rows(self, users: pd.DataFrame | None, user_ids: list[str]) -> list[dict[str, Any]]:
        """The user-table attributes of ``user_ids`` as stated-context rows (missing users give empty rows)."""
        columns = [f.name for f in self.fields if f.source == "user"]
        if users is None or not columns:
            return [{} for _ in user_ids]
        table = users.set_index("user_id")
        rows = []
        for user in user_ids:
            if user in table.index:
                rows.append({c: table.at[user, c] for c in columns if pd.notna(table.at[user, c])})
            else:
                rows.append({})
        return rows

    # -- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description that :meth:`from_dict` reads back."""
        return {"fields": [asdict(f) for f in self.fields]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContextFeatures:
        """Rebuild from :meth:`to_dict` output (validated: a damaged file is an InputError, not a crash)."""
        try:
            fields = []
            for f in data["fields"]:
                edges = None if f.get("edges") is None else tuple(float(e) for e in f["edges"])
                source = str(f["source"])
                if source not in ("time", "user", "column"):
                    raise ValueError(f"bad source {source!r}")
                fields.append(
                    ContextField(str(f["name"]), source, tuple(str(v) for v in f["values"]), edges, f.get("prefix"))
                )
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"damaged context vocabulary: {error}") from None
        return cls(fields)

    def __repr__(self) -> str:
        parts = [f"{f.name}:{len(f.values) + 1}" for f in self.fields]
        return f"{self.__class__.__name__}({', '.join(parts)})"


def _fitted(field: ContextField, raw: pd.Series, min_count: int) -> ContextField:
    counts = field.normalise(raw).dropna().value_counts()
    values = tuple(sorted(str(v) for v in counts[counts >= min_count].index))
    return ContextField(field.name, field.source, values, field.edges, field.prefix)


def _check_sources(train: pd.DataFrame, users: pd.DataFrame | None, config: ContextConfig) -> None:
    if config.time and "timestamp" not in train:
        raise InputError(f"context.time {list(config.time)} needs a timestamp column in the interaction log")
    if config.user:
        if users is None:
            raise InputError(
                f"context.user {list(config.user)} needs a user table (build the graph with `users`, a user table)"
            )
        missing = [c for c in config.user if c not in users.columns or c == "user_id"]
        if missing:
            raise InputError(
                f"context.user column '{missing[0]}' is not in the user table "
                f"(columns: {', '.join(c for c in users.columns if c != 'user_id')})"
            )
    missing = [c for c in config.columns if c not in log_context_columns(train)]
    if missing:
        raise InputError(f"context.columns '{missing[0]}' is not a context column of the interaction log")


def _stated(field: ContextField, row: dict[str, Any]) -> Any:
    """The raw value of one field in a stated context, derived from ``timestamp`` where needed."""
    if field.name in row:
        value = row[field.name]
        if field.source != "time":
            return value
        return _stated_time(field.name, value)
    if field.source == "time" and "timestamp" in row and field.name != "gap":
        seconds = _seconds(row["timestamp"])
        return _time_values(field.name, np.array([seconds]))[0]
    return None


def _stated_time(name: str, value: Any) -> str:
    text = str(value).strip()
    try:
        if name == "hour":
            hour = int(text)
            if not 0 <= hour <= 23:
                raise ValueError
            return str(hour)
        if name == "weekday":
            if text.isdigit() and 0 <= int(text) <= 6:
                return WEEKDAYS[int(text)]
            matches = [d for d in WEEKDAYS if text.lower().startswith(d.lower())]
            if not matches:
                raise ValueError
            return matches[0]
        if name == "period":
            return pd.Timestamp(text).strftime("%Y-%m")
        gap = float(text)
        if gap < 0:
            raise ValueError
        return str(int(math.log2(max(gap, 1.0))))
    except (ValueError, TypeError):
        forms = {"hour": "0-23", "weekday": "Mon..Sun or 0-6", "period": "YYYY-MM", "gap": "seconds >= 0"}
        raise InputError(f"context {name}={text!r} is not {forms[name]}") from None


def _seconds(value: Any) -> int:
    text = str(value).strip()
    try:
        return (
            int(float(text)) if text.lstrip("-").replace(".", "", 1).isdigit() else int(pd.Timestamp(text).timestamp())
        )
    except (ValueError, TypeError):
        raise InputError(f"context timestamp={text!r} is neither unix seconds nor an ISO date-time") from None
