"""Every command against bad input: one line on stderr naming what is wrong, exit code 2, no traceback, no output left.

Each case is (id, a function that damages a fresh copy of a good workspace and returns the command line,
the fragment the one-line error must contain). The workspace holds the tiny files, a built graph
and a trained run, made once per module and copied per case so a case can damage them freely.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from kgrec.cli import main
from tests.conftest import tiny_training_flags, write_tiny_files

FAST = [*tiny_training_flags({"model.use_text": False, "train.eval_every": 2}), "--epochs=2", "--quiet"]


def _invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("good")
    files = write_tiny_files(root / "data")
    # No validation split (a case below evaluates it), one test interaction per user.
    build = _invoke(
        "build-graph",
        *[f"--{r}={p}" for r, p in files.items()],
        "--name=tiny",
        f"--out={root / 'graph'}",
        "--set",
        "graph.split.ratios=[0.8,0,0.2]",
    )
    assert build.exit_code == 0, build.output
    result = _invoke("train", f"--graph={root / 'graph'}", f"--out={root / 'run'}", *FAST)
    assert result.exit_code == 0, result.output
    return root


def _build(root: Path, **replace: str | bytes) -> list[str]:
    """build-graph on the tiny files, with some of them replaced by ``replace`` (role -> content)."""
    files = {role: root / "data" / f"{role}.csv" for role in ("interactions", "items", "users", "triples", "links")}
    for role, content in replace.items():
        suffix = {"ttl": ".ttl", "nt": ".nt"}.get(role, ".csv")
        role = {"ttl": "triples", "nt": "triples"}.get(role, role)
        files[role] = root / "data" / f"bad-{role}{suffix}"
        (files[role].write_bytes if isinstance(content, bytes) else files[role].write_text)(content)
        if role == "triples" and suffix != ".csv":
            files.pop("links")  # RDF names items by id, without the link table
    return ["build-graph", *[f"--{r}={p}" for r, p in files.items()], "--name=tiny", f"--out={root / 'out'}"]


def _folder(path: Path, **files: str) -> Path:
    """A user's own folder with some files in it."""
    path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        stem, _, suffix = name.rpartition("_")  # notes_txt -> notes.txt, kg_final_txt -> kg_final.txt
        (path / f"{stem}.{suffix}").write_text(content)
    return path


def _rebuild(root: Path, *extra: str) -> None:
    """Rebuild the run's graph in place (as a user would, after training), pointing the run at this copy."""
    _set_json(root / "run" / "run.json", graph=str(root / "graph"))
    files = [
        f"--{role}={root / 'data' / f'{role}.csv'}" for role in ("interactions", "items", "users", "triples", "links")
    ]
    assert (
        _invoke(
            "build-graph",
            *files,
            "--name=tiny",
            f"--out={root / 'graph'}",
            "--set",
            "graph.split.ratios=[0.8,0,0.2]",
            *extra,
        ).exit_code
        == 0
    )


def _corrupt(path: Path, data: bytes = b"\x00garbage") -> None:
    path.write_bytes(data)


def _set_json(path: Path, **changes) -> None:
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))


LOG = "user,item,rating,timestamp,device\n"
CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    # -- build-graph: the readers ------------------------------------------------------------------
    ("log missing item column", lambda r: _build(r, interactions="user,product\nu1,1\n"), "needs a 'item' column"),
    ("log renamed user column", lambda r: _build(r, interactions="customer,item\nu1,1\n"), "needs a 'user' column"),
    ("log wrong delimiter", lambda r: _build(r, interactions="user;item\nu1;1\n"), "is the delimiter right"),
    ("log empty file", lambda r: _build(r, interactions=""), "the file is empty"),
    ("log header only", lambda r: _build(r, interactions="user,item\n"), "header but no rows"),
    (
        "log column named twice",
        lambda r: _build(r, interactions="user,item,rating, rating\nu1,1,4,5\n"),
        "column 'rating' appears twice",
    ),
    ("log non-UTF-8", lambda r: _build(r, interactions=b"user,item\nu1,1\nu\xe9,2\n"), "not valid UTF-8"),
    (
        "log NaN rating",
        lambda r: _build(r, interactions=LOG + "u1,1,nan,1600000000,web\n"),
        "'nan' is not a finite number",
    ),
    (
        "log inf rating",
        lambda r: _build(r, interactions=LOG + "u1,1,inf,1600000000,web\n"),
        "'inf' is not a finite number",
    ),
    ("log negative timestamp", lambda r: _build(r, interactions=LOG + "u1,1,4,-3,web\n"), "is negative"),
    ("log future timestamp", lambda r: _build(r, interactions=LOG + "u1,1,4,99999999999,web\n"), "lies in the future"),
    (
        "log item not in catalog",
        lambda r: _build(r, interactions=LOG + "u1,1,4,1600000000,web\nu1,99,4,1600000000,web\n"),
        "item '99' is not in",
    ),
    (
        "log user not in user table",
        lambda r: _build(r, interactions=LOG + "ghost,1,4,1600000000,web\n"),
        "user 'ghost' is not in",
    ),
    ("catalog empty", lambda r: _build(r, items=""), "the file is empty"),
    ("catalog duplicate id", lambda r: _build(r, items="item,title\n1,One\n1,Again\n"), "item '1' is defined twice"),
    ("catalog non-UTF-8", lambda r: _build(r, items=b"item,title\n1,Caf\xe9\n"), "not valid UTF-8"),
    ("users header only", lambda r: _build(r, users="user,age\n"), "header but no rows"),
    ("users duplicate id", lambda r: _build(r, users="user,age\nu1,3\nu1,4\n"), "user 'u1' is defined twice"),
    ("triples missing tail column", lambda r: _build(r, triples="head,relation\na,b\n"), "needs a 'tail' column"),
    (
        "triples never reach an item",
        lambda r: _build(r, triples="head,relation,tail\nx,r,y\n", links="item,entity\n1,zz\n"),
        "reaches an item",
    ),
    ("malformed Turtle", lambda r: _build(r, ttl="@prefix ex: <http://e/> .\nex:a ex:b\n"), "malformed turtle"),
    ("malformed N-Triples", lambda r: _build(r, nt="<http://e/a> <http://e/b> .\n"), "malformed N-Triples"),
    ("link to unknown item", lambda r: _build(r, links="item,entity\n77,m.alpha\n"), "item '77' is not in"),
    (
        "link entity twice",
        lambda r: _build(r, links="item,entity\n1,m.alpha\n2,m.alpha\n"),
        "link to entity 'm.alpha' is defined twice",
    ),
    ("missing input file", lambda r: _build(r) + [f"--interactions={r / 'nope.csv'}"], "nope.csv"),
    (
        "graph name escapes graphs/",
        lambda r: ["build-graph", f"--interactions={r / 'data' / 'interactions.csv'}", "--name=../../evil"],
        "cannot be used in a path",
    ),
    ("unknown config key", lambda r: _build(r) + ["--set", "graph.colour=red"], "unknown config key 'graph.colour'"),
    (
        "config value out of bounds",
        lambda r: _build(r) + ["--set", "graph.split.cold_item_share=2"],
        "graph.split.cold_item_share",
    ),
    (
        "KGAT folder with a non-integer id",
        lambda r: (
            _folder(r / "data" / "kgat", train_txt="0 1 2\n1 x\n", test_txt="0 3\n", kg_final_txt="0 0 4\n"),
            ["build-graph", f"--kgat-dir={r / 'data' / 'kgat'}", f"--out={r / 'out'}"],
        )[1],
        "train.txt:2: 'x' is not an integer id",
    ),
    (
        "KGAT folder with a pair in train and test",
        lambda r: (
            _folder(r / "data" / "kgat", train_txt="0 1 2\n", test_txt="0 2\n", kg_final_txt="0 0 4\n"),
            ["build-graph", f"--kgat-dir={r / 'data' / 'kgat'}", f"--out={r / 'out'}"],
        )[1],
        "user 0 has item 2 in both train and test",
    ),
    (
        "KGAT folder and an interaction file",
        lambda r: [
            "build-graph",
            f"--kgat-dir={r / 'data'}",
            f"--interactions={r / 'data' / 'interactions.csv'}",
            f"--out={r / 'out'}",
        ],
        "give exactly one of",
    ),
    # -- train ----------------------------------------------------------------------------------------
    (
        "graph from another kgrec version",
        lambda r: (
            _set_json(r / "graph" / "manifest.json", format_version=99),
            ["train", f"--graph={r / 'graph'}", f"--out={r / 'out'}", *FAST],
        )[1],
        "this kgrec reads v1",
    ),
    (
        "graph file corrupted",
        lambda r: (
            _corrupt(r / "graph" / "ids.json"),
            ["train", f"--graph={r / 'graph'}", f"--out={r / 'out'}", *FAST],
        )[1],
        "checksum differs",
    ),
    ("graph missing", lambda r: ["train", f"--graph={r / 'nowhere'}", f"--out={r / 'out'}"], "no manifest.json"),
    (
        "unknown fusion in config",
        lambda r: ["train", f"--graph={r / 'graph'}", f"--out={r / 'out'}", "--set", "model.fusion=magic"],
        "unknown model.fusion 'magic'",
    ),
    (
        "negative epochs",
        lambda r: ["train", f"--graph={r / 'graph'}", f"--out={r / 'out'}", "--set", "train.epochs=-1"],
        "train.epochs",
    ),
    (
        "unknown context feature",
        lambda r: ["train", f"--graph={r / 'graph'}", f"--out={r / 'out'}", "--context=mood"],
        "unknown context feature 'mood'",
    ),
    (
        "kg task without KG",
        lambda r: [
            "train",
            f"--graph={r / 'graph'}",
            f"--out={r / 'out'}",
            "--tasks=rank,kg",
            "--set",
            "model.use_kg=false",
        ],
        "model.use_kg is false",
    ),
    ("resume a complete run", lambda r: ["train", f"--resume={r / 'run'}"], "nothing to resume"),
    (
        "resume without checkpoint",
        lambda r: ((r / "run" / "run.json").unlink(), ["train", f"--resume={r / 'run'}"])[1],
        "no checkpoint",
    ),
    (
        "config file not a mapping",
        lambda r: (
            (r / "c.yaml").write_text("- a\n- b\n"),
            ["train", f"--graph={r / 'graph'}", f"--out={r / 'out'}", f"--config={r / 'c.yaml'}"],
        )[1],
        "must hold a mapping",
    ),
    # -- evaluate / recommend / explain on a damaged run ----------------------------------------------
    (
        "run missing checkpoint",
        lambda r: ((r / "run" / "model.pt").unlink(), ["evaluate", f"--run={r / 'run'}"])[1],
        "has no model.pt",
    ),
    (
        "run corrupted checkpoint",
        lambda r: (_corrupt(r / "run" / "model.pt"), ["evaluate", f"--run={r / 'run'}"])[1],
        "cannot read the checkpoint",
    ),
    (
        "run corrupted run.json",
        lambda r: (_corrupt(r / "run" / "run.json", b"{"), ["evaluate", f"--run={r / 'run'}"])[1],
        "corrupted run.json",
    ),
    (
        "run from another format",
        lambda r: (
            _set_json(r / "run" / "run.json", format_version=99),
            ["recommend", f"--run={r / 'run'}", "--user=u1"],
        )[1],
        "run format v99",
    ),
    ("run without run.json", lambda r: ["recommend", f"--run={r}", "--user=u1"], "not a complete kgrec run"),
    (
        "evaluate on a device torch does not see",
        lambda r: (
            ["evaluate", f"--run={r / 'run'}", "--device=cuda:7"]
            if not __import__("torch").cuda.is_available()
            else ["evaluate", f"--run={r / 'run'}", "--device=tpu"]
        ),
        "device",
    ),
    (
        "recommend on an unknown device",
        lambda r: ["recommend", f"--run={r / 'run'}", "--user=u1", "--device=quantum"],
        "unknown device 'quantum'",
    ),
    (
        "update with an unknown item",
        lambda r: (
            r.joinpath("ev.csv").write_text("user,item\nu1,ghost\n"),
            ["update", f"--run={r / 'run'}", f"--events={r / 'ev.csv'}", f"--out={r / 'upd'}"],
        )[1],
        "row 2: unknown item id 'ghost'",
    ),
    (
        "recommend unknown history item",
        lambda r: ["recommend", f"--run={r / 'run'}", "--history=1,ghost"],
        "unknown item id 'ghost'",
    ),
    (
        "recommend context on a context-free run",
        lambda r: ["recommend", f"--run={r / 'run'}", "--user=u1", "--context", "hour=3"],
        "trained without context",
    ),
    (
        "recommend malformed context",
        lambda r: ["recommend", f"--run={r / 'run'}", "--user=u1", "--context", "hour"],
        "KEY=VALUE",
    ),
    (
        "recommend users file non-UTF-8",
        lambda r: (
            (r / "u.txt").write_bytes(b"u1\n\xff\n"),
            ["recommend", f"--run={r / 'run'}", f"--users-file={r / 'u.txt'}"],
        )[1],
        "cannot read user ids",
    ),
    (
        "recommend new item already known",
        lambda r: (
            (r / "n.csv").write_text("item,title\n3,Again\n"),
            ["recommend", f"--run={r / 'run'}", "--user=u1", f"--new-items={r / 'n.csv'}"],
        )[1],
        "new item id '3' is already in the graph",
    ),
    (
        "recommend zero k",
        lambda r: ["recommend", f"--run={r / 'run'}", "--user=u1", "-k", "0"],
        "-k must be at least 1",
    ),
    (
        "explain unknown user",
        lambda r: ["explain", f"--run={r / 'run'}", "--user=ghost", "--item=1"],
        "unknown user id 'ghost'",
    ),
    (
        "explain unknown item",
        lambda r: ["explain", f"--run={r / 'run'}", "--user=u1", "--item=ghost"],
        "unknown item id 'ghost'",
    ),
    ("evaluate zero cut-off", lambda r: ["evaluate", f"--run={r / 'run'}", "-k", "0"], "cut-offs K must be at least 1"),
    # -- query / export / datasets -------------------------------------------------------------------
    ("query syntax error", lambda r: ["query", "SELECT ?x WHERE {", f"--graph={r / 'graph'}"], "SPARQL"),
    ("query without graph", lambda r: ["query", "SELECT ?x WHERE { ?x ?p ?o }"], "give a graph directory"),
    (
        "export name escapes the folder",
        lambda r: ["export", f"--graph={r / 'graph'}", f"--out={r / 'out'}", "--name=../up"],
        "cannot be used in a path",
    ),
    ("dataset folder missing", lambda r: ["datasets", "verify", "ml-100k", f"--data-dir={r / 'none'}"], "ml-100k"),
    # -- second round: folders kgrec did not make are never replaced or written into ------------------
    (
        "export over the user's own folder",
        lambda r: (
            _folder(r / "mine" / "tiny", notes_txt="important", log_csv="user,item\n"),
            ["export", f"--graph={r / 'graph'}", f"--out={r / 'mine'}"],
        )[1],
        "is never replaced",
    ),
    (
        "build-graph over a folder with someone else's manifest.json",
        lambda r: (
            _folder(r / "site", manifest_json='{"name": "app"}', index_html="<p>"),
            _build(r)[:-1] + [f"--out={r / 'site'}"],
        )[1],
        "not a graph directory that kgrec made",
    ),
    (
        "train into a folder that merely holds a config.yaml",
        lambda r: (
            _folder(r / "mine", config_yaml="model: {}\n", notes_txt="mine"),
            ["train", f"--graph={r / 'graph'}", f"--out={r / 'mine'}", *FAST],
        )[1],
        "not a run directory that kgrec made; it is never replaced or written into: choose another --out",
    ),
    (
        "download over the user's own dataset folder",
        lambda r: (
            _folder(r / "mine" / "ml-100k", notes_txt="my copy"),
            ["datasets", "download", "ml-100k", f"--data-dir={r / 'mine'}", "--quiet"],
        )[1],
        "not a dataset folder that kgrec made",
    ),
    (
        "rebuild a graph folder the user saved a run in",
        lambda r: (shutil.copytree(r / "run", r / "graph" / "my-run"), _build(r)[:-1] + [f"--out={r / 'graph'}"])[1],
        "holds 'my-run', which kgrec did not write there",
    ),
    (
        "train into a graph directory",
        lambda r: ["train", f"--graph={r / 'graph'}", f"--out={r / 'graph'}", *FAST],
        "is a kgrec graph directory, not a run directory",
    ),
    (
        "train --out is a file",
        lambda r: ((r / "afile").write_text("x"), ["train", f"--graph={r / 'graph'}", f"--out={r / 'afile'}", *FAST])[
            1
        ],
        "is a file",
    ),
    (
        "build-graph --out under a file",
        lambda r: ((r / "afile").write_text("x"), _build(r)[:-1] + [f"--out={r / 'afile' / 'g'}"])[1],
        "afile: is a file, where a folder is needed",
    ),
    (
        "train --out under a file",
        lambda r: (
            (r / "afile").write_text("x"),
            ["train", f"--graph={r / 'graph'}", f"--out={r / 'afile' / 'run'}", *FAST],
        )[1],
        "afile: is a file, where a folder is needed",
    ),
    # -- silent wrong results ---------------------------------------------------------------------------
    (
        "log column item_id next to item",
        lambda r: _build(r, interactions="user,item,item_id\nu1,1,x1\nu1,2,x2\n"),
        "column 'item_id' besides the item id column 'item'",
    ),
    (
        "catalog column categories next to category",
        lambda r: _build(r, items="item,category,categories\n1,A,B\n"),
        "column 'categories' besides the category column 'category'",
    ),
    (
        "user table column user_id next to user",
        lambda r: _build(r, users="user,user_id\nu1,x\n"),
        "column 'user_id' besides the user id column 'user'",
    ),
    (
        "graph rebuilt with another seed after training",
        lambda r: (_rebuild(r, "--seed=7"), ["evaluate", f"--run={r / 'run'}"])[1],
        "has changed since this run was trained",
    ),
    (
        "graph rebuilt with other items after training",
        lambda r: (
            (r / "data" / "items.csv").write_text((r / "data" / "items.csv").read_text() + "11,Mu,New,A,StudioX\n"),
            _rebuild(r),
            ["recommend", f"--run={r / 'run'}", "--user=u1"],
        )[2],
        "has changed since this run was trained",
    ),
    (
        "evaluate an empty validation split",
        lambda r: ["evaluate", f"--run={r / 'run'}", "--split=valid"],
        "valid split of graph tiny has no interactions",
    ),
    (
        "evaluate with a corrupted metrics.json",
        lambda r: (_corrupt(r / "run" / "metrics.json", b"{"), ["evaluate", f"--run={r / 'run'}"])[1],
        "corrupted metrics.json",
    ),
    # -- tracebacks where one line is promised ------------------------------------------------------------
    (
        "malformed YAML in --set",
        lambda r: ["train", f"--graph={r / 'graph'}", f"--out={r / 'out'}", "--set", "model.dim=["],
        "is not valid YAML",
    ),
    (
        "query with an unknown prefix",
        lambda r: ["query", "SELECT ?x WHERE { ?x foo:bar ?y }", f"--graph={r / 'graph'}"],
        "Unknown namespace prefix : foo",
    ),
    (
        "query with a SERVICE clause",
        lambda r: [
            "query",
            "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
            f"--graph={r / 'graph'}",
        ],
        "federated queries are off",
    ),
    (
        "query loading a remote graph",
        lambda r: ["query", "SELECT * FROM <http://127.0.0.1:9/g> WHERE { ?s ?p ?o }", f"--graph={r / 'graph'}"],
        "federated queries are off",
    ),
]


@pytest.mark.parametrize(("case", "damage", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_exit_2_and_no_output(workspace, tmp_path, case, damage, fragment):
    root = tmp_path / "ws"
    shutil.copytree(workspace, root)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    args = damage(root)
    damaged = sorted(p.relative_to(root) for p in root.rglob("*"))
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kgrec: error:"), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.output
    assert not (root / "out").exists()  # nothing half-written where the output was asked for
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == damaged  # and nothing written anywhere else
    assert set(damaged) - set(before) <= {Path(p) for p in ("c.yaml", "u.txt", "n.csv", "afile", "ev.csv")} | {
        p
        for p in damaged
        if p.parts[0] in ("data", "mine", "site") or p.parts[:2] in (("graph", "my-run"), ("graph", "cache"))
    }  # (a case that rebuilds the graph leaves the rebuilt graph's SPARQL store in its cache)


def test_debug_shows_the_traceback(workspace):
    result = CliRunner().invoke(main, ["--debug", "explain", f"--run={workspace / 'run'}", "--user=ghost", "--item=1"])
    assert result.exit_code == 2 and "Traceback" in result.output
