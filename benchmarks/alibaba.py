"""Alibaba-iFashion (KGIN split): kgrec with and without the KG, from finished run directories.

A run on this dataset takes over an hour on two cores, so the runs are started by hand (or by a scheduler)
and this script only reports them, beside the published anchors:

    kgrec build-graph --dataset alibaba-fashion --out WORK/graph
    /usr/bin/time -v kgrec train --graph WORK/graph --config alibaba-fashion --out WORK/gated-2020 \\
        --set train.seed=2020 [--set train.epochs=25 --set train.side_epochs=5] > WORK/gated-2020.log 2>&1
    /usr/bin/time -v kgrec train ... --set model.use_kg=false --out WORK/no-kg-2020 > WORK/no-kg-2020.log 2>&1
    python benchmarks/alibaba.py WORK/gated-2020 WORK/no-kg-2020 [--note "..."]

Test metrics are read once, after training (selection used validation only). ``/usr/bin/time -v`` in the
``<run>.log`` beside each run gives its wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
from pathlib import Path

from kgrec.io import atomic_write

HERE = Path(__file__).resolve().parent

# Published on this split (Recall@20, NDCG@20); they select their epoch on test.
PUBLISHED = {
    "LightGCN": (0.1058, 0.0652),
    "SGL (no KG)": (0.1141, 0.0713),
    "KGAT": (0.0957, 0.0577),
    "KGIN": (0.1147, 0.0716),
    "KGCL": (0.1146, 0.0719),
    "DiffKG": (0.1234, 0.0773),
}


def _time_log(run: Path) -> dict[str, float]:
    """Wall seconds and peak RSS (MiB) from the ``/usr/bin/time -v`` output in ``<run>.log``."""
    log = run.with_suffix(".log")
    if not log.is_file():
        return {}
    text = log.read_text(errors="replace")
    out: dict[str, float] = {}
    if match := re.search(r"Maximum resident set size \(kbytes\): (\d+)", text):
        out["peak_rss_mib"] = int(match.group(1)) / 1024
    if match := re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text):
        seconds = 0.0
        for part in match.group(1).split(":"):
            seconds = seconds * 60 + float(part)
        out["wall_seconds"] = seconds
    return out


def row(run: Path) -> dict:
    """One table row from a run directory."""
    metrics = json.loads((run / "metrics.json").read_text())
    info = json.loads((run / "run.json").read_text())
    timings = info.get("timings", {})
    return {
        "run": run.name,
        "model": info["model"],
        "recall@20": metrics["test"]["recall@20"],
        "ndcg@20": metrics["test"]["ndcg@20"],
        "valid recall@20": metrics["valid"]["recall@20"],
        "epochs": info.get("epochs_run"),
        "best epoch": info.get("best_epoch"),
        "blend": info.get("blend"),
        "s / epoch": timings.get("seconds_per_epoch"),
        "train s": timings.get("train_seconds"),
        **_time_log(run),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--note", action="append", default=[], help="A line for the notes under the table.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "alibaba-fashion.md")
    args = parser.parse_args()
    rows = [row(run) for run in args.runs if (run / "metrics.json").is_file()]
    lines = [
        "# Alibaba-iFashion (KGIN split): kgrec with and without the KG",
        "",
        f"Made by `python benchmarks/alibaba.py` from the run directories below (commands in its docstring). Machine: "
        f"{platform.processor() or platform.machine()}, 2 cores, CPU only. Test = the published test set, read once; "
        "model selection on validation (10% of each user's training pairs, seed 2020) only.",
        "",
        "| run | Recall@20 | NDCG@20 | valid Recall@20 | epochs (best) | EASE blend | s / epoch | wall s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        blend = r["blend"] or {}
        lines.append(
            f"| {r['run']} | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | {r['valid recall@20']:.4f} | {r['epochs']} ({r['best epoch']}) "
            f"| λ={blend.get('l2', '—')}, w={blend.get('weight', 0):.3g} | {r['s / epoch'] or 0:.0f} | {r.get('wall_seconds', 0):.0f} "
            f"| {r.get('peak_rss_mib', 0):.0f} |"
        )
    lines += ["", "Models:", ""] + [f"- {r['run']}: `{r['model']}`" for r in rows]
    lines += [
        "",
        "Published on this split (they pick their epoch on test): "
        + ", ".join(f"{name} {recall:.4f} / {ndcg:.4f}" for name, (recall, ndcg) in PUBLISHED.items())
        + " (Recall@20 / NDCG@20).",
    ]
    if args.note:
        lines += ["", *[f"- {note}" for note in args.note]]
    with atomic_write(args.out) as handle:
        handle.write("\n".join(lines) + "\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
