"""Saving and loading graph directories: round trip, atomicity, corruption and version checks."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from kgrec.errors import InputError
from kgrec.graph import load_graph, save_graph, to_hetero, to_rdflib
from kgrec.graph import store as store_module


def test_round_trip(tmp_path, tiny_graph):
    save_graph(tiny_graph, tmp_path / "g")
    loaded = load_graph(tmp_path / "g")
    assert loaded.items == tiny_graph.items and loaded.users == tiny_graph.users
    assert loaded.entities == tiny_graph.entities and loaded.relations == tiny_graph.relations
    assert loaded.entity_kinds == tiny_graph.entity_kinds
    assert (loaded.triples == tiny_graph.triples).all()
    pd.testing.assert_frame_equal(loaded.split.interactions, tiny_graph.split.interactions)
    pd.testing.assert_frame_equal(loaded.catalog, tiny_graph.catalog)
    for edge_type in to_hetero(tiny_graph).edge_types:
        assert torch.equal(to_hetero(loaded)[edge_type].edge_index, to_hetero(tiny_graph)[edge_type].edge_index)
    assert loaded.stats == json.loads(json.dumps(tiny_graph.stats))
    assert loaded.config == tiny_graph.config


def test_failed_save_leaves_previous_graph(tmp_path, tiny_graph, monkeypatch):
    out = tmp_path / "out"
    save_graph(tiny_graph, out / "g")
    before = {p.name: p.read_bytes() for p in (out / "g").iterdir()}

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store_module, "write_networkx", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        save_graph(tiny_graph, out / "g")
    assert {p.name: p.read_bytes() for p in (out / "g").iterdir()} == before
    assert [p.name for p in out.iterdir()] == ["g"]  # no temporary directory left


def test_failed_first_save_leaves_nothing(tmp_path, tiny_graph, monkeypatch):
    monkeypatch.setattr(store_module, "write_networkx", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        save_graph(tiny_graph, tmp_path / "out" / "g")
    assert list((tmp_path / "out").iterdir()) == []


def test_refuses_to_overwrite_foreign_directory(tmp_path, tiny_graph):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="not a graph directory that kgrec made"):
        save_graph(tiny_graph, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_corrupted_file_is_detected(tmp_path, tiny_graph):
    save_graph(tiny_graph, tmp_path / "g")
    with open(tmp_path / "g" / "kg_triples.tsv", "a") as handle:
        handle.write("item:1\thas_category\tentity:B\n")
    with pytest.raises(InputError, match="kg_triples.tsv: checksum differs"):
        load_graph(tmp_path / "g")


def test_other_format_version_is_refused(tmp_path, tiny_graph):
    save_graph(tiny_graph, tmp_path / "g")
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "g" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="rebuild it with 'kgrec build-graph'"):
        load_graph(tmp_path / "g")


def test_not_a_graph_directory(tmp_path):
    with pytest.raises(InputError, match="no manifest.json"):
        load_graph(tmp_path)


def test_saved_ntriples_parse_with_rdflib(tmp_path, tiny_graph):
    import rdflib

    save_graph(tiny_graph, tmp_path / "g")
    rdf = rdflib.Graph().parse(tmp_path / "g" / "kg.nt", format="nt")
    assert len(rdf) == len(to_rdflib(tiny_graph))
    ontology = rdflib.Graph().parse(tmp_path / "g" / "ontology.ttl", format="turtle")
    assert len(ontology) > 20


# Text a shop's own catalog really holds: quotes, backslashes, tabs, line breaks, non-BMP characters.
ODD = [
    'TV 55"',
    "back\\slash",
    "tab\there",
    "two\nlines",
    "crlf\r\nend",
    "emoji 😀 𝄞",
    "quote \"in\" 'both'",
    "\\n literally",
]


@pytest.fixture
def odd_graph(tmp_path):
    """A graph whose every text field (ids, titles, descriptions, categories, brands, triples) holds odd characters."""
    from kgrec.data import read_dataset
    from kgrec.graph import build_graph

    items = pd.DataFrame(
        {
            "item": [f"item {t}" for t in ODD],
            "title": [f"Title {t}" for t in ODD],
            "description": [f"About {t}" for t in ODD],
            "category": [f'{t}|shared "cat"' for t in ODD],
            "brand": [f"Brand {t}" for t in ODD],
        }
    )
    log = pd.DataFrame(
        [(f"user {u}\t{ODD[u]}", f"item {ODD[i]}") for u in range(len(ODD)) for i in range(len(ODD)) if (u + i) % 3],
        columns=["user", "item"],
    )
    triples = pd.DataFrame(
        {
            "head": [f"item {t}" for t in ODD],
            "relation": [f"made by {t}" for t in ODD],
            "tail": [f"maker {t}" for t in ODD],
        }
    )
    for name, frame in (("items", items), ("log", log), ("triples", triples)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    data = read_dataset(tmp_path / "log.csv", tmp_path / "items.csv", triples=tmp_path / "triples.csv", name="odd")
    graph = build_graph(data)
    save_graph(graph, tmp_path / "g")
    return graph, tmp_path / "g"


def test_odd_text_gives_valid_ntriples_and_round_trips(odd_graph):
    from rdflib.plugins.parsers.ntriples import W3CNTriplesParser

    from kgrec.graph.rdf import node_iri
    from kgrec.graph.sparql import LocalStore, query

    graph, directory = odd_graph
    lines = (directory / "kg.nt").read_text(encoding="utf-8").split("\n")[:-1]

    class Sink:
        count = 0

        def triple(self, *terms) -> None:  # noqa: ANN002
            Sink.count += 1

    with open(directory / "kg.nt", "rb") as handle:
        W3CNTriplesParser(sink=Sink()).parse(handle)  # the strict N-Triples grammar: raises on a raw newline
    assert Sink.count == len(lines)  # one statement per line
    labels = LocalStore(directory).labels([node_iri(graph, n)[1:-1] for n in range(len(graph.items))])
    assert sorted(labels.values()) == sorted(f"Title {t}" for t in ODD)
    found = query("SELECT ?d WHERE { ?i kgrec:description ?d }", directory)["d"]
    assert sorted(found) == sorted(f"About {t}" for t in ODD)
    loaded = load_graph(directory)
    assert (loaded.triples == graph.triples).all() and loaded.entities == graph.entities
    assert {f"Brand {t}" for t in ODD} | {'TV 55"', 'shared "cat"'} <= set(loaded.entities.ids)


def test_odd_text_exports_one_record_per_line(odd_graph, tmp_path):
    from kgrec.graph import export_recbole

    graph, directory = odd_graph
    folder = export_recbole(load_graph(directory), tmp_path / "export")
    kg = (folder / "odd.kg").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(kg) == 1 + len(graph.triples) and all(line.count("\t") == 2 for line in kg)
    items = (folder / "odd.item").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(items) == 1 + len(graph.items)


def test_manifest_records_the_digest_and_a_rebuild_changes_it(tmp_path, tiny_dataset):
    from kgrec.config import GraphConfig, SplitConfig
    from kgrec.graph import build_graph

    first = build_graph(tiny_dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))))
    save_graph(first, tmp_path / "g")
    assert json.loads((tmp_path / "g" / "manifest.json").read_text())["digest"] == first.digest
    assert load_graph(tmp_path / "g").digest == first.digest == build_graph(tiny_dataset, first.config).digest
    reseeded = build_graph(tiny_dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2), seed=7)))
    assert reseeded.digest != first.digest


@pytest.mark.slow
def test_a_killed_build_leaves_no_temporary_folder_after_the_next_build(tmp_path, tiny_files):
    import os
    import signal
    import subprocess
    import sys
    import time

    args = [
        sys.executable,
        "-m",
        "kgrec",
        "build-graph",
        *[f"--{r}={p}" for r, p in tiny_files.items()],
        f"--out={tmp_path / 'g'}",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".g.*.tmp")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert list(tmp_path.glob(".g.*.tmp")), "the build finished before it could be killed"
    assert subprocess.run(args, capture_output=True).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    load_graph(tmp_path / "g")


def test_a_manifest_naming_files_outside_the_folder_is_refused(tmp_path, tiny_graph):
    save_graph(tiny_graph, tmp_path / "g")
    (tmp_path / "secret.txt").write_text("not the graph's")
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    manifest["files"]["../secret.txt"] = "0" * 64
    (tmp_path / "g" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="lists '../secret.txt', which is not a file of the graph folder"):
        load_graph(tmp_path / "g")


def test_a_crafted_tensor_file_with_a_matching_hash_is_one_line(tmp_path, tiny_graph):
    import pickle

    from kgrec.io import sha256_file

    save_graph(tiny_graph, tmp_path / "g")

    class Anything:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"x": Anything()}, tmp_path / "g" / "hetero.pt", pickle_protocol=pickle.HIGHEST_PROTOCOL)
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    manifest["files"]["hetero.pt"] = sha256_file(tmp_path / "g" / "hetero.pt")
    (tmp_path / "g" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=r"hetero.pt: is not a tensor file kgrec wrote") as caught:
        load_graph(tmp_path / "g")
    assert "\n" not in str(caught.value)


def test_a_graph_saved_through_a_symlink_keeps_the_link(tmp_path, tiny_graph):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    save_graph(tiny_graph, tmp_path / "link")
    save_graph(tiny_graph, tmp_path / "link")  # a rebuild replaces the target's content, not the link
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real" / "manifest.json").is_file()
    assert load_graph(tmp_path / "link").items == tiny_graph.items
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no .link.old-PID left behind
