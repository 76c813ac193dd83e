"""Bad input: each case gives one line naming the file (and line) and what is wrong."""

from __future__ import annotations

import pytest

from kgrec.config import DataConfig
from kgrec.data import read_dataset
from kgrec.errors import InputError

GOOD_LOG = "user,item,rating,timestamp\nu1,1,4,1600000000\nu1,2,3,1600000001\nu2,1,5,1600000002\n"
GOOD_ITEMS = "item,title,category\n1,One,A\n2,Two,B\n"

# (case, file to replace, its content, expected fragment, expected line or None)
CASES = [
    ("empty log", "interactions.csv", "", "the file is empty", None),
    ("header only", "interactions.csv", "user,item\n", "header but no rows", None),
    ("missing item column", "interactions.csv", "user,product\nu1,1\n", "needs a 'item' column", 1),
    (
        "column differs in case",
        "interactions.csv",
        "User ID,item\nu1,1\n",
        "is 'User ID' that column? names match exactly: declare it with --set data.interactions.user='User ID'",
        1,
    ),
    (
        "catalog column with an id suffix",
        "items.csv",
        "item_id,title\n1,One\n2,Two\n",
        "declare it with --set data.items.item='item_id'",
        1,
    ),
    (
        "day-first date",
        "interactions.csv",
        "user,item,timestamp\nu1,1,2024-01-02\nu1,2,11/01/2024\n",
        "'11/01/2024' is neither unix seconds nor an ISO 8601 date-time",
        3,
    ),
    ("NUL byte in an id", "interactions.csv", "user,item\nu1,1\nu\x002,2\n", "holds a NUL byte", 3),
    ("wrong delimiter", "interactions.csv", "user\titem\nu1\t1\n", "is the delimiter right", 1),
    ("empty user id", "interactions.csv", "user,item\nu1,1\n,2\n", "empty user id", 3),
    (
        "rating not a number",
        "interactions.csv",
        "user,item,rating\nu1,1,4\nu1,2,good\n",
        "'good' is not a finite number",
        3,
    ),
    ("rating NaN", "interactions.csv", "user,item,rating\nu1,1,nan\n", "'nan' is not a finite number", 2),
    ("rating inf", "interactions.csv", "user,item,rating\nu1,1,4\nu2,1,inf\n", "'inf' is not a finite number", 3),
    ("missing rating", "interactions.csv", "user,item,rating\nu1,1,\n", "is missing", 2),
    ("bad timestamp", "interactions.csv", "user,item,timestamp\nu1,1,yesterday\n", "neither unix seconds nor", 2),
    ("negative timestamp", "interactions.csv", "user,item,timestamp\nu1,1,-5\n", "is negative", 2),
    ("future timestamp", "interactions.csv", "user,item,timestamp\nu1,1,1600000000000\n", "lies in the future", 2),
    ("ragged row", "interactions.csv", "user,item\nu1,1\nu1,2,3,4\n", "expected 2 fields, found 4", 3),
    ("non-utf8", "interactions.csv", b"user,item\nu1,1\nu\xe9,2\n", "not valid UTF-8", 3),
    ("item not in catalog", "interactions.csv", "user,item\nu1,1\nu1,99\n", "item '99' is not in", 3),
    ("duplicate catalog id", "items.csv", "item,title\n1,One\n2,Two\n1,Again\n", "item '1' is defined twice", 4),
    ("unknown suffix", "interactions.xlsx", "user,item\nu1,1\n", "unknown table format", None),
    (
        "malformed turtle",
        "kg.ttl",
        "@prefix ex: <http://e/> .\nex:a ex:b ex:c .\nex:a ex:b\n",
        "malformed turtle",
        None,
    ),
    (
        "malformed n-triples",
        "kg.nt",
        "<http://e/a> <http://e/b> <http://e/c> .\n\n<http://e/a> <http://e/b> .\n",
        "malformed N-Triples",
        3,
    ),
    ("rdf without entity triples", "kg.nt", '<http://e/a> <http://e/b> "x" .\n', "no entity-to-entity triples", None),
    ("triple with empty tail", "kg.tsv", "head\trelation\ttail\na\tr\t\n", "empty tail entity", 2),
    ("item linked twice", "links.csv", "item,entity\n1,a\n1,b\n", "link of item '1' is defined twice", 3),
    ("entity linked to two items", "links.csv", "item,entity\n1,a\n2,a\n", "link to entity 'a' is defined twice", 3),
]


@pytest.mark.parametrize(("case", "name", "content", "fragment", "line"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(tmp_path, case, name, content, fragment, line):
    files = {"interactions": tmp_path / "interactions.csv", "items": tmp_path / "items.csv"}
    files["interactions"].write_text(GOOD_LOG)
    files["items"].write_text(GOOD_ITEMS)
    target = tmp_path / name
    (target.write_bytes if isinstance(content, bytes) else target.write_text)(content)
    if name.startswith("interactions"):
        files["interactions"] = target
    elif name.startswith("kg"):
        files["triples"] = target
    elif name.startswith("links"):
        files["triples"] = tmp_path / "kg.tsv"
        files["triples"].write_text("head\trelation\ttail\na\tr\tb\n")
        files["links"] = target
    with pytest.raises(InputError) as caught:
        read_dataset(**files)
    message = str(caught.value)
    assert "\n" not in message
    assert fragment in message
    assert message.startswith(str(target) if line is None else f"{target}:{line}:")


def test_link_table_without_triples(tmp_path):
    (tmp_path / "i.csv").write_text(GOOD_LOG)
    (tmp_path / "l.csv").write_text("item,entity\n1,a\n")
    with pytest.raises(InputError, match="needs a triple file"):
        read_dataset(tmp_path / "i.csv", links=tmp_path / "l.csv")


def test_min_rating_keeping_nothing(tmp_path):
    from kgrec.config import SplitConfig
    from kgrec.data import split_interactions

    (tmp_path / "i.csv").write_text(GOOD_LOG)
    with pytest.raises(InputError, match="at least 9"):
        split_interactions(read_dataset(tmp_path / "i.csv"), SplitConfig(min_rating=9))


def test_the_suggested_setting_reads_the_lookalike_column(tmp_path):
    log, items = tmp_path / "interactions.csv", tmp_path / "items.csv"
    log.write_text("User ID,item\nu1,1\nu2,2\n")
    items.write_text(GOOD_ITEMS)
    config = DataConfig.model_validate({"interactions": {"user": "User ID"}})
    dataset = read_dataset(log, items, config=config)
    assert sorted(dataset.interactions["user_id"].unique()) == ["u1", "u2"]


def test_a_declared_time_format_reads_day_first_dates(tmp_path):
    log = tmp_path / "interactions.csv"
    log.write_text("user,item,timestamp\nu1,1,11/01/2024\nu1,2,13/01/2024\n")
    dataset = read_dataset(log, config=DataConfig(time_format="%d/%m/%Y"))
    stamps = dict(zip(dataset.interactions["item_id"], dataset.interactions["timestamp"]))
    assert stamps["2"] - stamps["1"] == 2 * 86_400  # 11 and 13 January, not 1 November and 13 January
    log.write_text("user,item,timestamp\nu1,1,11/01/2024\nu1,2,2024-01-13\n")
    with pytest.raises(
        InputError, match=r"interactions.csv:3: .*'2024-01-13' does not match data.time_format='%d/%m/%Y'"
    ):
        read_dataset(log, config=DataConfig(time_format="%d/%m/%Y"))
