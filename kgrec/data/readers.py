"""Reading raw tables (CSV, TSV, Parquet, RecBole atomic) and RDF triples into string frames.

Every reader returns plain ``str`` cells and remembers where each row came from, so that
:mod:`kgrec.data.schema` can name the file and line of any bad value.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from kgrec.errors import InputError

__all__ = ["Table", "read_table", "read_rdf_triples", "read_entity_labels", "ATOMIC_SUFFIXES", "RDF_FORMATS", "is_rdf"]

ATOMIC_SUFFIXES = (".inter", ".item", ".user", ".kg", ".link")
RDF_FORMATS = {".ttl": "turtle", ".nt": "nt", ".n3": "n3", ".rdf": "xml", ".owl": "xml", ".jsonld": "json-ld"}
_SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": "\t"}


@dataclass(frozen=True)
class Table:
    """A raw table: string cells, where it came from, and RecBole field types if it had them.

    Attributes:
        frame: All cells as strings; missing cells are ``""``. Cells of a list column (type ``"list"``)
            are tuples of strings.
        path: The file it was read from.
        first_line: Line (or row) number of ``frame``'s first row in the file.
        field_types: For RecBole atomic files, ``{column: "token" | "token_seq" | "float" | ...}``;
            for Parquet, ``"list"`` for list-typed columns.
    """

    frame: pd.DataFrame
    path: Path
    first_line: int
    field_types: dict[str, str]

    def line_of(self, position: int) -> int:
        """Return the file line of the row at ``position`` (0-based) in ``frame``."""
        return self.first_line + int(position)


def _is_list(cell: object) -> bool:
    return isinstance(cell, (list, tuple, np.ndarray))


def _list_cell(cell: object) -> tuple[str, ...]:
    """A Parquet list cell as a tuple of strings (a missing cell or a null element holds no value)."""
    if not isinstance(cell, (list, tuple, np.ndarray)):
        return () if cell is None or (isinstance(cell, float) and np.isnan(cell)) else (str(cell),)
    return tuple(str(value) for value in cell if value is not None)


def is_rdf(path: str | Path) -> bool:
    """Whether ``path`` names an RDF serialisation kgrec reads with rdflib."""
    return Path(path).suffix.lower() in RDF_FORMATS


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(
            f"byte 0x{data[error.start]:02x} is not valid UTF-8 (re-save the file as UTF-8)", path, line
        ) from None


def _string_table(frame: pd.DataFrame, path: Path, first_line: int) -> Table:
    """A typed frame (Parquet, or one a caller passed) as string cells; list cells become tuples of strings."""
    names = [str(c).strip() for c in frame.columns]
    if len(set(names)) < len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise InputError(f"column '{twice}' appears twice", path)
    if frame.empty:
        raise InputError("the table has no rows", path)
    # List columns (Parquet list<string>) hold several values per cell: kept as tuples of strings,
    # typed "list", so they split like '|'-separated text instead of becoming one numpy repr.
    lists = {name: "list" for name, column in zip(names, frame.columns) if frame[column].map(_is_list).any()}
    cells = {}
    for name, column in zip(names, frame.columns):
        values = frame[column]
        if name in lists:
            cells[name] = values.map(_list_cell)
        else:
            cells[name] = values.astype(object).where(values.notna(), "").astype(str)
    return Table(pd.DataFrame(cells).reset_index(drop=True), path, first_line=first_line, field_types=lists)


def read_table(source: str | Path | pd.DataFrame, name: str = "table") -> Table:
    """Read a CSV, TSV, Parquet or RecBole atomic file, or a pandas DataFrame, into a :class:`Table` of strings.

    The format follows the suffix: ``.csv``; ``.tsv``/``.tab``/``.txt``; ``.parquet``/``.pq``;
    ``.inter``/``.item``/``.user``/``.kg``/``.link`` (tab-separated, header ``name:type``).
    A DataFrame is taken as it is (any dtypes; list cells are lists of values); errors name it
    ``<NAME DataFrame>`` and the row by its position (0-based, as ``frame.iloc`` counts).

    Raises:
        InputError: missing or empty file, undecodable bytes, ragged rows, unknown suffix.
    """
    if isinstance(source, pd.DataFrame):
        return _string_table(source, Path(f"<{name} DataFrame>"), first_line=0)
    path = Path(source)
    if not path.is_file():
        raise InputError("no such file", path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except Exception as error:  # pyarrow raises many types for a damaged file
            raise InputError(f"cannot read Parquet: {error}", path) from None
        return _string_table(frame, path, first_line=1)
    atomic = suffix in ATOMIC_SUFFIXES
    if not atomic and suffix not in _SEPARATORS:
        known = ", ".join([*_SEPARATORS, ".parquet", *ATOMIC_SUFFIXES])
        raise InputError(f"unknown table format '{suffix}' (known: {known})", path)
    separator = "\t" if atomic else _SEPARATORS[suffix]
    text = _decode(path)
    if not text.strip():
        raise InputError("the file is empty", path)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=separator,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            # Tab-separated data (titles such as 'The "Big" One') is never quoted; CSV may be.
            quoting=csv.QUOTE_MINIMAL if separator == "," else csv.QUOTE_NONE,
            engine="c",
        )
    except pd.errors.ParserError as error:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
        if match:
            expected, line, seen = match.groups()
            raise InputError(f"expected {expected} fields, found {seen}", path, int(line)) from None
        raise InputError(f"cannot parse table: {' '.join(str(error).split())}", path) from None
    if frame.empty:
        raise InputError("the file has a header but no rows", path)
    _check_header(text, separator, path)
    field_types: dict[str, str] = {}
    if atomic:
        renamed = {}
        for column in frame.columns:
            name, _, kind = str(column).partition(":")
            renamed[column] = name
            field_types[name] = kind or "token"
        frame = frame.rename(columns=renamed)
    frame.columns = [str(c).strip() for c in frame.columns]
    return Table(frame, path, first_line=2, field_types=field_types)


def _check_header(text: str, separator: str, path: Path) -> None:
    """A column named twice is an error: pandas would rename the second (``rating.1``) and read the first silently."""
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL if separator == "," else csv.QUOTE_NONE
    header = next(csv.reader(io.StringIO(text), delimiter=separator, quoting=quoting))
    names = (
        [name.partition(":")[0].strip() for name in header]
        if path.suffix.lower() in ATOMIC_SUFFIXES
        else [n.strip() for n in header]
    )
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"column '{name}' appears twice in the header", path, 1)
        seen.add(name)


class _CountingSink:
    """Collects IRI triples from rdflib's streaming N-Triples parser; literals become labels."""

    def __init__(self) -> None:
        self.triples: list[tuple[str, str, str]] = []
        self.labels: dict[str, str] = {}
        self.literals = 0
        self.seen = 0

    def triple(self, subject, predicate, obj) -> None:  # noqa: ANN001 - rdflib's sink protocol
        from rdflib import Literal
        from rdflib.namespace import RDFS, SKOS

        self.seen += 1
        if isinstance(obj, Literal):
            if predicate in (RDFS.label, SKOS.prefLabel):
                self.labels.setdefault(_term(subject), str(obj))
            else:
                self.literals += 1
            return
        self.triples.append((_term(subject), str(predicate), _term(obj)))


def _term(node) -> str:  # noqa: ANN001 - an rdflib term
    """An IRI as itself, a blank node as ``_:label`` (never mistaken for an entity id of the same letters)."""
    from rdflib import BNode

    return node.n3() if isinstance(node, BNode) else str(node)


class _FileBlankLabels(dict):
    """A bnode context for rdflib's N-Triples parser that keeps each blank node's label from the file (``_:b0``)
    instead of a fresh random id per parse: the same file then gives the same graph, and the same digest."""

    def get(self, key, default=None):  # noqa: ANN001, ANN204 - dict's signature
        return key


def read_rdf_triples(path: str | Path) -> tuple[pd.DataFrame, dict[str, str], int]:
    """Read entity-to-entity triples from an RDF file with rdflib.

    N-Triples stream line by line through rdflib's parser (no in-memory graph), so files
    larger than memory allows for an ``rdflib.Graph`` still load. Other formats go through
    ``rdflib.Graph.parse``. Literal objects are not entities: ``rdfs:label``/``skos:prefLabel``
    become entity labels, other literals are counted and skipped.

    Returns:
        ``(frame with head/relation/tail strings, labels by entity, number of skipped literals)``.

    Raises:
        InputError: unreadable or malformed RDF, naming the line where rdflib reports one.
    """
    path = Path(path)
    sink = _parse_rdf(path)
    if not sink.triples:
        raise InputError("no entity-to-entity triples in the RDF file", path)
    frame = pd.DataFrame(sink.triples, columns=["head", "relation", "tail"])
    return frame, sink.labels, sink.literals


def read_entity_labels(path: str | Path) -> dict[str, str]:
    """Entity labels for explanations: a table with columns ``entity`` and ``label`` (CSV, TSV, Parquet), or RDF
    whose ``rdfs:label``/``skos:prefLabel`` literals name entities (keyed by full IRI and by the IRI's last segment,
    so ``<http://rdf.freebase.com/ns/m.0hj3nbk>`` labels entity ``m.0hj3nbk``).

    Raises:
        InputError: an unreadable file, a table without those columns, a row with an empty entity, or no label at all.
    """
    path = Path(path)
    if is_rdf(path):
        found = _parse_rdf(path).labels
        labels = dict(found)
        for iri, label in found.items():
            labels.setdefault(re.split(r"[/#]", iri.rstrip("/#"))[-1], label)
    else:
        table = read_table(path)
        columns = {name.strip().lower(): name for name in table.frame.columns}
        missing = [name for name in ("entity", "label") if name not in columns]
        if missing:
            raise InputError(
                f"a labels table needs columns 'entity' and 'label' (found: {', '.join(table.frame.columns)})", path
            )
        entities, texts = table.frame[columns["entity"]].str.strip(), table.frame[columns["label"]].str.strip()
        empty = np.flatnonzero((entities == "").to_numpy())
        if len(empty):
            raise InputError("empty entity id", path, table.line_of(empty[0]))
        labels = {entity: text for entity, text in zip(entities, texts) if text}
    if not labels:
        raise InputError("no entity labels in the file", path)
    return labels


def _parse_rdf(path: Path) -> _CountingSink:
    """Every triple of an RDF file into a sink (N-Triples streamed, other formats through ``rdflib.Graph``)."""
    import rdflib
    from rdflib.exceptions import ParserError
    from rdflib.plugins.parsers.ntriples import W3CNTriplesParser

    if not path.is_file():
        raise InputError("no such file", path)
    sink = _CountingSink()
    fmt = RDF_FORMATS[path.suffix.lower()]
    if fmt == "nt":
        _decode(path)  # one pass to report bad bytes with their line before parsing
        parser = W3CNTriplesParser(sink=sink, bnode_context=_FileBlankLabels())  # type: ignore[arg-type]  # rdflib's sink protocol, duck-typed
        with open(path, "rb") as handle:
            try:
                parser.parse(handle)
            except ParserError as error:
                raise InputError(f"malformed N-Triples: {error}", path, _nth_statement_line(path, sink.seen)) from None
    else:
        graph = rdflib.Graph()
        try:
            graph.parse(path, format=fmt)
        except Exception as error:  # rdflib's parsers raise BadSyntax, SAXParseException, JSON errors...
            line = getattr(error, "lines", None)
            message = " ".join(str(getattr(error, "message", None) or error).split())[:200]
            raise InputError(f"malformed {fmt} RDF: {message}", path, None if line is None else int(line) + 1) from None
        if any(isinstance(term, rdflib.BNode) for triple in graph for term in triple):
            # Turtle's [ ... ] and RDF/XML's nested nodes have no label in the file: rdflib names them at random,
            # so each parse would build another graph. Canonical labels (RGDA1, hashed from the triples around
            # each blank node) are the same every time.
            from rdflib.compare import to_canonical_graph

            graph = to_canonical_graph(graph)
        for triple in sorted(graph):
            sink.triple(*triple)
    return sink


def _nth_statement_line(path: Path, statements_before: int) -> int:
    """Line number of the statement after ``statements_before`` good ones (blank and comment lines skipped)."""
    seen = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            stripped = raw.strip()
            if not stripped or stripped.startswith(b"#"):
                continue
            if seen == statements_before:
                return number
            seen += 1
    return number
