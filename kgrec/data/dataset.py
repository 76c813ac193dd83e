"""The validated Dataset: interactions, item catalog, users, extra triples and links, as typed frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import numpy as np
import pandas as pd

from kgrec.config import DataConfig
from kgrec.data import schema
from kgrec.data.context import log_context_columns
from kgrec.data.readers import is_rdf, read_rdf_triples, read_table
from kgrec.errors import InputError

__all__ = ["Dataset", "Source", "read_catalog", "read_dataset", "read_interactions"]

#: A table to read: a file path, or a pandas DataFrame with the same columns.
Source: TypeAlias = "str | Path | pd.DataFrame"


def _where(source: Source, name: str) -> Path:
    """How errors name a source: its path, or ``<NAME DataFrame>``."""
    return Path(f"<{name} DataFrame>") if isinstance(source, pd.DataFrame) else Path(source)


@dataclass(frozen=True)
class Dataset:
    """Validated inputs of one recommender problem; every id is a string.

    Attributes:
        name: A short name, used for output folders.
        interactions: ``user_id, item_id`` and, when given, ``rating`` (float), ``timestamp``
            (int64 unix seconds) and any further context columns (strings).
        items: ``item_id, title, description, categories, brands`` (tuples of strings), plus
            any further catalog columns. Items with no interactions are kept: they are cold items.
        users: ``user_id`` plus attribute columns, or ``None``.
        triples: External knowledge ``head, relation, tail`` (entity ids, relation names).
        links: ``item_id, entity_id``: which triple entity stands for which item.
        entity_labels: Human-readable names of entities where the input gave them.
        notes: What validation changed (dropped duplicates, ...), for the user to read.
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None = None
    triples: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["head", "relation", "tail"]))
    links: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["item_id", "entity_id"]))
    entity_labels: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def context_columns(self) -> list[str]:
        """Interaction columns beyond user, item, rating and timestamp."""
        return log_context_columns(self.interactions)


def _read_interactions(source: Source, config: DataConfig, notes: list[str]) -> pd.DataFrame:
    columns = config.interactions
    table = read_table(source, "interactions")
    path = table.path
    schema.require_columns(
        table,
        {"user id": columns.user, "item id": columns.item},
        "the interaction log",
        {"user id": "data.interactions.user", "item id": "data.interactions.item"},
    )
    frame = pd.DataFrame(
        {
            "user_id": schema.id_column(table, columns.user, "user id"),
            "item_id": schema.id_column(table, columns.item, "item id"),
        }
    )
    if columns.rating in table.frame.columns:
        frame["rating"] = schema.number_column(table, columns.rating, "rating")
    if columns.timestamp in table.frame.columns:
        frame["timestamp"] = schema.timestamp_column(table, columns.timestamp, config.time_format)
    parsed = {
        "user_id": ("user id", columns.user),
        "item_id": ("item id", columns.item),
        "rating": ("rating", columns.rating),
        "timestamp": ("timestamp", columns.timestamp),
        "split": ("split", "(assigned by build-graph)"),
    }
    for column in schema.check_extra_columns(table, parsed, "the interaction log"):
        frame[column] = schema.text_column(table, column, config.list_separator)
    frame["_line"] = np.arange(len(frame)) + table.first_line
    return _merge_repeats(frame, config.repeats, path, notes)


def _merge_repeats(frame: pd.DataFrame, repeats: str, path: Path, notes: list[str]) -> pd.DataFrame:
    """One row per observation: (user, item), or (user, item, context) when the log has context columns.

    The same item used by the same user in another context is another observation and is kept. Rows that
    repeat an observation are one: the latest of them (``repeats="latest"``, a re-rating replaces the old
    one), or the latest with the ratings summed (``"sum"``, for counts of uses).
    """
    context = log_context_columns(frame.drop(columns="_line"))
    key = ["user_id", "item_id", *context]
    order = frame.sort_values(["timestamp", "_line"] if "timestamp" in frame else ["_line"], kind="stable")
    deduplicated = order.drop_duplicates(key, keep="last")
    if (dropped := len(frame) - len(deduplicated)) and repeats == "sum" and "rating" in frame:
        totals = order.groupby(key, sort=False, dropna=False)["rating"].sum()
        deduplicated = deduplicated.assign(
            rating=totals.reindex(pd.MultiIndex.from_frame(deduplicated[key])).to_numpy()
        )
    deduplicated = deduplicated.sort_values("_line")
    if dropped:
        unit = f"(user, item, {', '.join(context)})" if context else "(user, item)"
        kept = "the latest of each, ratings summed" if repeats == "sum" and "rating" in frame else "the latest of each"
        notes.append(f"{path}: merged {dropped} rows repeating a {unit} observation, keeping {kept}")
    return deduplicated.reset_index(drop=True)


def _read_items(source: Source, config: DataConfig) -> pd.DataFrame:
    columns = config.items
    table = read_table(source, "items")
    schema.require_columns(table, {"item id": columns.item}, "the item catalog", {"item id": "data.items.item"})
    ids = schema.id_column(table, columns.item, "item id")
    schema.unique_ids(table, ids, "item")
    present = table.frame.columns
    frame = pd.DataFrame({"item_id": ids})
    for role in ("title", "description"):
        name = getattr(columns, role)
        frame[role] = schema.text_column(table, name, " ").str.strip() if name in present else ""
    for role, out in (("category", "categories"), ("brand", "brands")):
        name = getattr(columns, role)
        frame[out] = schema.list_column(table, name, config.list_separator) if name in present else [()] * len(frame)
    parsed = {
        "item_id": ("item id", columns.item),
        "title": ("title", columns.title),
        "description": ("description", columns.description),
        "categories": ("category", columns.category),
        "brands": ("brand", columns.brand),
    }
    for column in schema.check_extra_columns(table, parsed, "the item catalog"):
        frame[column] = schema.text_column(table, column, config.list_separator)
    frame["_line"] = np.arange(len(frame)) + table.first_line
    return frame


def read_interactions(path: Source, config: DataConfig | None = None) -> pd.DataFrame:
    """Read and validate an interaction log alone (e.g. new events for ``kgrec update``).

    Returns ``user_id, item_id`` [, ``rating``, ``timestamp``, context columns] and ``_line``
    (the row's line in the file), repeated pairs reduced to their latest.
    """
    frame = _read_interactions(path, config or DataConfig(), [])
    if frame.empty:
        raise InputError("the interaction log has no rows", _where(path, "interactions"))
    return frame


def read_catalog(path: Source, config: DataConfig | None = None) -> pd.DataFrame:
    """Read and validate an item catalog file alone (e.g. new items to add to a trained run).

    Returns ``item_id, title, description, categories, brands`` plus any other columns.
    """
    frame = _read_items(path, config or DataConfig())
    if frame.empty:
        raise InputError("the item catalog has no rows", _where(path, "items"))
    return frame


def _read_users(source: Source, config: DataConfig) -> pd.DataFrame:
    table = read_table(source, "users")
    schema.require_columns(table, {"user id": config.user}, "the user table", {"user id": "data.user"})
    ids = schema.id_column(table, config.user, "user id")
    schema.unique_ids(table, ids, "user")
    parsed = {"user_id": ("user id", config.user)}
    frame = pd.DataFrame({"user_id": ids})
    for column in schema.check_extra_columns(table, parsed, "the user table"):
        frame[column] = schema.text_column(table, column, config.list_separator)
    frame["_line"] = np.arange(len(frame)) + table.first_line
    return frame


def _read_triples(source: Source, config: DataConfig, notes: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    labels: dict[str, str] = {}
    path = _where(source, "triples")
    if not isinstance(source, pd.DataFrame) and is_rdf(source):
        frame, labels, literals = read_rdf_triples(path)
        if literals:
            notes.append(f"{path}: skipped {literals} triples with literal objects (attributes, not entities)")
    else:
        columns = config.triples
        table = read_table(source, "triples")
        schema.require_columns(
            table,
            {"head": columns.head, "relation": columns.relation, "tail": columns.tail},
            "the triple file",
            {role: f"data.triples.{role}" for role in ("head", "relation", "tail")},
        )
        frame = pd.DataFrame(
            {
                "head": schema.id_column(table, columns.head, "head entity"),
                "relation": schema.id_column(table, columns.relation, "relation"),
                "tail": schema.id_column(table, columns.tail, "tail entity"),
            }
        )
    deduplicated = frame.drop_duplicates().reset_index(drop=True)
    if dropped := len(frame) - len(deduplicated):
        notes.append(f"{path}: dropped {dropped} repeated triples")
    return deduplicated, labels


def _read_links(source: Source, config: DataConfig) -> pd.DataFrame:
    columns = config.links
    table = read_table(source, "links")
    schema.require_columns(
        table,
        {"item id": columns.item, "entity id": columns.entity},
        "the link table",
        {"item id": "data.links.item", "entity id": "data.links.entity"},
    )
    items = schema.id_column(table, columns.item, "item id")
    entities = schema.id_column(table, columns.entity, "entity id")
    schema.unique_ids(table, items, "link of item")
    schema.unique_ids(table, entities, "link to entity")
    return pd.DataFrame({"item_id": items, "entity_id": entities, "_line": np.arange(len(items)) + table.first_line})


def _check_known(
    frame: pd.DataFrame,
    column: str,
    known: pd.Series,
    what: str,
    where: Path,
    defined_in: Path,
    strict: bool,
    notes: list[str],
) -> pd.DataFrame:
    unknown = ~frame[column].isin(set(known))
    if not unknown.any():
        return frame
    first = frame[unknown].iloc[0]
    if strict:
        raise InputError(
            f"{what} '{first[column]}' is not in {defined_in} ({int(unknown.sum())} rows like this; "
            "set data.strict_ids=false to drop them)",
            where,
            int(first["_line"]),
        )
    notes.append(f"{where}: dropped {int(unknown.sum())} rows whose {what} is not in {defined_in}")
    return frame[~unknown].reset_index(drop=True)


def read_dataset(
    interactions: Source,
    items: Source | None = None,
    users: Source | None = None,
    triples: Source | None = None,
    links: Source | None = None,
    config: DataConfig | None = None,
    name: str | None = None,
) -> Dataset:
    """Read and validate a user's own files (or pandas DataFrames) into a :class:`Dataset`.

    Every table may be a path or a DataFrame with the columns the file would have; a DataFrame is
    validated as a file is, and errors name it (``<items DataFrame>:ROW``, ROW as ``iloc`` counts).

    Args:
        interactions: CSV/TSV/Parquet/``.inter`` log with user, item, optional rating, timestamp, context.
        items: Catalog with item, title, description, category, brand (and any extra columns).
            Without it, the catalog is the set of interacted items with no metadata.
        users: Optional user attribute table.
        triples: Extra knowledge as RDF (Turtle, N-Triples, ...) or a head/relation/tail table (``.kg``).
            A triple may name an item by its item id, or by an entity id given in ``links``.
        links: Optional item-to-entity table (``.link``).
        config: Column names and id policy; defaults to :class:`~kgrec.config.DataConfig`.
        name: Dataset name; defaults to the interaction file's stem (``dataset`` for a DataFrame).

    Raises:
        InputError: naming the file, line and problem of the first bad value found.
    """
    config = config or DataConfig()
    notes: list[str] = []
    log = _read_interactions(interactions, config, notes)
    log_path = _where(interactions, "interactions")

    if items is not None:
        catalog = _read_items(items, config)
        items_path = _where(items, "items")
        log = _check_known(log, "item_id", catalog["item_id"], "item", log_path, items_path, config.strict_ids, notes)
    else:
        unique = pd.unique(log["item_id"])
        catalog = pd.DataFrame(
            {
                "item_id": unique,
                "title": "",
                "description": "",
                "categories": [()] * len(unique),
                "brands": [()] * len(unique),
            }
        )
        catalog["_line"] = -1

    user_table = None
    if users is not None:
        user_table = _read_users(users, config)
        log = _check_known(
            log, "user_id", user_table["user_id"], "user", log_path, _where(users, "users"), config.strict_ids, notes
        )
    if log.empty:
        raise InputError("no interactions left after validation", log_path)

    triple_frame = pd.DataFrame(columns=["head", "relation", "tail"])
    labels: dict[str, str] = {}
    if triples is not None:
        triple_frame, labels = _read_triples(triples, config, notes)
    link_frame = pd.DataFrame(columns=["item_id", "entity_id", "_line"])
    if links is not None:
        if triples is None:
            raise InputError("a link table needs a triple file to link into", _where(links, "links"))
        link_frame = _read_links(links, config)
        catalog_path = log_path if items is None else _where(items, "items")
        link_frame = _check_known(
            link_frame,
            "item_id",
            catalog["item_id"],
            "item",
            _where(links, "links"),
            catalog_path,
            config.strict_ids,
            notes,
        )

    return Dataset(
        name=name or ("dataset" if isinstance(interactions, pd.DataFrame) else Path(interactions).stem),
        interactions=log.drop(columns="_line"),
        items=catalog.drop(columns="_line").reset_index(drop=True),
        users=None if user_table is None else user_table.drop(columns="_line").reset_index(drop=True),
        triples=triple_frame,
        links=link_frame.drop(columns="_line").reset_index(drop=True),
        entity_labels=labels,
        notes=tuple(notes),
    )
