"""A new user's first hour, timed as they live it: `make demo`'s four commands, `--help`, and the first answers.

Every figure is the wall time of real processes (fresh interpreter, imports included), the median of several:

- the demo: build-graph (ml-100k), train --fusion gated, evaluate, recommend --explain, each in a fresh process,
  the whole sequence repeated ``--repeats`` times from nothing (a new graph folder, so no cache is reused);
  the test NDCG@20 of each repetition is recorded, to show the speed did not cost quality;
- ``kgrec --help`` and ``kgrec train --help``;
- the first answer of ``kgrec recommend`` (one user) and of ``kgrec query`` (one SPARQL SELECT) on the demo's run
  and graph.

    python benchmarks/first_hour.py --data-dir ../shared/datasets [--repeats 3] [--answers 5]

Writes ``results/first_hour.json`` and ``results/first_hour.md``. The machine's load average before and after is
recorded: on a loaded machine every figure grows, and the page says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KGREC = [sys.executable, "-m", "kgrec"]
QUERY = "SELECT ?film ?genre WHERE { ?film kgrec:hasCategory ?genre } LIMIT 5"


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done


def _demo(work: Path, data_dir: str, env: dict[str, str]) -> dict:
    graph, run = work / "graph", work / "run"
    steps = {
        "build-graph": [
            *KGREC,
            "build-graph",
            "--dataset",
            "ml-100k",
            "--data-dir",
            data_dir,
            "--out",
            str(graph),
            "--no-download",
        ],
        "train": [*KGREC, "train", "--graph", str(graph), "--fusion", "gated", "--out", str(run)],
        "evaluate": [*KGREC, "evaluate", "--run", str(run)],
        "recommend": [*KGREC, "recommend", "--run", str(run), "--user", "196", "-k", "10", "--explain"],
    }
    seconds = {name: _timed(args, env)[0] for name, args in steps.items()}
    metrics = json.loads((run / "metrics.json").read_text())
    run_info = json.loads((run / "run.json").read_text())
    return {
        "seconds": seconds,
        "total_seconds": sum(seconds.values()),
        "test_ndcg@20": metrics["test"]["ndcg@20"],
        "epochs_run": run_info.get("epochs_run"),
    }


def _median_of(args: list[str], env: dict[str, str], repeats: int) -> dict:
    times = [_timed(args, env)[0] for _ in range(repeats)]
    return {"median_seconds": statistics.median(times), "seconds": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default=os.environ.get("KGREC_DATA_DIR"), help="Folder holding ml-100k/ [KGREC_DATA_DIR]."
    )
    parser.add_argument("--repeats", type=int, default=3, help="Demo sequences from nothing.")
    parser.add_argument("--answers", type=int, default=5, help="Processes timed for each help and first-answer figure.")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="Where the json and md go.")
    args = parser.parse_args()
    if not args.data_dir:
        raise SystemExit("give --data-dir (or KGREC_DATA_DIR): the folder that holds ml-100k/")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="kgrec-first-hour-"))
    try:
        demos = []
        for repeat in range(args.repeats):
            folder = work / f"demo-{repeat}"
            demos.append(_demo(folder, args.data_dir, env))
            print(f"demo {repeat + 1}: {demos[-1]['total_seconds']:.0f} s", file=sys.stderr)
            if repeat < args.repeats - 1:
                shutil.rmtree(folder)
        last = work / f"demo-{args.repeats - 1}"
        timings = {
            "kgrec --help": _median_of([*KGREC, "--help"], env, args.answers),
            "kgrec train --help": _median_of([*KGREC, "train", "--help"], env, args.answers),
            "kgrec recommend (one user)": _median_of(
                [*KGREC, "recommend", "--run", str(last / "run"), "--user", "196", "-k", "10"], env, args.answers
            ),
            "kgrec query (first answer)": _median_of(
                [*KGREC, "query", QUERY, "--graph", str(last / "graph")], env, args.answers
            ),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    record = {
        "commit": commit,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_before": load_before,
        "load_after": load_after,
        "demo": demos,
        "demo_median_seconds": statistics.median(d["total_seconds"] for d in demos),
        "answers": timings,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "first_hour.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.out / "first_hour.md").write_text(_page(record))
    print((args.out / "first_hour.md").read_text())


def _page(record: dict) -> str:
    demos = record["demo"]
    steps = list(demos[0]["seconds"])
    rows = "\n".join(
        f"| {i + 1} | " + " | ".join(f"{d['seconds'][s]:.1f}" for s in steps) + f" | **{d['total_seconds']:.0f}** | "
        f"{d['test_ndcg@20']:.4f} | {d['epochs_run']} |"
        for i, d in enumerate(demos)
    )
    answers = "\n".join(
        f"| `{name}` | {t['median_seconds']:.2f} | {', '.join(f'{s:.2f}' for s in t['seconds'])} |"
        for name, t in record["answers"].items()
    )
    return f"""# A new user's first hour

Made by `python benchmarks/first_hour.py --data-dir ../shared/datasets` at commit {record["commit"]} on {record["machine"]}
(load average before {record["load_before"][0]:.2f}, after {record["load_after"][0]:.2f}). Wall times of fresh processes,
imports included; the virtual environment already set up (`make setup`, a few minutes of pip, is not in them).

## `make demo`'s four commands, from nothing (a new graph folder each time: no cache)

| run | {" | ".join(steps)} | total (s) | test NDCG@20 | epochs |
|---|{"---|" * len(steps)}---|---|---|
{rows}

Median: **{record["demo_median_seconds"]:.0f} s** ({record["demo_median_seconds"] / 60:.1f} min).

## Help and first answers (median of {len(next(iter(record["answers"].values()))["seconds"])} processes)

| command | median (s) | each (s) |
|---|---|---|
{answers}
"""


if __name__ == "__main__":
    main()
