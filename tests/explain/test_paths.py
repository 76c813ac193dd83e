"""Explanation paths on the tiny graph: real edges, readable labels, bounded search, faithfulness."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from kgrec import api
from kgrec.config import GraphConfig, RunConfig, SplitConfig
from kgrec.data import read_dataset
from kgrec.errors import InputError
from kgrec.explain import PathFinder, path_faithfulness, relation_label, score_shares
from kgrec.graph import build_graph, save_graph
from kgrec.graph.sparql import LocalStore
from tests.conftest import TINY_TRAINING

FAST = {**TINY_TRAINING, "train.epochs": 20, "model.use_text": False}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tests.conftest import write_tiny_files

    folder = tmp_path_factory.mktemp("explain")
    dataset = read_dataset(**write_tiny_files(folder / "files"), name="tiny")
    graph = build_graph(dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))))
    save_graph(graph, str(folder / "graph"))
    # Trained long enough that the model, not initial noise, decides the scores the paths explain.
    config = RunConfig().override({**FAST, "model.dim": 16, "train.epochs": 100})
    return api.train(graph, config, out=folder / "run", graph_dir=folder / "graph", quiet=True).recommender


def _kg_edges(graph) -> set[tuple[int, int]]:
    return {(int(h), int(t)) for h, _, t in graph.triples} | {(int(t), int(h)) for h, _, t in graph.triples}


def test_every_hop_is_a_training_edge_and_labels_resolve(run):
    graph = run.graph
    finder = PathFinder(run, labels=LocalStore(run.graph_dir).labels)
    train = graph.split.train
    kg_edges = _kg_edges(graph)
    titles = dict(zip(graph.items.ids, graph.catalog["title"]))
    checked = 0
    for user_id in graph.users.ids:
        seen = set(train.loc[train["user_id"] == user_id, "item_id"])
        for item_id in graph.items.ids:
            for path in finder.find(user_id, item_id, max_paths=10):
                checked += 1
                assert path.history_item_id in seen  # never a validation or test interaction
                assert path.nodes[0] == f"user:{user_id}" and path.nodes[-1] == f"item:{item_id}"
                assert path.relations[0] == "interacted with"
                if path.relations[1:] != ("is often interacted with together with",):
                    hops = list(zip(path.kg_nodes, path.kg_nodes[1:]))
                    assert all(hop in kg_edges for hop in hops), path
                    assert len(path.relations) == len(path.nodes) - 1
                assert path.labels[1] == titles[path.history_item_id] and path.labels[-1] == titles[item_id]
    assert checked > 20


def test_shared_director_path_is_found_and_readable(run):
    # u1 watched Alpha; Alpha and Beta are both directed by m.nolan.
    finder = PathFinder(run, labels=LocalStore(run.graph_dir).labels)
    graph = run.graph
    train = graph.split.train
    user = next(u for u in graph.users.ids if "1" in set(train.loc[train["user_id"] == u, "item_id"]))
    paths = finder.find(user, "10", max_paths=50)  # Kappa: cold, directed by m.nolan, category A, StudioX
    kinds = {path.relations[1] for path in paths}
    assert any("directed by" in relation for relation in kinds)
    nolan = [p for p in paths if "entity:m.nolan" in p.nodes]
    # No label in the data: described by its relation, the id kept.
    assert nolan and nolan[0].labels[2] == "what both are directed by (m.nolan)"
    assert "directed by" in nolan[0].text() and '"Kappa"' in nolan[0].text()
    record = nolan[0].to_dict()
    assert set(record) >= {"nodes", "labels", "relations", "score"} and "edges" not in record
    # A category from the catalog is named by its own text, not described as an unlabelled entity.
    category = [p for p in paths if p.relations[1] == "has category"]
    assert category and category[0].labels[2] == "A"


def test_user_labels_from_a_table_or_rdf_name_entities(run, tmp_path):
    user = next(
        u
        for u in run.graph.users.ids
        if "1" in set(run.graph.split.train.loc[run.graph.split.train["user_id"] == u, "item_id"])
    )
    table = tmp_path / "labels.csv"
    table.write_text('entity,label\nm.nolan,"Nolan, Christopher"\nm.other,\n')
    rdf = tmp_path / "labels.ttl"
    rdf.write_text(
        '@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n<http://rdf.freebase.com/ns/m.nolan> rdfs:label "C. Nolan" .\n'
    )
    for source, expected in ((table, "Nolan, Christopher"), (rdf, "C. Nolan")):
        paths = api.explain(run, user, "10", max_paths=50, labels=source)
        assert expected in {label for path in paths for label in path.labels}, source
    bad = tmp_path / "bad.csv"
    for text, message in (
        ("id,name\nm.nolan,N\n", "needs columns 'entity' and 'label'"),
        ("entity,label\n,N\n", "empty entity id"),
        ("entity,label\nm.nolan,\n", "no entity labels"),
    ):
        bad.write_text(text)
        with pytest.raises(InputError, match=message):
            api.explain(run, user, "10", labels=bad)


def test_score_shares_per_item(run):
    user = run.graph.users.ids[0]
    (rec,) = api.recommend(run, [user], k=3, explain=True)
    assert len(rec.shares) == 3
    for shares in rec.shares:
        assert set(shares) == ({"graph", "ease"} if float(run.model.ease.blend) else {"graph"})  # no text in this run
        assert sum(abs(v) for v in shares.values()) == pytest.approx(1.0)


def test_bounded_search_on_a_dense_hub(tmp_path):
    # Every item shares one hub entity, and 40 entities are all linked to each other and to every item.
    from tests.conftest import write_tiny_files

    files = write_tiny_files(tmp_path / "files")
    items = [str(i) for i in range(1, 11)]
    entities = [f"m.e{j}" for j in range(40)]
    triples = [(f"m.{i}", "in_hub", "m.hub") for i in items]
    triples += [(a, "near", b) for a in entities for b in entities if a < b]
    triples += [(f"m.{i}", "tagged", e) for i in items for e in entities]
    pd.DataFrame(triples, columns=["head", "relation", "tail"]).to_csv(files["triples"], index=False)
    pd.DataFrame([(i, f"m.{i}") for i in items], columns=["item", "entity"]).to_csv(files["links"], index=False)
    graph = build_graph(read_dataset(**files, name="dense"))
    recommender = api.train(graph, RunConfig().override({**FAST, "train.epochs": 2}), quiet=True).recommender
    finder = PathFinder(recommender, max_fanout=3)
    user = graph.users.ids[0]
    paths = finder.find(user, "9", max_paths=10_000)
    # At most 3 first-hop entities, 3 second-hop entities each, and their item neighbours.
    assert 0 < len(paths) <= (3 + 3 * 3) * 10
    assert all(len(path.nodes) <= 5 for path in paths)
    assert len(PathFinder(recommender, max_fanout=1, max_hops=1).find(user, "9", max_paths=10_000)) <= 10


def test_unknown_ids_and_bad_hops(run):
    with pytest.raises(InputError, match="unknown user id 'ghost'"):
        PathFinder(run).find("ghost", "1")
    with pytest.raises(InputError, match="unknown item id 'nope'"):
        PathFinder(run).find(run.graph.users.ids[0], "nope")
    with pytest.raises(InputError, match="max_hops"):
        PathFinder(run, max_hops=3)


def test_relation_label():
    assert relation_label("film.film.directed_by") == "directed by"
    assert relation_label("has_category") == "has category"
    assert relation_label("http://schema.org/author") == "author"


def test_top_path_is_more_faithful_than_a_random_one(run):
    finder = PathFinder(run)
    result = path_faithfulness(finder, list(run.graph.users.ids), seed=0)
    assert result.users >= 3
    assert result.top_path_drop > result.random_path_drop
    assert result.top_beats_random > 0.5


def test_graph_without_removes_exactly_the_path_edges(run):
    from kgrec.explain import graph_without

    finder = PathFinder(run)
    user_id = run.graph.users.ids[0]
    path = next(p for item in run.graph.items.ids for p in finder.find(user_id, item, max_paths=3) if len(p.edges) > 1)
    reduced = graph_without(finder, path)
    full = run.prop_graph
    assert full.history._nnz() - reduced.history._nnz() == 1
    removed_kg = full.kg_edge_index.size(1) - reduced.kg_edge_index.size(1)
    assert removed_kg >= 2 * (len(path.edges) - 1)  # both directions of every KG hop
    user = int(run.graph.users.to_index([user_id])[0])
    assert reduced.history_rows(torch.tensor([user])).to_dense()[0, path.kg_nodes[0]] == 0


def test_parallel_and_opposite_triples_between_the_same_nodes(tmp_path):
    # Two relations join m.alpha and m.nolan, and m.nolan also points back at m.alpha: each is its own hop.
    from tests.conftest import TRIPLES, write_tiny_files

    files = write_tiny_files(tmp_path / "files")
    extra = [
        ("m.alpha", "produced_by", "m.nolan"),
        ("m.nolan", "favourite_film", "m.alpha"),
        ("m.kappa", "produced_by", "m.nolan"),
    ]
    pd.DataFrame(TRIPLES + extra, columns=["head", "relation", "tail"]).to_csv(files["triples"], index=False)
    graph = build_graph(read_dataset(**files, name="parallel"))
    recommender = api.train(graph, RunConfig().override({**FAST, "train.epochs": 2}), quiet=True).recommender
    finder = PathFinder(recommender)
    train = graph.split.train
    user = next(u for u in graph.users.ids if "1" in set(train.loc[train["user_id"] == u, "item_id"]))
    paths = [
        p
        for p in finder.find(user, "10", max_paths=100, distinct=False)
        if "entity:m.nolan" in p.nodes and p.history_item_id == "1"
    ]
    first_hops = {p.relations[1] for p in paths}
    assert {"directed by", "produced by", "favourite film (inverse)"} <= first_hops
    # Shown to a person, the three are one fact: both are linked to m.nolan.
    told = [
        p
        for p in finder.find(user, "10", max_paths=100)
        if [graph.node_key(n) for n in p.kg_nodes[1:-1]] == ["entity:m.nolan"]
    ]
    assert len(told) == 1
    kg_edges = _kg_edges(graph)
    assert all(hop in kg_edges for p in paths for hop in zip(p.kg_nodes, p.kg_nodes[1:]))


def test_score_shares_of_several_users_match_one_at_a_time(run):
    users = list(run.graph.users.ids[:3])
    recs = run.recommend(users, k=4)
    together = score_shares(
        run, users, [rec.item_ids[: 2 + i % 2] for i, rec in enumerate(recs)]
    )  # rows of unequal length
    for i, rec in enumerate(recs):
        alone = score_shares(run, [rec.user_id], [rec.item_ids[: 2 + i % 2]])[0]
        assert len(together[i]) == len(alone)
        for a, b in zip(together[i], alone):
            assert a == pytest.approx(b, abs=1e-9)


def test_each_shared_fact_is_told_once_and_rare_entities_explain_first(run):
    """kgrec explain listed one genre three times and put hub entities ('a shared country') before specific ones."""
    finder = PathFinder(run)
    before = PathFinder(run, ranking="contribution")
    graph = run.graph
    for user_id in graph.users.ids:
        for item_id in graph.items.ids:
            paths = finder.find(user_id, item_id, max_paths=50)
            facts = [
                p.kg_nodes[1:-1] or ("history", p.history_item_id) for p in paths if p.relations[0] == "interacted with"
            ]
            assert len(facts) == len(set(facts)), (user_id, item_id)
            keys = [(p.score * p.specificity) for p in paths if p.score > 0 and p.relations != ("interacted with",)]
            assert keys == sorted(keys, reverse=True)
            # The same candidate paths, only ordered (and deduplicated) differently.
            assert {p.nodes for p in paths} <= {p.nodes for p in before.find(user_id, item_id, max_paths=10_000)}
    with pytest.raises(InputError, match="unknown path ranking"):
        PathFinder(run, ranking="alphabetical")


def test_explanation_metrics_on_hand_made_paths():
    import numpy as np

    from kgrec.explain import ExplanationPath, explanation_metrics

    def path(history, entities, relations):
        return ExplanationPath(
            "u", "9", history, (), (), ("interacted with", *relations), 1.0, 1.0, (), (int(history), *entities, 9)
        )

    degree = np.array([1] * 10 + [3, 1000])  # items 0-9, then a rare entity (10) and a hub (11)
    hub_twice = [path("1", [11], ["country", "country (inverse)"]), path("2", [11], ["country", "country (inverse)"])]
    varied = [
        path("1", [10], ["directed by", "directed by (inverse)"]),
        path("2", [11], ["country", "country (inverse)"]),
    ]
    hub, mixed = (explanation_metrics([paths], degree, num_items=10) for paths in (hub_twice, varied))
    assert hub.sep == 1.0 and hub.distinct_facts == 0.5 and hub.etd == 0.5 and hub.kg_share == 1.0
    assert mixed.sep < hub.sep and mixed.distinct_facts == 1.0 and mixed.etd == 1.0
    assert explanation_metrics([[None, None]], degree, 10).users == 0
