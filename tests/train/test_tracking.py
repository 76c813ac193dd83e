"""Experiment trackers against real backends: an MLflow SQLite store and TensorBoard event files."""

from __future__ import annotations

import pytest

from kgrec import api
from kgrec.config import RunConfig
from kgrec.errors import InputError
from kgrec.graph import load_graph
from tests.train.test_blend import FAST, graph_dir  # noqa: F401  (the module's graph fixture)

TRACKED = {**FAST, "model.ease_kg_weight": [0.0], "kge.eval_share": 0.1, "kge.epochs": 2}


def test_mlflow_gets_params_epochs_final_metrics_files_and_the_kge_stage(graph_dir, tmp_path, monkeypatch):  # noqa: F811
    mlflow = pytest.importorskip("mlflow")
    # With a database URI, MLflow puts artifacts under ./mlruns of the working directory: keep them out of the checkout.
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    graph = load_graph(graph_dir)
    cache = tmp_path / "cache"  # a fresh cache, so PyKEEN trains and its own tracker logs the KG stage
    recommender_result = api.train(
        graph,
        RunConfig().override(TRACKED),
        out=tmp_path / "run",
        graph_dir=graph_dir,
        quiet=True,
        cache_dir=cache,
        tracker="mlflow",
        tracker_uri=uri,
    )
    client = mlflow.tracking.MlflowClient(uri)
    experiment = client.get_experiment_by_name("kgrec")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    run = runs["run"]
    assert (
        run.info.status == "FINISHED" and run.data.params["train.epochs"] == "3" and run.data.params["model.dim"] == "8"
    )
    assert run.data.metrics["test/ndcg_at_20"] == pytest.approx(recommender_result.metrics["test"]["ndcg@20"])
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert len(losses) == len(recommender_history(tmp_path / "run")) >= 3 and [m.step for m in losses] == list(
        range(len(losses))
    )
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "metrics.json", "history.csv", "curve.png"} <= artifacts
    kge = [r for r in runs.values() if r.data.tags.get("kgrec.stage") == "kge"]
    assert len(kge) == 1 and kge[0].data.tags["kgrec.run"] == "run"


def test_tensorboard_writes_event_files_and_an_unknown_tracker_is_refused(graph_dir, tmp_path):  # noqa: F811
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    graph = load_graph(graph_dir)
    recommender_result = api.train(
        graph,
        RunConfig().override(TRACKED),
        out=tmp_path / "run",
        graph_dir=graph_dir,
        quiet=True,
        tracker="tensorboard",
    )
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert "loss" in scalars and "valid" in scalars and "test/ndcg_at_20" in scalars
    assert events.Scalars("test/ndcg_at_20")[-1].value == pytest.approx(
        recommender_result.metrics["test"]["ndcg@20"], rel=1e-6
    )
    with pytest.raises(InputError, match="unknown tracker 'wandb'"):
        api.train(graph, RunConfig().override(TRACKED), out=tmp_path / "other", quiet=True, tracker="wandb")
    assert not (tmp_path / "other").exists()


def recommender_history(run_dir):
    import pandas as pd

    return pd.read_csv(run_dir / "history.csv")
