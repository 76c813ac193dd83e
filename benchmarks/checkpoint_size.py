"""Size of one training checkpoint: what kgrec writes now vs a full ``state_dict`` copy, at a given catalog size.

    python benchmarks/checkpoint_size.py [--interactions 1000000] [--threads 1]

Synthetic power-law data (``scale.synthesize``: 1 item per 100 interactions, so 10^6 interactions give
10,000 items), ``kgrec build-graph``, then training with the EASE part on (its item x item matrix is
the large fixed state) and the PyKEEN embeddings, for two epochs with a checkpoint after each. Every
checkpoint write is measured on disk. The reference, measured in the same run from the same model, is
what a checkpoint held before it left out the fixed state: the whole ``state_dict`` twice (current and
best), plus the same optimizer state. Writes benchmarks/results/checkpoint_size.{md,json}.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
from build_graph import machine
from scale import synthesize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from kgrec import api
    from kgrec.config import RunConfig
    from kgrec.data import read_dataset
    from kgrec.train.checkpoint import Checkpointer

    writes: list[dict] = []
    save = Checkpointer.save

    def measured_save(self, state):  # the real save, then the size of what reached the disk
        save(self, state)
        model = self.model_for_reference
        full = io.BytesIO()
        # The best state was a deep copy, so it shared no storage with the model's (torch.save would write one copy).
        reference = {
            "model": model.state_dict(),
            "best_state": copy.deepcopy(model.state_dict()),
            "optimizer": state["optimizer"],
        }
        torch.save(reference, full)
        writes.append(
            {
                "stage": state["stage"],
                "epoch": state["epoch"],
                "bytes": self.path.stat().st_size,
                "full_bytes": full.tell(),
            }
        )

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        files = synthesize(args.interactions, scratch / "data")
        data = read_dataset(files["interactions"], files["items"], name="synthetic")
        config = RunConfig().override(
            {
                "kge.epochs": 1,
                "model.use_text": False,
                "model.ease_l2": [250.0],
                "train.epochs": 2,
                "train.side_epochs": 0,
                "train.checkpoint_every": 1,
                "train.batch_size": 65536,
                "train.lr": 0.05,
            }
        )
        graph = api.build_graph(data, config, out=scratch / "graph")
        import importlib

        schedule = importlib.import_module("kgrec.train.schedule")  # kgrec.train the function shadows the package

        model_holder = {}
        fit = schedule.fit

        def fit_with_model(model, *rest, checkpoint=None, **kwargs):  # hands the model to the measurement
            if checkpoint is not None:
                checkpoint.model_for_reference = model_holder["model"] = model
            return fit(model, *rest, checkpoint=checkpoint, **kwargs)

        Checkpointer.save = measured_save
        schedule.fit = fit_with_model
        started = time.perf_counter()
        api.train(graph, config, out=scratch / "run", graph_dir=scratch / "graph", quiet=True)
        seconds = time.perf_counter() - started
    model = model_holder["model"]
    record = {
        "machine": machine(),
        "interactions": args.interactions,
        "users": len(graph.users),
        "items": len(graph.items),
        "dim": config.model.dim,
        "ease_matrix_bytes": model.ease.weight.numel() * 4,
        "writes": writes,
        "train_seconds": seconds,
    }
    results = HERE / "results"
    (results / "checkpoint_size.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# Checkpoint size",
        "",
        f"{', '.join(f'{k} {v}' for k, v in record['machine'].items())}; {args.interactions:,} synthetic interactions, {record['users']:,} users, {record['items']:,} items,"
        f" dim {record['dim']}, EASE on (its matrix: {record['ease_matrix_bytes'] / 2**20:,.0f} MiB), PyKEEN embeddings on.",
        "",
        "| stage | epoch | checkpoint on disk | full state_dict x2 + optimizer (before) | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for write in writes:
        lines.append(
            f"| {write['stage']} | {write['epoch']} | {write['bytes'] / 2**20:,.1f} MiB | {write['full_bytes'] / 2**20:,.1f} MiB |"
            f" {write['bytes'] / write['full_bytes']:.3f} |"
        )
    (results / "checkpoint_size.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
