"""kgrec tune: a real Optuna study on a tiny graph runs, prunes, resumes after a kill, and its best config repeats."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml

from kgrec import api
from kgrec.config import GraphConfig, RunConfig, SplitConfig, load_config
from kgrec.errors import InputError
from kgrec.graph import build_graph, load_graph, save_graph
from kgrec.tune import Pruning, load_space, tune

BASE = {
    "kge.epochs": 1,
    "kge.dim": 8,
    "kge.eval_share": 0.0,
    "model.dim": 8,
    "model.use_text": False,
    "model.linear": "none",
    "train.epochs": 6,
    "train.side_epochs": 0,
    "train.patience": 6,
}
SPACE = {
    "train.lr": {"type": "float", "low": 1e-5, "high": 0.2, "log": True},
    "model.num_layers": {"type": "int", "low": 0, "high": 2},
}


@pytest.fixture(scope="module")
def study_inputs(tmp_path_factory):
    from kgrec.data import read_dataset
    from tests.conftest import write_tiny_files

    folder = tmp_path_factory.mktemp("tune")
    graph = build_graph(
        read_dataset(**write_tiny_files(folder / "files"), name="tiny"),
        GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))),
    )
    save_graph(graph, str(folder / "graph"))
    (folder / "space.yaml").write_text(yaml.safe_dump(SPACE))
    (folder / "base.yaml").write_text(yaml.safe_dump(RunConfig().override(BASE).model_dump(mode="json")))
    return folder


def _states(study_dir):
    """Trial states in order, read from the SQLite file directly: opening it through Optuna would create the schema
    while the study's own process may be creating it."""
    import sqlite3

    with sqlite3.connect(f"file:{study_dir / 'study.db'}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT state FROM trials ORDER BY number").fetchall()
    return [optuna.trial.TrialState[state] for (state,) in rows]


@pytest.mark.slow
def test_a_study_runs_prunes_and_its_best_config_repeats(study_inputs, tmp_path):
    study_dir = tmp_path / "study"
    config = RunConfig().override(BASE)
    eager = Pruning("median", startup_trials=2, warmup_epochs=2)
    result = tune(
        study_inputs / "graph",
        study_dir,
        trials=8,
        config=config,
        space=study_inputs / "space.yaml",
        seed=3,
        pruning=eager,
    )
    states = _states(study_dir)
    assert (
        result.complete + result.pruned
        == 8
        == sum(s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for s in states)
    )
    assert result.pruned >= 1, "the median pruner stopped no trial"
    assert not any(
        (study_dir / "trials" / str(n)).exists() for n, s in enumerate(states) if s == optuna.trial.TrialState.PRUNED
    )
    for name in ("best.yaml", "trials.csv", "history.png", "importance.png", "summary.json", "space.yaml", "base.yaml"):
        assert (study_dir / name).is_file(), name
    best = load_config(study_dir / "best.yaml")
    assert (
        best.train.lr == pytest.approx(result.best_params["train.lr"])
        and best.model.num_layers == result.best_params["model.num_layers"]
    )
    graph = load_graph(study_inputs / "graph")
    repeated_result = api.train(graph, best, quiet=True)
    assert repeated_result.metrics["valid"][best.eval.select_metric] == pytest.approx(result.best_value)
    # Asking for more trials continues the same study; another space is refused.
    again = tune(
        study_inputs / "graph",
        study_dir,
        trials=9,
        config=config,
        space=study_inputs / "space.yaml",
        seed=3,
        pruning=eager,
    )
    assert again.complete + again.pruned == 9
    other = study_inputs / "other.yaml"
    other.write_text(yaml.safe_dump({"train.lr": SPACE["train.lr"]}))
    with pytest.raises(InputError, match="started with another space"):
        tune(study_inputs / "graph", study_dir, trials=10, config=config, space=other)


def test_pruning_none_runs_every_trial_to_its_end(study_inputs, tmp_path):
    config = RunConfig().override(BASE)
    result = tune(
        study_inputs / "graph",
        tmp_path / "study",
        trials=4,
        config=config,
        space=study_inputs / "space.yaml",
        seed=3,
        pruning=Pruning("none"),
    )
    assert (result.complete, result.pruned) == (4, 0)
    with pytest.raises(InputError, match="percentile"):
        Pruning(percentile=0)


@pytest.mark.slow
def test_a_killed_study_resumes(study_inputs, tmp_path):
    study_dir = tmp_path / "study"
    command = [
        sys.executable,
        "-m",
        "kgrec",
        "tune",
        f"--graph={study_inputs / 'graph'}",
        f"--study={study_dir}",
        "--trials=40",
        f"--space={study_inputs / 'space.yaml'}",
        f"--config={study_inputs / 'base.yaml'}",
    ]
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if process.poll() is not None:
                pytest.fail(
                    f"kgrec tune exited with {process.returncode} before it was killed: {errors.read_text()[-2000:]}"
                )
            if (study_dir / "study.db").is_file():
                try:
                    states = _states(study_dir)
                except Exception:  # the schema is still being created
                    continue
                if (
                    states.count(optuna.trial.TrialState.COMPLETE) >= 2
                    and states[-1] == optuna.trial.TrialState.RUNNING
                ):
                    break
        else:
            pytest.fail("the study never completed two trials")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed = len(_states(study_dir))
    assert _states(study_dir)[-1] == optuna.trial.TrialState.RUNNING  # left behind by the kill
    # Resume, asking for two finished trials more than the kill left (killed - 1 finished, one interrupted).
    done = subprocess.run(
        [*command[:6], f"--trials={killed + 1}", *command[7:]], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    states = _states(study_dir)
    assert states[killed - 1] == optuna.trial.TrialState.FAIL  # the interrupted trial, marked failed on resume
    finished = sum(s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for s in states)
    assert finished == killed + 1 and len(states) == killed + 2  # every earlier trial kept, two new ones
    assert "best: trial" in done.stdout and (study_dir / "best.yaml").is_file()


def test_bad_spaces_are_one_line_errors(tmp_path):
    base = RunConfig()
    path = tmp_path / "space.yaml"
    for text, message in (
        ("train.lr: {type: float, low: 1, high: 0.1}", "needs low < high"),
        ("train.colour: {type: categorical, choices: [red]}", "search space key 'train.colour'"),
        ("train.lr: {type: float, low: 0, high: 1, log: true}", "log-scale parameter needs low > 0"),
        ("model.dim: {type: categorical}", "needs a non-empty 'choices'"),
        ("{}", "the search space is empty"),
    ):
        path.write_text(text)
        with pytest.raises(InputError, match=message):
            load_space(path, base)
    assert "model.dim" in load_space(None, base).parameters  # the packaged default is valid


def test_the_percentile_pruner_stops_only_the_bottom_share():
    study = optuna.create_study(direction="maximize", pruner=Pruning(startup_trials=5, warmup_epochs=2).pruner())
    for value in range(10):  # ten finished trials scoring 0 ... 9 at epoch 3
        trial = study.ask()
        trial.report(float(value), 3)
        study.tell(trial, float(value))

    def pruned(score: float) -> bool:
        trial = study.ask()
        trial.report(score, 3)
        answer = trial.should_prune()
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return answer

    assert pruned(1.0)  # in the bottom quarter
    assert not pruned(3.5)  # below the median, above the bottom quarter: runs on
    median = optuna.create_study(direction="maximize", pruner=Pruning("median", 5, 2).pruner())
    median.add_trials(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    trial = median.ask()
    trial.report(3.5, 3)
    assert trial.should_prune()
