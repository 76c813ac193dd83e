"""A run's metrics by segment: each figure recomputed by hand from the run's own scores."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from kgrec import api
from kgrec.cli import main
from kgrec.evaluate import ITEM_POPULARITY, USER_ACTIVITY, segment_labels, segment_of
from kgrec.inference import Recommender
from kgrec.inference.evaluation import score_function


def _recall_by_hand(run: Recommender, k: int, targets: np.ndarray) -> tuple[float, int]:
    """Mean over users with a held-out item among ``targets`` of |top-k ∩ those items| / their number; the ranking
    is the full one (training and validation items masked), as evaluate ranks."""
    truth, exclude, *_ = run.tasks.ranking("test", "all")
    scores = score_function(run)(np.arange(truth.shape[0])).numpy()  # noqa: the tiny run has few users
    scores = np.where(exclude.toarray(), -np.inf, scores)
    recalls = []
    for user in range(truth.shape[0]):
        wanted = set(truth[user].indices) & set(np.flatnonzero(targets))
        if wanted:
            top = set(np.argsort(-scores[user], kind="stable")[:k])
            recalls.append(len(top & wanted) / len(wanted))
    return float(np.mean(recalls)) if recalls else float("nan"), len(recalls)


def test_segments_match_the_definition(tiny_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run / "run", run_dir)
    result = api.evaluate_segments(run_dir, ks=(5,))
    run = Recommender.load(run_dir)
    train = run.interactions("train")
    table = result.table.set_index(["by", "segment"])
    # Items: restrict the targets to the segment's items, keep the ranking.
    item_of = segment_of(train.getnnz(axis=0), ITEM_POPULARITY)
    for index, label in enumerate(segment_labels(ITEM_POPULARITY)):
        expected, users = _recall_by_hand(run, 5, item_of == index)
        row = table.loc[("item popularity", label)]
        assert row["users"] == users
        if users:
            assert row["recall@5"] == pytest.approx(expected, abs=1e-6)
    # Users: the overall per-user metrics averaged over each segment's users.
    overall = api.evaluate(run_dir, ks=(5,)).per_user
    degree = train.getnnz(axis=1)[run.graph.users.to_index(overall["user"].tolist())]
    which = segment_of(degree, USER_ACTIVITY)
    for index, label in enumerate(segment_labels(USER_ACTIVITY)):
        members = overall[which == index]
        row = table.loc[("user activity", label)]
        assert row["users"] == len(members)
        if len(members):
            assert row["ndcg@5"] == pytest.approx(members["ndcg@5"].mean(), abs=1e-6)
    stored = json.loads((run_dir / "metrics.json").read_text())["test_segments"]
    assert stored["segments"]["item popularity"][0] == [0, 0] and set(stored["item popularity"]) == set(
        segment_labels(ITEM_POPULARITY)
    )


def test_evaluate_segments_and_compare_by_segment_on_the_command_line(tiny_run, tmp_path):
    runner = CliRunner()
    for name in ("a", "b"):
        shutil.copytree(tiny_run / "run", tmp_path / name)
        done = runner.invoke(main, ["evaluate", "--run", str(tmp_path / name), "--segments", "-k", "5"])
        assert done.exit_code == 0, done.output
    assert "item popularity" in done.output and "recall@5" in done.output.splitlines()[0]
    for by in ("user-activity", "item-popularity"):
        done = runner.invoke(
            main, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--metric", "recall@5", "--by", by, "--json"]
        )
        assert done.exit_code == 0, done.output
        rows = [json.loads(line) for line in done.output.splitlines()]
        assert rows and all(row["segment"] and row["difference"] == 0.0 for row in rows)  # a run against its copy
    plain = tmp_path / "plain"
    shutil.copytree(tiny_run / "run", plain)
    (plain / "per_user.parquet").unlink()
    assert runner.invoke(main, ["evaluate", "--run", str(plain), "-k", "5"]).exit_code == 0
    refused = runner.invoke(main, ["compare", str(plain), str(tmp_path / "a"), "--by", "item-popularity"])
    assert refused.exit_code != 0 and "evaluate --segments" in refused.output
