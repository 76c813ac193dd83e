"""Every input format reads to the same Dataset."""

from __future__ import annotations

import pandas as pd
import pytest

from kgrec.config import DataConfig, InteractionColumns
from kgrec.data import read_dataset
from kgrec.errors import InputError
from tests.conftest import INTERACTIONS, ITEMS, LINKS, TRIPLES, tiny_frames, write_tiny_files


def _canonical(dataset):
    return (
        dataset.interactions.sort_values(["user_id", "item_id"]).reset_index(drop=True),
        dataset.items.reset_index(drop=True),
        dataset.triples.sort_values(["head", "relation", "tail"]).reset_index(drop=True),
        dataset.links.sort_values("item_id").reset_index(drop=True),
    )


@pytest.mark.parametrize("fmt", ["tsv", "parquet"])
def test_formats_read_to_equal_dataset(tmp_path, tiny_dataset, fmt):
    other = read_dataset(**write_tiny_files(tmp_path / fmt, fmt), name="tiny")
    for mine, theirs in zip(_canonical(tiny_dataset), _canonical(other)):
        pd.testing.assert_frame_equal(mine, theirs, check_dtype=False)


def test_dataframes_read_to_the_same_dataset_as_files(tiny_dataset):
    frames = tiny_frames()
    frames["items"]["category"] = frames["items"]["category"].str.split("|")  # list cells, as pandas users hold them
    other = read_dataset(**frames, name="tiny")
    for mine, theirs in zip(_canonical(tiny_dataset), _canonical(other)):
        pd.testing.assert_frame_equal(mine, theirs, check_dtype=False)


def test_a_dataframe_error_names_the_frame_and_row():
    frames = tiny_frames()
    frames["interactions"].loc[3, "item"] = None
    with pytest.raises(InputError, match=r"^<interactions DataFrame>:3: empty item id"):
        read_dataset(frames["interactions"], frames["items"])
    with pytest.raises(InputError, match=r"<items DataFrame>"):
        read_dataset(tiny_frames()["interactions"], frames["items"].iloc[:3])


def test_typed_columns_and_context(tiny_dataset):
    log = tiny_dataset.interactions
    assert log["rating"].dtype == "float64"
    assert log["timestamp"].dtype == "int64"
    assert tiny_dataset.context_columns == ["device"]
    items = tiny_dataset.items.set_index("item_id")
    assert items.loc["3", "categories"] == ("A", "C")
    assert items.loc["4", "brands"] == ()
    assert len(tiny_dataset.items) == len(ITEMS)  # the cold item 10 stays in the catalog


def test_recbole_atomic_files(tmp_path, tiny_dataset):
    (tmp_path / "t.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        + "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t, _ in INTERACTIONS)
    )
    (tmp_path / "t.item").write_text(
        "item_id:token\ttitle:token_seq\tcategory:token_seq\n"
        + "".join(f"{i}\t{title}\t{cat.replace('|', ' ')}\n" for i, title, _, cat, _ in ITEMS)
    )
    (tmp_path / "t.kg").write_text(
        "head_id:token\trelation_id:token\ttail_id:token\n" + "".join("\t".join(t) + "\n" for t in TRIPLES)
    )
    (tmp_path / "t.link").write_text("item_id:token\tentity_id:token\n" + "".join("\t".join(t) + "\n" for t in LINKS))
    config = DataConfig(
        interactions=InteractionColumns(user="user_id", item="item_id"),
        items={"item": "item_id"},
        triples={"head": "head_id", "relation": "relation_id", "tail": "tail_id"},
        links={"item": "item_id", "entity": "entity_id"},
    )
    atomic = read_dataset(
        tmp_path / "t.inter", tmp_path / "t.item", None, tmp_path / "t.kg", tmp_path / "t.link", config
    )
    assert atomic.items.set_index("item_id").loc["5", "categories"] == ("A", "B")  # token_seq splits on spaces
    mine, theirs = _canonical(tiny_dataset), _canonical(atomic)
    pd.testing.assert_frame_equal(mine[0].drop(columns="device"), theirs[0], check_dtype=False)
    pd.testing.assert_frame_equal(mine[2], theirs[2])


def _turtle(triples) -> str:
    lines = ["@prefix ex: <http://example.org/> .", "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> ."]
    lines += [f"ex:{h.replace('.', '_')} ex:{r} ex:{t.replace('.', '_')} ." for h, r, t in triples]
    lines.append('ex:m_nolan rdfs:label "Christopher Nolan" .')
    lines.append('ex:m_nolan ex:height "1.81" .')
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("fmt", ["ttl", "nt"])
def test_rdf_triples(tmp_path, tiny_files, fmt):
    import rdflib

    graph = rdflib.Graph().parse(data=_turtle(TRIPLES), format="turtle")
    path = tmp_path / f"kg.{fmt}"
    graph.serialize(path, format="turtle" if fmt == "ttl" else "nt", encoding="utf-8")
    links = tmp_path / "links.csv"
    pd.DataFrame(
        [(i, f"http://example.org/{e.replace('.', '_')}") for i, e in LINKS], columns=["item", "entity"]
    ).to_csv(links, index=False)
    dataset = read_dataset(tiny_files["interactions"], tiny_files["items"], triples=path, links=links)
    assert len(dataset.triples) == len(TRIPLES)
    assert dataset.entity_labels == {"http://example.org/m_nolan": "Christopher Nolan"}
    assert any("literal" in note for note in dataset.notes)


def test_duplicates_dropped_and_counted(tmp_path, tiny_files):
    log = pd.read_csv(tiny_files["interactions"])
    repeated = pd.concat([log, log.iloc[:3].assign(timestamp=log["timestamp"].iloc[:3] + 5, rating=5.0)])
    repeated.to_csv(tiny_files["interactions"], index=False)
    dataset = read_dataset(tiny_files["interactions"], tiny_files["items"])
    assert len(dataset.interactions) == len(log)
    assert any("merged 3 rows repeating a (user, item, device) observation" in note for note in dataset.notes)
    kept = dataset.interactions.set_index(["user_id", "item_id"]).loc[("u1", "1")]
    assert kept["rating"] == 5.0  # the latest rating wins


def test_the_same_item_in_another_context_is_another_observation(tmp_path):
    from kgrec.config import DataConfig

    log = pd.DataFrame(
        {
            "user": ["u1", "u1", "u1", "u1", "u2"],
            "item": ["mail", "mail", "mail", "game", "mail"],
            "cnt": [2.0, 3.0, 1.0, 4.0, 1.0],
            "place": ["work", "work", "home", "home", "work"],
        }
    )
    summed = read_dataset(log, config=DataConfig(interactions={"rating": "cnt"}, repeats="sum"))
    rows = summed.interactions.set_index(["user_id", "item_id", "place"])["rating"]
    assert len(rows) == 4 and rows[("u1", "mail", "work")] == 5.0 and rows[("u1", "mail", "home")] == 1.0
    assert any(
        "merged 1 rows repeating a (user, item, place) observation" in note and "summed" in note
        for note in summed.notes
    )
    latest = read_dataset(log, config=DataConfig(interactions={"rating": "cnt"}))
    assert latest.interactions.set_index(["user_id", "item_id", "place"])["rating"][("u1", "mail", "work")] == 3.0
    # Without context columns a repeated pair is one interaction, as before.
    plain = read_dataset(log.drop(columns="place"), config=DataConfig(interactions={"rating": "cnt"}))
    assert len(plain.interactions) == 3


def test_iso_timestamps(tmp_path, tiny_files):
    log = pd.read_csv(tiny_files["interactions"])
    log["timestamp"] = pd.to_datetime(log["timestamp"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S")
    log.to_csv(tiny_files["interactions"], index=False)
    dataset = read_dataset(tiny_files["interactions"])
    assert dataset.interactions["timestamp"].min() == 1_600_000_000 + 1000 + 1


def test_without_catalog_items_come_from_log(tiny_files):
    dataset = read_dataset(tiny_files["interactions"])
    assert sorted(dataset.items["item_id"], key=int) == [str(i) for i in range(1, 10)]


def test_lenient_ids_drop_unknown_rows(tiny_files):
    items = pd.read_csv(tiny_files["items"], dtype=str)
    items[items["item"] != "9"].to_csv(tiny_files["items"], index=False)
    dataset = read_dataset(tiny_files["interactions"], tiny_files["items"], config=DataConfig(strict_ids=False))
    assert "9" not in set(dataset.interactions["item_id"])
    assert any("dropped 4 rows whose item" in note for note in dataset.notes)


def test_parquet_list_columns_are_multi_valued(tmp_path):
    from kgrec.data import read_catalog

    catalog = pd.DataFrame(
        {
            "item": ["1", "2", "3"],
            "category": [["Toys", "Kids"], [], None],
            "brand": [["Acme"], ["Acme", "Zed"], ["Zed"]],
            "tags": [["a", "b"], ["c"], []],
        }
    )
    catalog.to_parquet(tmp_path / "items.parquet", index=False)
    items = read_catalog(tmp_path / "items.parquet").set_index("item_id")
    assert (
        items.loc["1", "categories"] == ("Toys", "Kids")
        and items.loc["2", "categories"] == () == items.loc["3", "categories"]
    )
    assert items.loc["2", "brands"] == ("Acme", "Zed")
    assert items.loc["1", "tags"] == "a|b"  # an extra list column is carried as the separator-joined text
    pd.DataFrame({"item": [["1", "2"]], "title": ["x"]}).to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(InputError, match="column 'item' holds lists, but a item id is one value per row"):
        read_catalog(tmp_path / "bad.parquet")


@pytest.mark.parametrize(
    ("table", "content", "fragment"),
    [
        ("interactions", "user,item,item_id\nu1,A,x1\nu1,B,x2\n", "column 'item_id' besides the item id column 'item'"),
        ("interactions", "user,item,user_id\nu1,A,x1\n", "column 'user_id' besides the user id column 'user'"),
        ("interactions", "user,item,split\nu1,A,test\n", "column 'split'"),
        ("interactions", "user,item,stars,rating\nu1,A,5,x\n", "column 'rating' besides the rating column 'stars'"),
        ("items", "item,name,title\n1,One,Other\n", "column 'title' besides the title column 'name'"),
        ("items", "item,category,categories\n1,A,B\n", "column 'categories' besides the category column 'category'"),
        ("users", "user,user_id,age\nu1,x,3\n", "column 'user_id' besides the user id column 'user'"),
    ],
)
def test_an_extra_column_named_like_a_parsed_one_is_an_error(tmp_path, table, content, fragment):
    files = write_tiny_files(tmp_path)
    log = files["interactions"]
    if table == "interactions":
        log = tmp_path / "log.csv"
        log.write_text(content)
    path = tmp_path / f"{table}.csv"
    if table != "interactions":
        path.write_text(content)
    declared = (
        {"interactions": {"rating": "stars"}}
        if "stars" in content
        else {"items": {"title": "name"}}
        if "name" in content
        else {}
    )
    config = DataConfig.model_validate(declared)
    with pytest.raises(InputError, match=fragment.replace("(", r"\(")):
        read_dataset(
            log, items=path if table == "items" else None, users=path if table == "users" else None, config=config
        )


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (
            "ttl",
            "@prefix ex: <http://example.org/> .\nex:m1 ex:award [ ex:kind ex:oscar ; ex:year ex:y1999 ] .\n"
            "ex:m2 ex:award [ ex:kind ex:bafta ] .\n",
        ),
        (
            "nt",
            "<http://example.org/m1> <http://example.org/award> _:a .\n_:a <http://example.org/kind> <http://example.org/oscar> .\n",
        ),
    ],
)
def test_blank_nodes_get_the_same_ids_every_time(tmp_path, suffix, text):
    """rdflib names blank nodes at random per parse; the graph built from identical files must not change."""
    from kgrec.data.readers import read_rdf_triples

    path = tmp_path / f"kg.{suffix}"
    path.write_text(text)
    first, second = (read_rdf_triples(path)[0] for _ in range(2))
    pd.testing.assert_frame_equal(first, second)
    blank = {v for v in first[["head", "tail"]].to_numpy().ravel() if not v.startswith("http")}
    assert blank and all(v.startswith("_:") for v in blank)  # never a bare label an entity id could have
