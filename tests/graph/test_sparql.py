"""SPARQL over a built graph: the local store (Oxigraph or rdflib) and a real HTTP SPARQL endpoint behind one interface."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from kgrec.errors import InputError
from kgrec.graph import save_graph
from kgrec.graph.sparql import EndpointStore, LocalStore, open_store, query

BRANDS_OF_TWO_ITEMS = """
SELECT ?brand ?label WHERE {
  ?a kgrec:itemId "1" . ?b kgrec:itemId "2" .
  ?a kgrec:hasBrand ?brand . ?b kgrec:hasBrand ?brand . ?brand rdfs:label ?label .
}"""


@pytest.fixture
def graph_dir(tiny_graph, tmp_path):
    save_graph(tiny_graph, str(tmp_path / "g"))
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


def test_oxigraph_and_rdflib_answer_alike(graph_dir):
    assert LocalStore(graph_dir).backend == "oxigraph"  # the default where pyoxigraph is installed
    queries = (
        BRANDS_OF_TWO_ITEMS,
        'SELECT ?p ?o WHERE { ?s kgrec:itemId "10" ; ?p ?o } ORDER BY ?p ?o',
        "SELECT ?c (COUNT(?i) AS ?n) WHERE { ?i kgrec:hasCategory ?c } GROUP BY ?c ORDER BY ?c",
        'SELECT ?l WHERE { ?i rdfs:label ?l FILTER(STRSTARTS(?l, "A")) } ORDER BY ?l',
        'ASK { ?s rdfs:label "Kappa" }',
        'ASK { ?s rdfs:label "Nobody" }',
    )
    oxigraph, rdflib_store = LocalStore(graph_dir, "oxigraph"), LocalStore(graph_dir, "rdflib")
    for sparql in queries:
        fast, reference = oxigraph.query(sparql), rdflib_store.query(sparql)
        assert len(reference) and fast.equals(reference), sparql
    with pytest.raises(InputError, match="unknown SPARQL backend 'jena'"):
        LocalStore(graph_dir, "jena")


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


def _serve(handler: type[BaseHTTPRequestHandler]):
    """Serve ``handler`` on a free loopback port in a thread; yields the endpoint URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sparql"
    server.shutdown()


@pytest.fixture
def endpoint(graph_dir):
    _Endpoint.rdf = LocalStore(graph_dir).rdf
    yield from _serve(_Endpoint)


def test_remote_endpoint_answers_like_the_local_store(graph_dir, endpoint):
    remote = open_store(endpoint=endpoint)
    assert isinstance(remote, EndpointStore)
    assert remote.query(BRANDS_OF_TWO_ITEMS)["label"].tolist() == ["StudioX"]
    iris = [f"https://w3id.org/kgrec/id/item/{i}" for i in range(1, 11)]
    assert remote.labels(iris) == LocalStore(graph_dir).labels(iris)


def test_unreachable_endpoint_is_a_clear_error():
    with pytest.raises(InputError, match="SPARQL endpoint http://127.0.0.1:9/sparql failed"):
        EndpointStore("http://127.0.0.1:9/sparql").query("SELECT * WHERE { ?s ?p ?o } LIMIT 1")


class _Counting(BaseHTTPRequestHandler):
    """Counts the requests a query makes this machine send; answers an empty SPARQL result."""

    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/sparql-results+json")
        self.end_headers()
        self.wfile.write(b'{"head": {"vars": ["o"]}, "results": {"bindings": []}}')

    do_POST = do_GET

    def log_message(self, *args) -> None:  # noqa: ANN002 - silence
        pass


@pytest.fixture
def listener():
    _Counting.requests = []
    yield from _serve(_Counting)


def test_federated_queries_send_nothing_unless_allowed(graph_dir, listener):
    service = f"SELECT ?o WHERE {{ SERVICE <{listener}> {{ ?s ?p ?o }} }}"
    load = f"SELECT ?o FROM <{listener}> WHERE {{ ?s ?p ?o }}"
    for sparql, part in ((service, "SERVICE"), (load, "FROM")):
        with pytest.raises(InputError, match=f"federated queries are off|{part} <"):
            query(sparql, graph_dir)
        with pytest.raises(InputError, match="federated queries are off"):
            EndpointStore(listener).query(sparql)  # the same rule for a query handed on to an endpoint
    assert _Counting.requests == []  # nothing left this process
    query(service, graph_dir, allow_service=True)
    assert len(_Counting.requests) == 1  # the same query, allowed, does reach the network


def test_unknown_prefix_and_evaluation_errors_are_one_line(graph_dir):
    with pytest.raises(InputError, match="Unknown namespace prefix : foo"):
        query("SELECT ?x WHERE { ?x foo:bar ?y }", graph_dir)
    with pytest.raises(InputError, match="only SELECT and ASK"):
        query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", graph_dir)


ENDLESS = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n ?o }"  # ~10^10 rows on the tiny graph


def _query_process(graph_dir, *extra: str):
    import subprocess
    import sys

    command = [sys.executable, "-m", "kgrec", "query", ENDLESS, "--graph", str(graph_dir), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc (Linux)."""
    import os

    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
def test_a_query_stops_at_its_timeout_and_on_ctrl_c(graph_dir):
    """Oxigraph evaluates in native code and ignored Ctrl-C; `kgrec query` had no time limit."""
    import signal
    import time

    process = _query_process(graph_dir, "--timeout", "3")
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2 and "took longer than 3 s and was stopped" in stderr, stderr[-2000:]

    process = _query_process(graph_dir)
    # Wait for the query itself, not for a wall time: imports take ~1.5 s of CPU (seconds more of wall on a loaded
    # machine, where a Ctrl-C then lands in them and click answers "Aborted!"); the endless query is all CPU after.
    deadline = time.monotonic() + 120
    while _cpu_seconds(process.pid) < 5 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr[-2000:]


def test_the_on_disk_store_answers_as_the_parsed_files_and_a_read_only_graph_still_answers(graph_dir, tmp_path, mounts):
    """`kgrec query` took 10.8 s to a first answer on ml-100k; build-graph now leaves Oxigraph's own store, opened
    read-only by every later process."""
    import shutil

    sparql = "SELECT ?c (COUNT(?i) AS ?n) WHERE { ?i kgrec:hasCategory ?c } GROUP BY ?c ORDER BY ?c"
    assert LocalStore(graph_dir).warm()
    stores = list((graph_dir / "cache" / "oxigraph").iterdir())
    assert len(stores) == 1 and (stores[0] / "COMPLETE").is_file()
    from_disk = LocalStore(graph_dir).query(sparql)
    assert from_disk.equals(LocalStore(graph_dir, "rdflib").query(sparql)) and len(from_disk)
    readonly = mounts.tmpfs("ro", size="16m")
    shutil.copytree(graph_dir, readonly / "g", ignore=shutil.ignore_patterns("cache"))
    mounts.readonly(readonly)
    assert not LocalStore(readonly / "g").warm()  # nowhere to build it: the files are parsed instead
    assert LocalStore(readonly / "g").query(sparql).equals(from_disk)


def test_build_graph_leaves_the_sparql_store(tiny_dataset, tmp_path):
    from kgrec import api

    api.build_graph(tiny_dataset, out=tmp_path / "g")
    assert [p.name for p in (tmp_path / "g" / "cache" / "oxigraph").iterdir() if (p / "COMPLETE").is_file()]
    api.build_graph(tiny_dataset, out=tmp_path / "g")  # a rebuild keeps one store, not one per build
    assert len(list((tmp_path / "g" / "cache" / "oxigraph").iterdir())) == 1
