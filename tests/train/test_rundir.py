"""Run directories and the file system: locks, foreign folders, read-only and full disks, failures that leave nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kgrec import api
from kgrec.cli import main
from kgrec.graph import load_graph
from tests.conftest import tiny_training_flags, write_tiny_files

FAST = [*tiny_training_flags({"model.use_text": False, "train.eval_every": 2}), "--epochs=2", "--quiet"]


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kgrec: error:") and fragment in lines[0], result.stderr
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rundir")
    files = write_tiny_files(root / "data")
    out = root / "graph"
    assert (
        _invoke("build-graph", *[f"--{r}={p}" for r, p in files.items()], f"--out={out}", "--split=loo").exit_code == 0
    )
    return out


HOLD = """
import sys, time
from kgrec.train.rundir import RunDirectory
run = RunDirectory(sys.argv[1]).open()  # what `kgrec train` holds while it trains
print("training", flush=True)
time.sleep(120)
"""


def test_a_second_train_on_the_same_run_stops_and_leaves_the_first_alone(graph_dir, tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "training"
        (run / "config.yaml").write_text("the first run's\n")
        before = {p.name: p.read_bytes() for p in run.iterdir()}
        _one_line_error(
            _invoke("train", f"--graph={graph_dir}", f"--out={run}", *FAST), f"another kgrec process (pid {first.pid})"
        )
        assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    finally:
        first.kill()
        first.wait()
    result = _invoke("train", f"--graph={graph_dir}", f"--out={run}", *FAST)  # the lock died with its holder
    assert result.exit_code == 0, result.output
    assert (run / "run.json").is_file() and "the first run's" not in (run / "config.yaml").read_text()


def test_retraining_into_an_earlier_run_replaces_its_files(graph_dir, tmp_path):
    run = tmp_path / "run"
    assert _invoke("train", f"--graph={graph_dir}", f"--out={run}", "--context=hour", *FAST).exit_code == 0
    assert (run / "context.json").is_file()
    (run / "my-notes.txt").write_text("kept")
    assert _invoke("train", f"--graph={graph_dir}", f"--out={run}", *FAST).exit_code == 0
    assert not (run / "context.json").exists()  # a stale file of the previous run would mislead
    assert (run / "my-notes.txt").read_text() == "kept"


def test_a_train_that_crashes_leaves_no_run_folder(graph_dir, tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("PyKEEN crashed")

    from kgrec.train import pipeline

    monkeypatch.setattr(pipeline, "train_kg_embeddings", crash)
    with pytest.raises(RuntimeError, match="PyKEEN crashed"):
        api.train(load_graph(graph_dir), out=tmp_path / "run", graph_dir=graph_dir, quiet=True)
    assert not (tmp_path / "run").exists()


def test_read_only_output_folder(graph_dir, tiny_files, mounts):
    folder = mounts.tmpfs("ro")
    mounts.readonly(folder)
    built = _invoke("build-graph", *[f"--{r}={p}" for r, p in tiny_files.items()], f"--out={folder / 'g'}")
    _one_line_error(built, "Read-only file system")
    _one_line_error(_invoke("train", f"--graph={graph_dir}", f"--out={folder / 'run'}", *FAST), "Read-only file system")
    assert _tree(folder) == []


def test_read_only_graph_needs_a_cache_elsewhere(graph_dir, tmp_path, mounts):
    folder = mounts.tmpfs("graphs")
    copy = folder / "g"
    subprocess.run(["cp", "-r", str(graph_dir), str(copy)], check=True)
    subprocess.run(["rm", "-rf", str(copy / "cache")], check=True)
    mounts.readonly(folder)
    result = _invoke("train", f"--graph={copy}", f"--out={tmp_path / 'run'}", *FAST)
    _one_line_error(result, "cannot write the embedding cache here")
    assert not (tmp_path / "run").exists()
    result = _invoke(
        "train", f"--graph={copy}", f"--out={tmp_path / 'run'}", f"--cache-dir={tmp_path / 'cache'}", *FAST
    )
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "cache" / "kge").glob("*.pt"))
    assert _invoke("evaluate", f"--run={tmp_path / 'run'}").exit_code == 0


def test_full_disk_build_and_train_fail_in_one_line_and_leave_nothing(graph_dir, tiny_files, mounts):
    disk = mounts.tmpfs("disk", size="1m")
    mounts.fill(disk, leave=16 * 1024)
    before = _tree(disk)
    built = _invoke("build-graph", *[f"--{r}={p}" for r, p in tiny_files.items()], f"--out={disk / 'g'}")
    _one_line_error(built, "No space left on device")
    assert _tree(disk) == before  # no half-written graph, no temporary folder
    trained = _invoke(
        "train", f"--graph={graph_dir}", f"--out={disk / 'run'}", f"--cache-dir={disk.parent / 'cache'}", *FAST
    )
    _one_line_error(trained, "No space left on device")
    assert _tree(disk) == before  # the run folder it created is gone again
