"""SPARQL over a built graph's RDF, behind one small interface: the local graph or a remote endpoint.

``LocalStore`` reads ``kg.nt`` and ``ontology.ttl`` of a graph directory into an in-memory store
behind the rdflib API on the first query: Oxigraph (``oxrdflib``; under a second for ml-100k's 200k
triples, its own SPARQL 1.1 engine) or rdflib's own memory store and evaluator (about 10 s to load;
``backend="rdflib"``, or where pyoxigraph is not installed). Label lookups read the same file's
``rdfs:label`` lines without loading the rest. ``EndpointStore`` sends the same
queries to a SPARQL 1.1 endpoint through rdflib's ``SPARQLStore``, for graphs that outgrow one
process (load ``kg.nt`` into Fuseki, GraphDB, Virtuoso, Oxigraph... and point kgrec at it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

import pandas as pd

from kgrec.errors import InputError

__all__ = ["BACKENDS", "PREFIXES", "TripleStore", "LocalStore", "EndpointStore", "open_store", "prepare", "query"]

BACKENDS = ("oxigraph", "rdflib")

RDFS_LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"
PREFIXES = """PREFIX kgrec: <https://w3id.org/kgrec/ontology#>
PREFIX kg: <https://w3id.org/kgrec/id/>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
"""


class TripleStore(Protocol):
    """What explanations and ``kgrec query`` need from a graph store."""

    def query(self, sparql: str, allow_service: bool = False) -> pd.DataFrame:
        """Run a SELECT (or ASK) query; one column per variable, values as strings (IRIs without brackets).

        ``SERVICE`` and ``FROM`` clauses (federation) are refused unless ``allow_service``.
        """

    def labels(self, iris: list[str]) -> dict[str, str]:
        """``rdfs:label`` of each IRI that has one."""


def _frame(result) -> pd.DataFrame:  # noqa: ANN001 - an rdflib query Result
    if result.type == "ASK":
        return pd.DataFrame({"ask": [bool(result.askAnswer)]})
    if result.type != "SELECT":
        raise InputError(f"only SELECT and ASK queries return tables, not {result.type}")
    names = [str(v) for v in result.vars]
    rows = [[None if value is None else str(value) for value in row] for row in result]
    return pd.DataFrame(rows, columns=names)


def _with_prefixes(sparql: str) -> str:
    # The kgrec prefixes are always available; a query that declares its own keeps them.
    return sparql if "prefix kgrec:" in sparql.lower() else PREFIXES + sparql


def _remote_parts(node: object) -> list[str]:
    """The parts of a translated query that make the evaluator fetch from the network: SERVICE and FROM."""
    from rdflib.plugins.sparql.parserutils import CompValue

    found: list[str] = []
    if isinstance(node, CompValue):
        # CompValue.get returns the key itself for a missing key, so membership is tested first.
        if node.name == "ServiceGraphPattern":
            found.append(f"SERVICE <{node['term'] if 'term' in node else '?'}>")
        for clause in (node["datasetClause"] if "datasetClause" in node else None) or ():
            iri = clause["default"] if "default" in clause else clause["named"] if "named" in clause else "?"
            found.append(f"FROM <{iri}>")
        for value in node.values():
            found += _remote_parts(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            found += _remote_parts(value)
    return found


def prepare(sparql: str, allow_service: bool = False):  # noqa: ANN201 - an rdflib prepared Query
    """Parse a query (kgrec prefixes predeclared) and refuse federation unless ``allow_service``.

    ``SERVICE <url>`` and ``FROM <url>`` make rdflib send HTTP requests to any address the query
    names, so a query a user (or a server's client) hands in could reach machines it never should;
    they run only when asked for.

    Raises:
        InputError: for a syntax error, an unknown prefix, or a remote part that is not allowed.
    """
    from rdflib.plugins.sparql.algebra import translateQuery
    from rdflib.plugins.sparql.parser import parseQuery

    try:
        prepared = translateQuery(parseQuery(_with_prefixes(sparql)))
    except Exception as error:  # pyparsing's ParseException, rdflib's bare Exception for an unknown prefix
        raise InputError(f"SPARQL syntax error: {' '.join(str(error).split())}") from None
    remote = _remote_parts(prepared.algebra)
    if remote and not allow_service:
        raise InputError(
            f"the query asks another endpoint for data ({remote[0]}); federated queries are off unless allowed "
            "(`allow_service`)"
        )
    return prepared


def _default_backend() -> str:
    import importlib.util

    return "oxigraph" if importlib.util.find_spec("oxrdflib") and importlib.util.find_spec("pyoxigraph") else "rdflib"


class LocalStore:
    """The graph directory's own RDF (``kg.nt`` + ``ontology.ttl``), queried in process.

    Args:
        graph_dir: A graph directory from ``kgrec build-graph``.
        backend: ``oxigraph`` (the default where installed) or ``rdflib`` (rdflib's memory store and evaluator).
    """

    def __init__(self, graph_dir: str | Path, backend: str | None = None) -> None:
        self.graph_dir = Path(graph_dir)
        self.triples_file = self.graph_dir / "kg.nt"
        if not self.triples_file.is_file():
            raise InputError("no kg.nt: not a graph directory from 'kgrec build-graph'", self.graph_dir)
        backend = backend or _default_backend()
        if backend not in BACKENDS:
            raise InputError(f"unknown SPARQL backend '{backend}' (known: {', '.join(BACKENDS)})")
        self.backend = backend
        self._rdf = None
        self._labels: dict[str, str] | None = None

    @property
    def rdf(self):  # noqa: ANN201 - rdflib.Graph, imported lazily
        """The full graph behind the rdflib API: Oxigraph's on-disk store of this graph (opened read-only in
        milliseconds; built once, see :meth:`warm`), or, where it cannot be, the files parsed into memory."""
        if self._rdf is None:
            import rdflib

            oxigraph = self.backend == "oxigraph"
            stored = self._disk_store() if oxigraph else None
            if stored is not None:
                from oxrdflib.store import OxigraphStore
                from rdflib.graph import DATASET_DEFAULT_GRAPH_ID

                self._rdf = rdflib.Graph(store=OxigraphStore(store=stored), identifier=DATASET_DEFAULT_GRAPH_ID)
                return self._rdf
            rdf = rdflib.Graph(store="Oxigraph") if oxigraph else rdflib.Graph()
            rdf.parse(self.triples_file, format="ox-nt" if oxigraph else "nt")
            ontology = self.graph_dir / "ontology.ttl"
            if ontology.is_file():
                rdf.parse(ontology, format="ox-turtle" if oxigraph else "turtle")
            self._rdf = rdf
        return self._rdf

    def warm(self) -> bool:
        """Build Oxigraph's on-disk store of this graph now (``build-graph`` does), so that the first query of a fresh
        process opens it instead of parsing ``kg.nt`` (ml-100k: 10.8 s to a first answer, most of it imports and
        parsing). Returns whether the store is there."""
        return self.backend == "oxigraph" and self._disk_store() is not None

    def _disk_store(self):  # noqa: ANN202 - a read-only pyoxigraph.Store, or None
        """``<graph>/cache/oxigraph/<digest of kg.nt and ontology.ttl>``, built on first use (bulk load into a
        temporary folder, renamed into place when complete) and opened read-only; None where the graph folder cannot
        be written (a read-only graph: the files are parsed into memory instead) or has no manifest."""
        import json
        import shutil
        import tempfile

        import pyoxigraph as ox

        try:
            files = json.loads((self.graph_dir / "manifest.json").read_text(encoding="utf-8"))["files"]
            key = hashlib.sha256(
                f"{files['kg.nt']} {files.get('ontology.ttl', '')} {ox.__version__}".encode()
            ).hexdigest()[:16]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        folder = self.graph_dir / "cache" / "oxigraph"
        target = folder / key
        if not (target / "COMPLETE").is_file():
            building: Path | None = None
            try:
                folder.mkdir(parents=True, exist_ok=True)
                building = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=folder))
                store = ox.Store(str(building))
                store.bulk_load(path=str(self.triples_file), format=ox.RdfFormat.N_TRIPLES)
                ontology = self.graph_dir / "ontology.ttl"
                if ontology.is_file():
                    store.bulk_load(path=str(ontology), format=ox.RdfFormat.TURTLE)
                store.flush()
                del store
                (building / "COMPLETE").write_text("a complete Oxigraph store of kg.nt and ontology.ttl\n")
                try:
                    building.rename(target)
                except OSError:  # another process finished the same store first: theirs is as good
                    shutil.rmtree(building, ignore_errors=True)
                for stale in folder.iterdir():  # stores of earlier builds of this graph folder
                    if stale.name != key:
                        shutil.rmtree(stale, ignore_errors=True)
            except Exception:  # noqa: BLE001 - a read-only or full folder, or a store that will not build: parse instead
                if building is not None:
                    shutil.rmtree(building, ignore_errors=True)
                return None
        try:
            return ox.Store.read_only(str(target))
        except OSError:
            return None

    def query(self, sparql: str, allow_service: bool = False) -> pd.DataFrame:
        """Answer a SELECT as a DataFrame; SERVICE clauses only with ``allow_service``."""
        prepared = prepare(sparql, allow_service)
        # Oxigraph evaluates the query text itself (an rdflib-prepared query runs on rdflib's slower evaluator over
        # the same triples); an allowed federated query keeps rdflib's evaluator, whose SERVICE client kgrec tests.
        native = self.backend == "oxigraph" and not _remote_parts(prepared.algebra)
        try:
            return _frame(self.rdf.query(_with_prefixes(sparql) if native else prepared))
        except InputError:
            raise
        except Exception as error:  # rdflib reports evaluation problems of the query as plain exceptions
            raise InputError(f"SPARQL query failed: {' '.join(str(error).split())[:300]}") from None

    def labels(self, iris: list[str]) -> dict[str, str]:
        """``rdfs:label`` of each IRI that has one."""
        if self._labels is None:
            from rdflib.util import from_n3

            # Only the label lines are parsed: a few hundred ms instead of loading every triple.
            labels = {}
            with self.triples_file.open(encoding="utf-8") as handle:
                for line in handle:
                    subject, predicate, rest = line.split(" ", 2)
                    if predicate == RDFS_LABEL:
                        labels[subject[1:-1]] = str(from_n3(rest.rstrip().removesuffix(".").rstrip()))
            self._labels = labels
        return {iri: self._labels[iri] for iri in iris if iri in self._labels}

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({str(self.graph_dir)!r}, backend={self.backend!r})"


class EndpointStore:
    """A remote SPARQL 1.1 endpoint holding a kgrec graph's triples (read only)."""

    def __init__(self, endpoint: str) -> None:
        import rdflib
        from rdflib.plugins.stores.sparqlstore import SPARQLStore

        self.endpoint = endpoint
        self.rdf = rdflib.Graph(store=SPARQLStore(query_endpoint=endpoint, returnFormat="json"))

    def query(self, sparql: str, allow_service: bool = False) -> pd.DataFrame:
        """Answer a SELECT on the endpoint as a DataFrame; SERVICE clauses only with ``allow_service``."""
        prepare(sparql, allow_service)  # the same rules as locally; the endpoint gets the text
        try:
            return _frame(self.rdf.query(_with_prefixes(sparql)))
        except (OSError, ValueError) as error:
            raise InputError(f"SPARQL endpoint {self.endpoint} failed: {' '.join(str(error).split())}") from None

    def labels(self, iris: list[str]) -> dict[str, str]:
        """``rdfs:label`` of each IRI that has one, asked of the endpoint."""
        if not iris:
            return {}
        found: dict[str, str] = {}
        for start in range(0, len(iris), 200):  # keeps each GET request a sane length
            values = " ".join(f"<{iri}>" for iri in iris[start : start + 200])
            table = self.query(f"SELECT ?node ?label WHERE {{ VALUES ?node {{ {values} }} ?node rdfs:label ?label }}")
            found.update(zip(table["node"], table["label"]))
        return found

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.endpoint!r})"


def open_store(
    graph_dir: str | Path | None = None, endpoint: str | None = None, backend: str | None = None
) -> TripleStore:
    """The endpoint if one is given, else the graph directory's local RDF (``backend``: see :class:`LocalStore`)."""
    if endpoint:
        return EndpointStore(endpoint)
    if graph_dir is None:
        raise InputError("give a graph directory or a SPARQL endpoint")
    return LocalStore(graph_dir, backend)


def query(
    sparql: str,
    graph_dir: str | Path | None = None,
    endpoint: str | None = None,
    allow_service: bool = False,
    backend: str | None = None,
) -> pd.DataFrame:
    """Run ``sparql`` against a built graph (or an endpoint holding it); the kgrec prefixes are predeclared.

    Federated parts (``SERVICE``, ``FROM <url>``) are refused unless ``allow_service``.
    """
    return open_store(graph_dir, endpoint, backend).query(sparql, allow_service)
