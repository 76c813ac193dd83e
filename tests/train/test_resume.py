"""Interrupted training: checkpoints, SIGKILL mid-run, and --resume ending exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from kgrec import api
from kgrec.config import GraphConfig, RunConfig, SplitConfig
from kgrec.errors import InputError
from kgrec.graph import build_graph, save_graph
from kgrec.train.checkpoint import CHECKPOINT_NAME, Checkpointer, read_checkpoint
from tests.conftest import TINY_TRAINING

SETTINGS = {**TINY_TRAINING, "model.use_text": False, "train.epochs": 8, "train.side_epochs": 6, "train.patience": 100}


@pytest.fixture
def graph(tiny_dataset, tmp_path):
    graph = build_graph(tiny_dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))))
    save_graph(graph, str(tmp_path / "graph"))
    return graph


class _Killed(BaseException):
    """Stands in for the process dying right after a checkpoint reached the disk."""


@pytest.mark.parametrize("kill_after", [3, 11], ids=["in-backbone-stage", "in-side-stage"])
def test_resume_ends_with_the_uninterrupted_result(graph, tmp_path, monkeypatch, kill_after):
    config = RunConfig().override({**SETTINGS, "train.tasks": ["rank", "rating"]})
    whole_result = api.train(graph, config, out=tmp_path / "whole", graph_dir=tmp_path / "graph", quiet=True)
    whole = whole_result.recommender
    assert not (tmp_path / "whole" / CHECKPOINT_NAME).exists()  # a complete run keeps model.pt, not the checkpoint

    save, count = Checkpointer.save, {"n": 0}

    def save_then_die(self, state):
        save(self, state)
        count["n"] += 1
        if count["n"] == kill_after:
            raise _Killed

    monkeypatch.setattr(Checkpointer, "save", save_then_die)
    with pytest.raises(_Killed):
        api.train(graph, config, out=tmp_path / "cut", graph_dir=tmp_path / "graph", quiet=True)
    monkeypatch.setattr(Checkpointer, "save", save)
    saved = read_checkpoint(tmp_path / "cut" / CHECKPOINT_NAME)
    assert saved["stage"] == ("backbone" if kill_after <= 8 else "side")
    # The checkpoint holds what training changes, not the inputs it rebuilds (KG embeddings) or the EASE
    # matrix (items x items, solved after training): those would make every epoch's file huge.
    fixed = {"kg_emb", "ease.weight"}
    assert fixed <= set(whole.model.state_dict())
    assert not fixed & (set(saved["model"]) | set(saved["best_state"]))
    assert not (tmp_path / "cut" / "run.json").exists()
    # A plain rerun into the interrupted run does not silently throw its checkpoint away.
    with pytest.raises(InputError, match=r"holds an interrupted run .*kgrec train --resume"):
        api.train(graph, config, out=tmp_path / "cut", graph_dir=tmp_path / "graph", quiet=True)
    assert read_checkpoint(tmp_path / "cut" / CHECKPOINT_NAME)["epoch"] == saved["epoch"]

    resumed_result = api.resume(tmp_path / "cut", quiet=True)
    resumed = resumed_result.recommender
    assert resumed_result.metrics == whole_result.metrics
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert (
        json.loads((tmp_path / "cut" / "run.json").read_text())["epochs_run"]
        == json.loads((tmp_path / "whole" / "run.json").read_text())["epochs_run"]
    )


def test_resume_refuses_a_changed_config_a_complete_run_and_a_damaged_checkpoint(graph, tmp_path):
    config = RunConfig().override({**SETTINGS, "train.epochs": 2, "train.side_epochs": 0})
    api.train(graph, config, out=tmp_path / "run", graph_dir=tmp_path / "graph", quiet=True)
    with pytest.raises(InputError, match="complete"):
        api.resume(tmp_path / "run")
    (tmp_path / "run" / "run.json").unlink()
    with pytest.raises(InputError, match="no checkpoint"):
        api.resume(tmp_path / "run")
    (tmp_path / "run" / CHECKPOINT_NAME).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="cannot read the checkpoint"):
        api.resume(tmp_path / "run")
    # A checkpoint of another config is not silently continued.
    other = RunConfig().override({**SETTINGS, "train.epochs": 3})
    checkpoint = Checkpointer(
        tmp_path / "run" / CHECKPOINT_NAME, 1, {"config": "abc", "graph": "def", "graph_dir": str(tmp_path / "graph")}
    )
    checkpoint.save({"stage": "backbone"})
    with pytest.raises(InputError, match="another config"):
        api.train(
            graph,
            other,
            out=tmp_path / "run",
            graph_dir=tmp_path / "graph",
            quiet=True,
            _resume=read_checkpoint(checkpoint.path),
        )


@pytest.mark.slow
def test_sigkill_mid_training_leaves_a_resumable_run(graph, tmp_path):
    """A real process, killed with SIGKILL while it trains: nothing half-written, and --resume finishes it."""
    overrides = {**SETTINGS, "train.epochs": 400, "train.side_epochs": 0, "train.eval_every": 1}
    flags = [arg for key, value in overrides.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    command = [sys.executable, "-m", "kgrec", "train", "--graph", str(tmp_path / "graph"), "--quiet", *flags]
    whole = subprocess.run(
        [*command, "--out", str(tmp_path / "whole")], env=env, capture_output=True, text=True, timeout=300
    )
    assert whole.returncode == 0, whole.stderr[-2000:]

    run = tmp_path / "cut"
    process = subprocess.Popen(
        [*command, "--out", str(run)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if (run / CHECKPOINT_NAME).is_file() and read_checkpoint(run / CHECKPOINT_NAME)["epoch"] >= 20:
                break
            if process.poll() is not None:
                pytest.fail("training ended before it could be killed")
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not (run / "run.json").exists() and not (run / "model.pt").exists()
    assert (run / "config.yaml").is_file()
    saved = read_checkpoint(run / CHECKPOINT_NAME)  # complete and loadable, whatever moment the kill came
    assert 20 <= saved["epoch"] < 400

    rerun = subprocess.run([*command, "--out", str(run)], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 2 and f"kgrec train --resume {run}" in rerun.stderr, rerun.stderr[-2000:]

    resumed = subprocess.run(
        [sys.executable, "-m", "kgrec", "train", "--resume", str(run), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not list(run.glob(".*.tmp")) and not (run / CHECKPOINT_NAME).exists()
    assert json.loads((run / "metrics.json").read_text()) == json.loads(
        (tmp_path / "whole" / "metrics.json").read_text()
    )


@pytest.mark.slow
def test_ctrl_c_says_how_to_continue(graph, tmp_path):
    overrides = {**SETTINGS, "train.epochs": 400, "train.side_epochs": 0}
    flags = [arg for key, value in overrides.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "kgrec",
        "train",
        "--graph",
        str(tmp_path / "graph"),
        "--quiet",
        "--out",
        str(run),
        *flags,
    ]
    process = subprocess.Popen(
        command, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and not (run / CHECKPOINT_NAME).is_file():
            if process.poll() is not None:
                pytest.fail("training ended before it could be interrupted")
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == f"kgrec: interrupted; continue with: kgrec train --resume {run}"
    assert "Traceback" not in stderr and (run / CHECKPOINT_NAME).is_file()
