"""SPARQL over a built graph: the local rdflib store and a real HTTP SPARQL endpoint behind one interface."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from kgrec.errors import InputError
from kgrec.graph.sparql import EndpointStore, LocalStore, open_store, query

BRANDS_OF_TWO_ITEMS = """
SELECT ?brand ?label WHERE {
  ?a kgrec:itemId "1" . ?b kgrec:itemId "2" .
  ?a kgrec:hasBrand ?brand . ?b kgrec:hasBrand ?brand . ?brand rdfs:label ?label .
}"""


@pytest.fixture
def graph_dir(tiny_graph, tmp_path):
    tiny_graph.save(str(tmp_path / "g"))
    return tmp_path / "g"


def test_local_queries_and_labels(graph_dir):
    store = open_store(graph_dir)
    assert isinstance(store, LocalStore)
    table = store.query(BRANDS_OF_TWO_ITEMS)
    assert table["label"].tolist() == ["StudioX"]
    facts = query('SELECT ?p ?o WHERE { ?s kgrec:itemId "10" ; ?p ?o }', graph_dir)
    assert "A cold film nobody watched" in set(facts["o"])
    assert query('ASK { ?s rdfs:label "Kappa" }', graph_dir)["ask"].tolist() == [True]
    labels = store.labels(["https://w3id.org/kgrec/id/item/1", "https://w3id.org/kgrec/id/item/none"])
    assert labels == {"https://w3id.org/kgrec/id/item/1": "Alpha"}


def test_errors_are_one_line(graph_dir, tmp_path):
    with pytest.raises(InputError, match="SPARQL syntax error"):
        query("SELEKT ?x WHERE { ?x ?y ?z }", graph_dir)
    with pytest.raises(InputError, match="no kg.nt"):
        LocalStore(tmp_path)
    with pytest.raises(InputError, match="give a graph directory or a SPARQL endpoint"):
        open_store()


class _Endpoint(BaseHTTPRequestHandler):
    """A SPARQL 1.1 protocol endpoint (GET ?query=...) answering from an rdflib graph, as Fuseki would."""

    rdf = None

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        sparql = parse_qs(urlparse(self.path).query)["query"][0]
        body = self.rdf.query(sparql).serialize(format="json")
        self.send_response(200)
        self.send_header("Content-Type", "application/sparql-results+json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # noqa: ANN002 - silence
        pass


@pytest.fixture
def endpoint(graph_dir):
    _Endpoint.rdf = LocalStore(graph_dir).rdf
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sparql"
    server.shutdown()


def test_remote_endpoint_answers_like_the_local_store(graph_dir, endpoint):
    remote = open_store(endpoint=endpoint)
    assert isinstance(remote, EndpointStore)
    assert remote.query(BRANDS_OF_TWO_ITEMS)["label"].tolist() == ["StudioX"]
    iris = [f"https://w3id.org/kgrec/id/item/{i}" for i in range(1, 11)]
    assert remote.labels(iris) == LocalStore(graph_dir).labels(iris)


def test_unreachable_endpoint_is_a_clear_error():
    with pytest.raises(InputError, match="SPARQL endpoint http://127.0.0.1:9/sparql failed"):
        EndpointStore("http://127.0.0.1:9/sparql").query("SELECT * WHERE { ?s ?p ?o } LIMIT 1")
