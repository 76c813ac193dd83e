"""The command line end to end on tiny files, and its error contract (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kgrec.cli import main
from kgrec.graph import load_graph


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_build_graph_own_files(tmp_path, tiny_files):
    out = tmp_path / "graphs" / "tiny"
    result = _run(
        "build-graph",
        *[f"--{role}={path}" for role, path in tiny_files.items()],
        f"--out={out}",
        "--split=loo",
        "--seed=3",
        "--set",
        "graph.attribute_columns=[description]",
    )
    assert result.exit_code == 0, result.output
    assert "8 users, 10 items" in result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["interactions"] == {"train": 24, "valid": 8, "test": 8, "total": 40}
    graph = load_graph(out)
    assert graph.config.split.kind == "loo" and graph.config.split.seed == 3
    assert "description" in graph.relations


def test_build_graph_error_is_one_line_and_writes_nothing(tmp_path, tiny_files):
    tiny_files["interactions"].write_text("user,item,rating\nu1,1,4\nu1,2,lots\n")
    out = tmp_path / "graphs" / "bad"
    result = _run("build-graph", f"--interactions={tiny_files['interactions']}", f"--out={out}")
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert result.output.startswith(f"kgrec: error: {tiny_files['interactions']}:3:")
    assert not (tmp_path / "graphs").exists() or not any((tmp_path / "graphs").iterdir())


def test_unknown_config_key_and_conflicting_inputs(tmp_path, tiny_files):
    result = _run("build-graph", f"--interactions={tiny_files['interactions']}", "--set", "graph.colour=red")
    assert result.exit_code == 2 and "unknown config key 'graph.colour'" in result.output
    result = _run("build-graph", "--dataset=ml-100k", f"--interactions={tiny_files['interactions']}")
    assert result.exit_code == 2 and "give exactly one of" in result.output


def test_config_file_and_flags_precedence(tmp_path, tiny_files):
    config = tmp_path / "run.toml"
    config.write_text("[graph.split]\nkind = 'random'\nseed = 11\nratios = [0.6, 0.2, 0.2]\n")
    out = tmp_path / "g"
    result = _run(
        "build-graph", f"--interactions={tiny_files['interactions']}", f"--config={config}", "--seed=12", f"--out={out}"
    )
    assert result.exit_code == 0, result.output
    split = load_graph(out).config.split
    assert split.seed == 12 and split.ratios == (0.6, 0.2, 0.2)


def test_export_recbole_files(tmp_path, tiny_files):
    graph_dir = tmp_path / "g"
    args = [f"--{r}={p}" for r, p in tiny_files.items()]
    assert _run("build-graph", *args, "--name=tiny", f"--out={graph_dir}", "--split=loo").exit_code == 0
    result = _run("export", f"--graph={graph_dir}", f"--out={tmp_path / 'recbole'}")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "recbole" / "tiny"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        ".kgrec",
        "tiny.item",
        "tiny.kg",
        "tiny.link",
        "tiny.test.inter",
        "tiny.train.inter",
        "tiny.valid.inter",
    ]
    train = (folder / "tiny.train.inter").read_text().splitlines()
    assert train[0] == "user_id:token\titem_id:token\trating:float\ttimestamp:float"
    assert len(train) == 1 + 24
    result = _run("export", f"--graph={graph_dir}", f"--out={tmp_path / 'recbole'}", "--name=kgrec-tiny")
    assert result.exit_code == 0 and (tmp_path / "recbole" / "kgrec-tiny" / "kgrec-tiny.test.inter").is_file()


def test_datasets_list_and_ontology():
    result = _run("datasets", "list")
    assert result.exit_code == 0 and "ml-100k" in result.output and "ml-1m" in result.output
    result = _run("ontology")
    assert result.exit_code == 0
    committed = Path(__file__).parents[1] / "graphs" / "ontology.ttl"
    assert committed.read_text() == result.output, "graphs/ontology.ttl is stale: kgrec ontology > graphs/ontology.ttl"


def test_datasets_verify_missing(tmp_path):
    result = _run("datasets", "verify", "ml-1m", f"--data-dir={tmp_path}")
    assert result.exit_code == 2 and "kgrec datasets download ml-1m" in result.output


def test_end_to_end_build_train_evaluate_recommend(tmp_path, tiny_files):
    graph_dir = tmp_path / "graphs" / "tiny"
    args = [f"--{r}={p}" for r, p in tiny_files.items()]
    assert _run("build-graph", *args, "--name=tiny", f"--out={graph_dir}", "--split=loo").exit_code == 0
    fast = ["--set", "kge.epochs=2", "--set", "kge.dim=8", "--set", "model.dim=8", "--set", "train.eval_every=2"]
    for fusion in ("concat", "sum", "gated", "attention"):
        run_dir = tmp_path / "runs" / fusion
        result = _run(
            "train", f"--graph={graph_dir}", f"--fusion={fusion}", "--epochs=4", f"--out={run_dir}", "--quiet", *fast
        )
        assert result.exit_code == 0, result.output
        assert "test  ndcg@20" in result.output
        assert json.loads((run_dir / "run.json").read_text())["model"].count(fusion.capitalize() + "Fusion") == 1
    run_dir = tmp_path / "runs" / "gated"
    result = _run("evaluate", f"--run={run_dir}", "-k", "5")
    assert result.exit_code == 0, result.output
    assert "ndcg@5" in result.output and "8 users ranked" in result.output
    assert "ndcg@5" in json.loads((run_dir / "metrics.json").read_text())["test"]
    result = _run("evaluate", f"--run={run_dir}", "--candidates=unseen")
    assert result.exit_code == 0, result.output
    assert "ranked against the items unseen in training" in result.output
    assert "test_unseen" in json.loads((run_dir / "metrics.json").read_text())
    # Paired comparison over the stored per-user metrics (train wrote them; evaluate -k 5 kept ndcg@20 beside ndcg@5).
    result = _run(
        "compare", str(tmp_path / "runs" / "concat"), str(run_dir), str(tmp_path / "runs" / "sum"), "--resamples=200"
    )
    assert result.exit_code == 0, result.output
    assert "ndcg@20 on test" in result.output and result.output.count("runs/") >= 3 and "Holm" in result.output
    result = _run("compare", str(run_dir), str(run_dir), "--metric=ndcg@5", "--json")
    same = json.loads(result.output)
    assert same["difference"] == 0.0 and same["t_p"] == 1.0 and same["users"] == 8
    result = _run("compare", str(run_dir), str(run_dir), "--metric=ndcg@7")
    assert result.exit_code == 2 and "no per-user metric 'ndcg@7'" in result.output
    result = _run("recommend", f"--run={run_dir}", "--user=u1", "--user=u6", "-k", "3", "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["user_id"] for line in lines] == ["u1", "u6"] and all(len(line["item_ids"]) == 3 for line in lines)
    # An unknown user gets the server's cold-start answer, with a note (as HTTP flags it cold_start), not an error.
    result = _run("recommend", f"--run={run_dir}", "--user=ghost", "-k", "3", "--json")
    assert result.exit_code == 0 and "note: user 'ghost' is not in the run: a cold-start answer" in result.stderr
    ghost = json.loads(result.stdout)
    from kgrec.inference import Recommender

    assert ghost["item_ids"] == Recommender.load(run_dir).recommend_cold_start("ghost", 3).item_ids
    result = _run("recommend", f"--run={run_dir}", "--user=u1", "-k", "3", "--explain")
    assert result.exit_code == 0, result.output
    assert result.output.count("why: user u1 -[interacted with]->") == 3 and "graph view" in result.output
    result = _run("recommend", f"--run={run_dir}", "--history=1,2", "-k", "2", "--json")
    assert result.exit_code == 0, result.output
    new_user = json.loads(result.output.splitlines()[-1])
    assert (
        new_user["user_id"] == "new" and len(new_user["item_ids"]) == 2 and not {"1", "2"} & set(new_user["item_ids"])
    )
    result = _run("recommend", f"--run={run_dir}", "--history=1,ghost")
    assert result.exit_code == 2 and "unknown item id 'ghost' in the history" in result.output
    new_items = tmp_path / "new.csv"
    new_items.write_text("item,title,description,category,brand\n11,Lambda,A new film about alpha,A,StudioX\n")
    result = _run("recommend", f"--run={run_dir}", "--user=u1", f"--new-items={new_items}", "-k", "10", "--json")
    assert result.exit_code == 0, result.output
    record = result.output[result.output.index('{"user_id"') :]  # after the encoder's loading bar (stderr)
    assert "11" in json.loads(record)["item_ids"]
    new_items.write_text("item,title,description,category,brand\n3,Again,,A,\n")
    result = _run("recommend", f"--run={run_dir}", "--user=u1", f"--new-items={new_items}")
    assert result.exit_code == 2 and "new item id '3' is already in the graph" in result.output
    result = _run("explain", f"--run={run_dir}", "--user=u1", "--item=10", "--json")
    assert result.exit_code == 0, result.output
    paths = [json.loads(line) for line in result.output.splitlines()]
    assert paths and all(p["nodes"][0] == "user:u1" and p["nodes"][-1] == "item:10" for p in paths)
    assert all(p["labels"][-1] == "Kappa" for p in paths)
    result = _run("explain", f"--run={run_dir}", "--user=u1", "--item=ghost")
    assert result.exit_code == 2 and "unknown item id 'ghost'" in result.output
    result = _run("query", 'SELECT ?label WHERE { ?i kgrec:itemId "10" ; rdfs:label ?label }', f"--graph={graph_dir}")
    assert result.exit_code == 0 and result.output.splitlines() == ["label", "Kappa"]


def test_train_errors_are_one_line(tmp_path, tiny_files):
    result = _run("train", f"--graph={tmp_path}")
    assert result.exit_code == 2 and "no manifest.json" in result.output
    result = _run("evaluate", f"--run={tmp_path}")
    assert result.exit_code == 2 and "not a complete kgrec run" in result.output


def test_ls_lists_registries():
    result = _run("ls", "fusions")
    assert result.output.split() == ["attention", "concat", "gated", "sum"]


def test_context_and_tasks_from_the_command_line(tmp_path, tiny_files):
    graph_dir = tmp_path / "graphs" / "tiny"
    args = [f"--{r}={p}" for r, p in tiny_files.items()]
    assert _run("build-graph", *args, "--name=tiny", f"--out={graph_dir}", "--split=loo").exit_code == 0
    run_dir = tmp_path / "runs" / "context"
    fast = [
        "--set",
        "kge.epochs=2",
        "--set",
        "kge.dim=8",
        "--set",
        "model.dim=8",
        "--set",
        "context.min_count=1",
        "--set",
        "model.use_text=false",
    ]
    result = _run(
        "train",
        f"--graph={graph_dir}",
        "--epochs=3",
        f"--out={run_dir}",
        "--quiet",
        "--context=hour,weekday,gender,device",
        "--tasks=rank,rating",
        "--task-weighting=uncertainty",
        *fast,
    )
    assert result.exit_code == 0, result.output
    assert "test  rmse" in result.output
    from kgrec.config import load_config

    config = load_config(run_dir / "config.yaml")
    assert (
        config.context.time == ("hour", "weekday")
        and config.context.user == ("gender",)
        and config.context.columns == ("device",)
    )
    assert config.train.tasks == ("rank", "rating") and config.train.task_weighting == "uncertainty"
    result = _run(
        "recommend", f"--run={run_dir}", "--user=u1", "-k", "3", "--json", "--context", "hour=21", "device=mobile"
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["item_ids"]) == 3  # notes on context values go to stderr, never into the JSON
    result = _run("recommend", f"--run={run_dir}", "--new-user", "--context", "gender=F,hour=9", "-k", "2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["user_id"] == "new"
    result = _run("recommend", f"--run={run_dir}", "--user=u1", "--context", "colour=red")
    assert result.exit_code == 2 and "unknown context field 'colour'" in result.output
    result = _run("recommend", f"--run={run_dir}", "--user=u1", "--context", "hour")
    assert result.exit_code == 2 and "KEY=VALUE" in result.output
    result = _run("train", f"--graph={graph_dir}", f"--out={tmp_path / 'bad'}", "--context=mood", *fast)
    assert result.exit_code == 2 and "unknown context feature 'mood'" in result.output


def test_library_wording_becomes_flags_on_the_command_line():
    from kgrec.cli import _as_flags

    assert _as_flags("choose another `out`") == "choose another --out"
    assert _as_flags("a `tracker_uri` or `cache_dir`") == "a --tracker-uri or --cache-dir"
    assert _as_flags("disable it with model.use_kg=false") == "disable it with --set model.use_kg=false"
    assert (
        _as_flags("context.user ['age'] needs a user table") == "context.user ['age'] needs a user table"
    )  # a key, no setting


def test_help_does_not_import_torch_and_shows_the_registries_names():
    """`kgrec train --help` took 15 s: drawing the --fusion choices imported kgrec.models (torch, PyG)."""
    import subprocess
    import sys

    script = (
        "import sys; from kgrec.cli import main\n"
        "try: main(['train', '--help'])\nexcept SystemExit: pass\n"
        "assert 'torch' not in sys.modules, 'help imported torch'"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[attention|concat|gated|sum]" in done.stdout

    from kgrec import models
    from kgrec.cli import FUSIONS, PROPAGATIONS

    assert FUSIONS == tuple(sorted(models.fusion_resolver.options))
    assert PROPAGATIONS == tuple(sorted(models.propagation_resolver.options))


def test_an_empty_path_option_is_refused(tmp_path):
    from click.testing import CliRunner

    from kgrec.cli import main

    result = CliRunner().invoke(main, ["build-graph", "--dataset", "ml-100k", "--out", ""])
    assert result.exit_code == 2 and "is empty" in result.output


def _options(command, path=("kgrec",)):
    import click

    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _options(sub, (*path, name))
    else:
        for param in command.params:
            if isinstance(param, click.Option):
                yield " ".join(path), param


def test_every_option_has_help_and_device_is_one_option():
    from kgrec.cli import main

    options = list(_options(main))
    assert [(command, param.opts) for command, param in options if not param.help] == []
    devices = {command: param for command, param in options if "--device" in param.opts}
    assert {"kgrec train", "kgrec evaluate", "kgrec recommend", "kgrec explain", "kgrec update", "kgrec serve"} <= set(
        devices
    )
    assert len({param.help for param in devices.values()}) == 1  # the same words, the same default ([auto]) everywhere
    assert {param.default for command, param in devices.items() if command != "kgrec train"} == {"auto"}
    import click

    context = click.Context(main)
    shown = [param.get_help_record(context) for _, param in options]
    assert not [record for record in shown if record and "default:" in record[1]]  # one way: "[10]"


def test_a_setting_the_library_already_writes_as_a_flag_is_not_prefixed_twice():
    from kgrec.cli import _as_flags

    assert (
        _as_flags("declare it with --set data.interactions.user='User'")
        == "declare it with --set data.interactions.user='User'"
    )
    assert _as_flags("try model.use_kg=false") == "try --set model.use_kg=false"
