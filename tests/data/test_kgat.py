"""The KGAT/KGIN layout (train.txt, test.txt, kg_final.txt, *_list.txt) and the 'given' split that keeps its test set."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kgrec.config import SplitConfig
from kgrec.data import split_interactions
from kgrec.data.kgat import pair_checksum, read_kgat_dir, read_user_lines
from kgrec.errors import InputError
from kgrec.graph import build_graph


def _write(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("_txt", ".txt")).write_text(text)
    return folder


TRAIN = "".join(f"{u} " + " ".join(str((u + k) % 6) for k in range(5)) + "\n" for u in range(4)) + "4\n"
TEST = "0 5\n1 0\n2 1\n3 2\n"
KG = "0 0 6\n1 0 6\n2 0 7\n5 0 7\n6 1 8\n7 1 8\n"  # items 0-5; entities 6, 7 (pieces) and 8 (their category)
LISTS = {
    "item_list_txt": "org_id remap_id freebase_id\n" + "".join(f"o{i} {i} f{i}\n" for i in range(6)),
    "relation_list_txt": "org_id remap_id\nincluding 0\nhaving-category-x 1\n",
}


@pytest.fixture
def kgat_dir(tmp_path) -> Path:
    return _write(tmp_path / "toy", train_txt=TRAIN, test_txt=TEST, kg_final_txt=KG, **LISTS)


def test_reads_pairs_items_and_kg(kgat_dir):
    data = read_kgat_dir(kgat_dir)
    log = data.interactions
    assert len(log) == 20 + 4 and set(log["given_split"]) == {"train", "test"}
    assert sorted(log.loc[log["given_split"] == "test", "item_id"]) == ["0", "1", "2", "5"]
    assert list(data.items["item_id"]) == [str(i) for i in range(6)]
    assert set(data.triples["relation"]) == {"including", "having-category-x"}
    graph = build_graph(data)  # KG ids below the item count are the items themselves
    assert len(graph.items) == 6 and len(graph.entities) == 3
    assert {graph.node_key(int(h)) for h in graph.triples[:, 0]} >= {"item:0", "item:5"}


def test_given_split_keeps_the_test_set_and_carves_validation_from_train(kgat_dir):
    data = read_kgat_dir(kgat_dir)
    split = split_interactions(data, SplitConfig(kind="given", valid_share=0.2, seed=3)).interactions
    test = split[split["split"] == "test"]
    assert (test["given_split"] == "test").all() and len(test) == 4
    valid = split[split["split"] == "valid"]
    assert (valid["given_split"] == "train").all()
    assert valid.groupby("user_id").size().to_dict() == {"0": 1, "1": 1, "2": 1, "3": 1}  # round(0.2 * 5) each
    again = split_interactions(data, SplitConfig(kind="given", valid_share=0.2, seed=3)).interactions
    pd.testing.assert_frame_equal(split, again)
    other = split_interactions(data, SplitConfig(kind="given", valid_share=0.2, seed=4)).interactions
    assert not split["split"].equals(other["split"])
    with pytest.raises(InputError, match="needs the dataset's own split"):
        split_interactions(
            data.__class__(name="x", interactions=data.interactions.drop(columns="given_split"), items=data.items),
            SplitConfig(kind="given"),
        )


def test_pair_checksum_ignores_order(tmp_path):
    a = read_user_lines(_write(tmp_path / "a", train_txt="0 1 2\n1 3\n") / "train.txt")
    b = read_user_lines(_write(tmp_path / "b", train_txt="1 3\n0 2 1 2\n") / "train.txt")
    assert pair_checksum(a) == pair_checksum(b)
    c = read_user_lines(_write(tmp_path / "c", train_txt="1 3\n0 2\n") / "train.txt")
    assert pair_checksum(a) != pair_checksum(c)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"train_txt": "0 1 x\n"}, "train.txt:1: 'x' is not an integer id"),
        ({"train_txt": "0 1\n1 2\n0 3\n"}, "train.txt:3: user 0 has a second line (the first is line 1)"),
        ({"test_txt": "0 0\n"}, "user 0 has item 0 in both train and test"),
        ({"test_txt": "0 9\n"}, "item 9 is beyond the 6 items"),
        ({"kg_final_txt": "0 1\n"}, "expected three"),
        ({"train_txt": ""}, "no user lines"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, change, fragment):
    files = {"train_txt": TRAIN, "test_txt": TEST, "kg_final_txt": KG, **LISTS, **change}
    with pytest.raises(InputError) as error:
        read_kgat_dir(_write(tmp_path / "bad", **files))
    assert fragment in str(error.value) and "\n" not in str(error.value)
