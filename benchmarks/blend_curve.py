"""Validation and test along the EASE blend: where a run's chosen blend sits, and what validation could see.

    python benchmarks/blend_curve.py --runs RUN... [--candidates unseen] [--metric ndcg@20] [--out NAME]

For each trained run, its chosen EASE penalty, KG and text rows stay; the blend weight is scaled by each
factor of ``--factors`` (0: the learned model alone; 1: the chosen blend; 1000: EASE alone in effect) and
the run is ranked on validation and on test with :meth:`kgrec.inference.Recommender.evaluate_blends`, as
training chose it (``--candidates unseen`` for a cold-items split). A flat validation curve beside a test
curve that moves with the seed says the choice is noise, not signal. Nothing is chosen on test here.

Writes ``benchmarks/results/blend_curve_<NAME>.{md,json}`` with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
from build_graph import machine

from kgrec.inference import Recommender
from kgrec.io import atomic_write, write_json

FACTORS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 16.0, 1000.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="Trained run folders with an EASE blend.")
    parser.add_argument("--candidates", choices=["all", "unseen"], default="all")
    parser.add_argument("--metric", default="ndcg@20")
    parser.add_argument("--factors", type=float, nargs="+", default=list(FACTORS))
    parser.add_argument("--out", default="runs", help="Name of the result files.")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    load = os.getloadavg()[0]

    rows = []
    for run in args.runs:
        recommender = Recommender.load(run)
        blend = json.loads((run / "run.json").read_text())["blend"]
        if not blend or not blend.get("weight"):
            sys.exit(f"{run}: no EASE blend was chosen (weight 0): there is no curve to draw")
        weights = [factor * blend["weight"] for factor in args.factors]
        curves = {}
        for split in ("valid", "test"):
            measured = recommender.evaluate_blends(weights, split=split, candidates=args.candidates)
            curves[split] = [float(metrics[args.metric]) for metrics in measured]
        rows.append({"run": str(run), "blend": blend, **curves})
        print(
            run.name,
            *(f"{split} " + " ".join(f"{v:.4f}" for v in curves[split]) for split in ("valid", "test")),
            flush=True,
        )

    result = {
        "runs": rows,
        "factors": args.factors,
        "metric": args.metric,
        "candidates": args.candidates,
        "machine": machine(),
        "load_before": load,
        "note": args.note,
    }
    out = HERE / "results" / f"blend_curve_{args.out}"
    write_json(out.with_suffix(".json"), result)
    with atomic_write(out.with_suffix(".md")) as handle:
        handle.write(report(result))
    print(f"wrote {out}.md")


def report(result: dict) -> str:
    factors = result["factors"]
    lines = [
        f"# {result['metric']} along the EASE blend ({result['candidates']} candidates)",
        "",
        "Made by `python benchmarks/blend_curve.py`: each run's chosen penalty and side rows kept, its blend weight times "
        "each factor (0: the learned model alone; 1: as chosen on validation; 1000: EASE alone in effect). Machine: "
        f"{result['machine']['cpu']}, {result['machine']['cores']} cores, torch {result['machine']['torch']}; 1-minute load "
        f"average before the run {result['load_before']:.2f}.",
        "",
        "| run | split | " + " | ".join(f"× {f:g}" for f in factors) + " |",
        "|---|---|" + "---|" * len(factors),
    ]
    for row in result["runs"]:
        for split in ("valid", "test"):
            best = int(np.argmax(row[split]))
            cells = [f"**{v:.4f}**" if j == best else f"{v:.4f}" for j, v in enumerate(row[split])]
            lines.append(f"| {Path(row['run']).name} | {split} | " + " | ".join(cells) + " |")
    for split in ("valid", "test"):
        values = np.array([row[split] for row in result["runs"]])
        if len(values) > 1:
            lines.append(f"| seed std | {split} | " + " | ".join(f"{v:.4f}" for v in values.std(0)) + " |")
    if result.get("note"):
        lines += ["", result["note"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
