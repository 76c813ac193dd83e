"""Column checks that turn raw string tables into typed, validated frames, or one-line errors."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from kgrec.data.readers import Table
from kgrec.errors import InputError

__all__ = [
    "require_columns",
    "id_column",
    "number_column",
    "timestamp_column",
    "list_column",
    "text_column",
    "unique_ids",
    "check_extra_columns",
]

# Data more than a day in the future is a unit mix-up (milliseconds) or a clock problem, not a real log.
_FUTURE_SLACK_S = 86_400


def require_columns(table: Table, columns: dict[str, str], what: str, settings: dict[str, str] | None = None) -> None:
    """Fail with a one-line error when a required column is missing, hinting at a wrong delimiter or at a column
    that differs only in case or separators (``Item ID`` for ``item``), with the ``--set`` that declares it.

    Args:
        table: The raw table.
        columns: ``{role: column name}`` of the required columns ("user id": "user").
        what: The table, for the message ("the interaction log").
        settings: ``{role: config key}`` naming the setting that declares each column (``data.interactions.user``).
    """
    present = list(table.frame.columns)
    for role, name in columns.items():
        if name in present:
            continue
        hint = ""
        if len(present) == 1 and any(sep in present[0] for sep in (",", "\t", ";", "|")):
            hint = " (the header is one column: is the delimiter right for this file's suffix?)"
        elif lookalike := _lookalike(name, present):
            key = (settings or {}).get(role)
            declare = f": declare it with --set {key}='{lookalike}'" if key else ""
            hint = f" (is '{lookalike}' that column? names match exactly{declare})"
        raise InputError(f"{what} needs a '{name}' column for the {role}; found columns {present}{hint}", table.path, 1)


def _lookalike(name: str, present: list[str]) -> str | None:
    """The one present column equal to ``name`` up to case, spaces, dashes and underscores, or with an id suffix."""

    def squash(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())

    wanted = squash(name)
    matches = [column for column in present if squash(column) in (wanted, wanted + "id", wanted + "ids")]
    return matches[0] if len(matches) == 1 else None


def check_extra_columns(table: Table, parsed: dict[str, tuple[str, str]], what: str) -> list[str]:
    """The columns kgrec carries along unparsed; one that has the name of a parsed column is an error.

    Args:
        table: The raw table.
        parsed: ``{output name: (role, source column)}`` for every column kgrec produces by parsing
            (``{"item_id": ("item id", "item"), ...}``); the output names are reserved whether or not
            their source column is present.
        what: The table, for the message ("the interaction log").

    Raises:
        InputError: naming both columns, e.g. an extra ``item_id`` next to the declared ``item``, which would
            otherwise silently replace the parsed ids.
    """
    parsed = {**parsed, "_line": ("line number", "(kept by kgrec)")}  # every reader keeps its rows' lines there
    sources = {source for _, source in parsed.values()}
    extra = [column for column in table.frame.columns if column not in sources]
    for column in extra:
        if column in parsed:
            role, source = parsed[column]
            raise InputError(
                f"{what} has a column '{column}' besides the {role} column '{source}', and kgrec names the parsed {role} "
                f"'{column}': rename one of the two, or declare '{column}' as the {role} column",
                table.path,
                1,
            )
    return extra


def _one_value_per_row(table: Table, name: str, what: str) -> None:
    if table.field_types.get(name) == "list":
        raise InputError(f"column '{name}' holds lists, but a {what} is one value per row", table.path)


def text_column(table: Table, name: str, separator: str = "|") -> pd.Series:
    """A column carried along as text: list cells joined with ``separator``, as a delimited file would hold them."""
    if table.field_types.get(name) == "list":
        return table.frame[name].map(separator.join)
    return table.frame[name]


def id_column(table: Table, name: str, what: str) -> pd.Series:
    """Return the stripped id strings of a column; an empty id is an error naming its line."""
    _one_value_per_row(table, name, what)
    ids = table.frame[name].str.strip()
    empty = np.flatnonzero((ids == "").to_numpy())
    if empty.size:
        raise InputError(f"empty {what} in column '{name}'", table.path, table.line_of(empty[0]))
    nul = np.flatnonzero(ids.str.contains("\x00", regex=False).to_numpy())
    if nul.size:  # a NUL ends a C string: file names, RDF and the SPARQL store would each see another id (tabs and
        # line breaks are fine: they are quoted wherever an id is written)
        raise InputError(
            f"{what} {ids.iloc[nul[0]]!r} in column '{name}' holds a NUL byte", table.path, table.line_of(nul[0])
        )
    return ids


def number_column(table: Table, name: str, what: str) -> pd.Series:
    """Parse a column as finite floats; a missing, non-numeric, NaN or infinite cell is an error."""
    _one_value_per_row(table, name, what)
    raw = table.frame[name].str.strip()
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = np.flatnonzero(~np.isfinite(values.to_numpy()))
    if bad.size:
        cell = raw.iloc[bad[0]]
        problem = "is missing" if cell == "" else f"'{cell}' is not a finite number"
        raise InputError(f"{what} in column '{name}' {problem}", table.path, table.line_of(bad[0]))
    return values


def timestamp_column(table: Table, name: str, time_format: str | None = None) -> pd.Series:
    """Parse unix seconds or ISO 8601 date-times (or, with ``time_format``, that strftime format) into int64
    unix seconds; negative or future times are errors.

    Exactly these forms: a guessing parser reads ``11/01/2024`` month-first and ``13/01/2024`` day-first in
    the same column, which silently reorders a user's history (and moves a leave-one-out test item).
    """
    _one_value_per_row(table, name, "timestamp")
    raw = table.frame[name].str.strip()
    numeric = pd.to_numeric(raw, errors="coerce") if time_format is None else pd.Series(np.nan, index=raw.index)
    if numeric.notna().all():
        seconds = numeric.astype("float64")
    else:
        parsed = pd.to_datetime(raw.where(numeric.isna()), errors="coerce", utc=True, format=time_format or "ISO8601")
        seconds = numeric.astype("float64").where(
            numeric.notna(), (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        )
    values = seconds.to_numpy()
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        cell = raw.iloc[bad[0]]
        if cell == "":
            problem = "is missing"
        elif time_format is not None:
            problem = f"'{cell}' does not match data.time_format='{time_format}'"
        else:
            problem = (
                f"'{cell}' is neither unix seconds nor an ISO 8601 date-time (2024-01-13, 2024-01-13T08:30:00Z); "
                "for another form declare it, e.g. data.time_format='%d/%m/%Y'"
            )
        raise InputError(f"timestamp in column '{name}' {problem}", table.path, table.line_of(bad[0]))
    negative = np.flatnonzero(values < 0)
    if negative.size:
        raise InputError(f"timestamp {raw.iloc[negative[0]]} is negative", table.path, table.line_of(negative[0]))
    future = np.flatnonzero(values > time.time() + _FUTURE_SLACK_S)
    if future.size:
        raise InputError(
            f"timestamp {raw.iloc[future[0]]} lies in the future (milliseconds instead of seconds?)",
            table.path,
            table.line_of(future[0]),
        )
    return pd.Series(values.astype(np.int64), index=raw.index)


def list_column(table: Table, name: str, separator: str) -> pd.Series:
    """Split a multi-valued cell into a tuple of stripped, non-empty, de-duplicated values.

    Cells of a list column (Parquet ``list<string>``) are already split; their values are taken whole.
    """
    # RecBole token_seq fields are space-separated by definition of the format.
    if table.field_types.get(name) == "token_seq":
        separator = " "

    def split(cell: str | tuple[str, ...]) -> tuple[str, ...]:
        values = cell if isinstance(cell, tuple) else cell.split(separator)
        return tuple(dict.fromkeys(v.strip() for v in values if v.strip()))

    return table.frame[name].map(split)


def unique_ids(table: Table, ids: pd.Series, what: str) -> None:
    """Fail if an id repeats in a table that must define each id once, naming both lines."""
    duplicated = ids.duplicated(keep=False).to_numpy()
    if duplicated.any():
        positions = np.flatnonzero(duplicated)
        first = positions[0]
        second = positions[ids.iloc[positions].to_numpy() == ids.iloc[first]][1]
        raise InputError(
            f"{what} '{ids.iloc[first]}' is defined twice (also on line {table.line_of(first)})",
            table.path,
            table.line_of(second),
        )
