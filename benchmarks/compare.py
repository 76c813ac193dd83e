"""Regenerate the comparison table from raw results: kgrec variants and RecBole peers on the same split.

    python benchmarks/compare.py benchmarks/results/2026-11-23_2core-cpu --graph ml-100k
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows(folder: Path, graph: str) -> list[tuple[str, dict, float | None]]:
    """(system, test metrics, seconds) for every peer run and kgrec variant found."""
    found = []
    for peers in sorted(folder.glob(f"peers_{graph}*.json")):
        if peers.stem != f"peers_{graph}" and not peers.stem.startswith(f"peers_{graph}-"):
            continue  # peers_ml-100k-cold.json belongs to another graph
        for run in json.loads(peers.read_text())["runs"]:
            label = f"RecBole {run['model']} (seed {run['seed']})"
            found.append((label, run.get("test", {"error": run.get("error")}), run.get("seconds")))
    train = folder / f"train_{graph}.json"
    if train.is_file():
        for name, result in json.loads(train.read_text())["variants"].items():
            label = name if name.startswith("EASE") else f"kgrec {name}"
            found.append((label, result["test"], result["timings"].get("train_seconds")))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--graph", default="ml-100k")
    args = parser.parse_args()
    table = rows(args.folder, args.graph)
    best_peer = max((m["ndcg@20"] for label, m, _ in table if label.startswith("RecBole") and "ndcg@20" in m), default=None)
    print("| system | test NDCG@20 | Recall@20 | MRR@20 | NDCG@20 / best RecBole peer | seconds |")
    print("|---|---|---|---|---|---|")
    for label, metrics, seconds in table:
        if "ndcg@20" not in metrics:
            print(f"| {label} | failed: {metrics.get('error')} | | | | |")
            continue
        ratio = f"{metrics['ndcg@20'] / best_peer:.3f}" if best_peer else ""
        time = f"{seconds:.0f}" if seconds is not None else ""
        print(f"| {label} | {metrics['ndcg@20']:.4f} | {metrics['recall@20']:.4f} | {metrics['mrr@20']:.4f} | {ratio} | {time} |")


if __name__ == "__main__":
    main()
