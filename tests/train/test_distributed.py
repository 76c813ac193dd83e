"""Data-parallel training: torchrun with 2 CPU processes (Gloo) against one process on the same tiny graph."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from kgrec.config import GraphConfig, SplitConfig
from kgrec.graph import build_graph, save_graph
from kgrec.inference import Recommender
from kgrec.train.distributed import Distributed
from kgrec.train.objectives import Batch
from tests.conftest import TINY_TRAINING

SETTINGS = {
    **TINY_TRAINING,
    "model.use_text": False,
    "train.epochs": 6,
    "train.side_epochs": 3,
    "train.batch_size": 7,
    "train.eval_every": 1,
}


def test_slices_cover_the_batch_and_weigh_it_as_one():
    batch = Batch(*(torch.arange(5) for _ in range(2)), torch.arange(10).view(5, 2), torch.arange(5))
    parts = [Distributed(rank, 2).shard(batch) for rank in range(2)]
    assert sorted(torch.cat([p.users for p, _ in parts]).tolist()) == list(range(5))
    assert [scale for _, scale in parts] == [3 * 2 / 5, 2 * 2 / 5]  # mean over a slice x its share x world
    tiny = Batch(torch.tensor([4]), torch.tensor([1]), torch.tensor([[2]]), torch.tensor([0]))
    assert Distributed(1, 2).shard(tiny)[1] == 0.0  # an empty slice trains on one row at weight 0


@pytest.mark.slow
def test_torchrun_two_cpu_processes_match_one_process(tiny_dataset, tmp_path):
    graph = build_graph(tiny_dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))))
    save_graph(graph, str(tmp_path / "graph"))
    flags = [arg for key, value in SETTINGS.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    train = ["-m", "kgrec", "train", "--graph", str(tmp_path / "graph"), "--quiet", *flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [sys.executable, *train, "--out", str(tmp_path / "one")], env=env, capture_output=True, text=True, timeout=300
    )
    assert single.returncode == 0, single.stderr[-2000:]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    parallel = subprocess.run(
        [*launcher, *train, "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300
    )
    assert parallel.returncode == 0, parallel.stderr[-3000:]
    assert parallel.stdout.count("wrote ") == 1  # one writer
    assert json.loads((tmp_path / "two" / "run.json").read_text())["processes"] == 2
    assert json.loads((tmp_path / "one" / "run.json").read_text())["processes"] == 1
    one, two = (json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("one", "two"))
    for name in ("ndcg@10", "recall@10", "mrr@10"):
        assert two["test"][name] == pytest.approx(one["test"][name], abs=1e-4)
    a, b = Recommender.load(tmp_path / "one").model, Recommender.load(tmp_path / "two").model
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(x, y, atol=1e-4), name
