"""Cost curve: build-graph, PyKEEN, text encoding, one training epoch and evaluation, from 10^4 to 10^7 interactions.

    python benchmarks/scale.py [--sizes 10000 100000 1000000 10000000] [--threads 2] [--timeout 3600]

Synthetic data with the skew of real logs: power-law item popularity (Zipf, exponent 1.1) and user
activity (Zipf, 1.3), 1 user per 25 interactions and 1 item per 100, 50 categories and 500 brands
(themselves power-law), and a short text description per item. Each size runs as fresh processes:
``kgrec build-graph``, then ``kgrec train`` with PyKEEN (1 epoch), text encoding, one epoch of
training — full-batch (batch 65,536: every step propagates over the whole graph) or sampled (batch 8,192,
fan-out 10/5/5: every step propagates over the batch's sampled neighbourhood) — and full-ranking
evaluation of every test user. Times and peak
resident memory come from the runs' own timings and ``getrusage``; the EASE part is off
(``model.linear=none``: its item x item matrix alone needs 8·I² bytes). For each run that finishes,
FAISS candidate retrieval (``recommend --retrieval faiss``) is compared with exact ranking on up to
2,000 users: overlap of the top 20 and time. Writes benchmarks/results/scale.{md,json} and
scale.png (log-log, with the fitted slope of each stage).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
from build_graph import machine

WORDS = np.array(
    "space love war city night heart river dream story music crime house world road star family school".split()
)


def synthesize(size: int, folder: Path, seed: int = 0) -> dict[str, Path]:
    """Write ``size`` interactions and their catalog as CSV files; returns the paths."""
    rng = np.random.default_rng(seed)
    num_users, num_items = max(20, size // 25), max(50, size // 100)
    item_weight = 1.0 / np.arange(1, num_items + 1) ** 1.1
    user_weight = 1.0 / np.arange(1, num_users + 1) ** 1.3
    users = rng.choice(num_users, size=int(size * 1.05), p=user_weight / user_weight.sum())
    items = rng.choice(num_items, size=len(users), p=item_weight / item_weight.sum())
    log = pd.DataFrame({"user": users, "item": items}).drop_duplicates().head(size)
    log["rating"] = rng.integers(1, 6, len(log))
    log["timestamp"] = 1_500_000_000 + rng.integers(0, 10**8, len(log))
    category_weight = 1.0 / np.arange(1, 51) ** 1.0
    brand_weight = 1.0 / np.arange(1, 501) ** 1.0
    catalog = pd.DataFrame(
        {
            "item": np.arange(num_items),
            "title": [f"Item {i}" for i in range(num_items)],
            "description": [" ".join(rng.choice(WORDS, 12)) for _ in range(num_items)],
            "category": [f"c{c}" for c in rng.choice(50, num_items, p=category_weight / category_weight.sum())],
            "brand": [f"b{b}" for b in rng.choice(500, num_items, p=brand_weight / brand_weight.sum())],
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"interactions": folder / "interactions.csv", "items": folder / "items.csv"}
    log.to_csv(paths["interactions"], index=False)
    catalog.to_csv(paths["items"], index=False)
    return paths


# Runs one command and reports its exit code and peak resident memory (its process tree's, alone).
_WRAP = r"""
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:])
print(json.dumps({"code": done.returncode, "peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def _run(command: list[str], threads: int, timeout: int) -> tuple[int, float, float, str]:
    """Run a command; return (exit code, wall seconds, its peak RSS in MiB, last stderr line)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _WRAP, *command], env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return 124, time.perf_counter() - started, float("nan"), f"timed out after {timeout} s"
    wall = time.perf_counter() - started
    result = json.loads(done.stdout.strip().splitlines()[-1])
    error = (done.stderr.strip().splitlines() or [""])[-1][:300]
    return result["code"], wall, result["peak_kib"] / 1024, error


_FAISS = r"""
import json, sys, time, torch
from kgrec import Recommender
torch.set_num_threads(int(sys.argv[2]))
rec = Recommender.load(sys.argv[1])
users = list(rec.graph.users.ids)[:2000]
t0 = time.perf_counter(); exact = rec.recommend(users, k=20); t1 = time.perf_counter()
approx = rec.recommend(users, k=20, retrieval="faiss"); t2 = time.perf_counter()
overlap = sum(len(set(a.item_ids) & set(b.item_ids)) for a, b in zip(exact, approx)) / sum(len(a.item_ids) for a in exact)
print(json.dumps({"users": len(users), "exact_seconds": t1 - t0, "faiss_seconds": t2 - t1, "overlap@20": overlap}))
"""


# The two training paths: the whole graph every step, or each batch's sampled neighbourhood.
PATHS = {
    "full": {"train.batch_size": 65536},
    "sampled": {"train.batching": "sampled", "train.batch_size": 8192, "train.fanout": "[10,5,5]"},
}


def measure(size: int, path: str, work: Path, args: argparse.Namespace, built: dict | None) -> dict:
    folder = work / f"n{size}"
    kgrec = [sys.executable, "-m", "kgrec"]
    if built is None:  # the data and graph are shared by both paths
        record: dict = {"interactions": size}
        started = time.perf_counter()
        paths = synthesize(size, folder / "data")
        record["generate_seconds"] = time.perf_counter() - started
        code, wall, peak, error = _run(
            [
                *kgrec,
                "build-graph",
                f"--interactions={paths['interactions']}",
                f"--items={paths['items']}",
                f"--out={folder / 'graph'}",
                "--name=synthetic",
            ],
            args.threads,
            args.timeout,
        )
        record.update(build_seconds=wall, build_peak_mib=peak)
        if code != 0:
            return {**record, "path": path, "error": f"build-graph: {error}"}
        stats = json.loads((folder / "graph" / "stats.json").read_text())
        record.update(users=stats.get("users"), items=stats.get("items"), kg_triples=stats.get("kg_triples"))
    else:
        record = {
            k: built[k]
            for k in (
                "interactions",
                "generate_seconds",
                "build_seconds",
                "build_peak_mib",
                "users",
                "items",
                "kg_triples",
            )
            if k in built
        }
    record["path"] = path
    settings = {
        "kge.epochs": 1,
        "train.epochs": 1,
        "train.side_epochs": 1,
        "model.linear": "none",
        "train.checkpoint_every": 0,
        **PATHS[path],
    }
    flags = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    run = folder / f"run-{path}"
    code, wall, peak, error = _run(
        [*kgrec, "train", f"--graph={folder / 'graph'}", f"--out={run}", "--quiet", *flags], args.threads, args.timeout
    )
    record.update(train_wall_seconds=wall, train_peak_mib=peak)
    if code != 0:
        return {**record, "error": f"train: {error}"}
    timings = json.loads((run / "run.json").read_text())["timings"]
    epochs = 2  # one backbone epoch and one KG/text epoch
    record.update(
        kge_seconds=timings.get("kge_seconds"),
        text_seconds=timings.get("text_seconds"),
        epoch_seconds=timings.get("train_seconds", 0.0) / epochs,
        eval_seconds=timings.get("eval_test_seconds"),
    )
    done = subprocess.run(
        [sys.executable, "-c", _FAISS, str(run), str(args.threads)],
        capture_output=True,
        text=True,
        timeout=args.timeout,
        env={**os.environ, "OMP_NUM_THREADS": str(args.threads)},
    )
    if done.returncode == 0:
        record["faiss"] = json.loads(done.stdout.strip().splitlines()[-1])
    else:
        record["faiss"] = {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return record


STAGES = {
    "build_seconds": "build-graph",
    "kge_seconds": "PyKEEN (1 epoch)",
    "text_seconds": "text encoding",
    "epoch_seconds": "one training epoch",
    "eval_seconds": "evaluation (all test users)",
}


def report(records: list[dict], info: dict, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = HERE / "results"
    table = pd.DataFrame(records)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    slopes = {}
    for key, label in STAGES.items():
        for path in ("full", "sampled"):
            if key not in table or (key in ("build_seconds", "kge_seconds", "text_seconds") and path == "sampled"):
                continue  # those stages do not depend on the path
            done = table[table["path"] == path].dropna(subset=[key])
            done = done[done[key] > 0]
            if len(done) >= 2:
                slope = np.polyfit(np.log10(done["interactions"]), np.log10(done[key]), 1)[0]
                name = label if key in ("build_seconds", "kge_seconds", "text_seconds") else f"{label}, {path}"
                slopes[name] = slope
                axes[0].loglog(
                    done["interactions"],
                    done[key],
                    "o-" if path == "full" else "s--",
                    label=f"{name} (slope {slope:.2f})",
                )
    axes[0].set(xlabel="interactions", ylabel="seconds", title="time")
    axes[0].legend(fontsize=7)
    for key, label, path in (
        ("build_peak_mib", "build-graph", "full"),
        ("train_peak_mib", "train + evaluate, full", "full"),
        ("train_peak_mib", "train + evaluate, sampled", "sampled"),
    ):
        done = table[table["path"] == path].dropna(subset=[key]) if key in table else pd.DataFrame()
        if len(done):
            axes[1].loglog(done["interactions"], done[key], "o-" if path == "full" else "s--", label=label)
    axes[1].axhline(24 * 1024, color="red", linestyle="--", label="24 GiB")
    axes[1].set(xlabel="interactions", ylabel="peak RSS (MiB)", title="memory")
    axes[1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "scale.png", dpi=100)
    (out / "scale.json").write_text(
        json.dumps({"machine": info, "threads": args.threads, "records": records, "slopes": slopes}, indent=2)
    )

    def cell(value, digits=1) -> str:
        return "—" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:,.{digits}f}"

    lines = [
        "# Cost curve: kgrec from 10^4 to 10^7 interactions, full-batch and sampled\n",
        f"Made by `python benchmarks/scale.py --threads {args.threads}`; {info['cpu']}, {info['cores']} cores, torch {info['torch']}, "
        "no GPU. Synthetic power-law data (see the script). Seconds per stage and peak resident memory of each process.\n",
        "| interactions | path | users | items | KG triples | build-graph s | PyKEEN 1 epoch s | text s | 1 epoch s | eval s | build peak MiB | train peak MiB | FAISS top-20 overlap | exact / FAISS s (2k users) | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        faiss = r.get("faiss") or {}
        lines.append(
            f"| {r['interactions']:,} | {r.get('path', 'full')} | {cell(r.get('users'), 0)} | {cell(r.get('items'), 0)} | {cell(r.get('kg_triples'), 0)} | "
            f"{cell(r.get('build_seconds'))} | {cell(r.get('kge_seconds'))} | {cell(r.get('text_seconds'))} | {cell(r.get('epoch_seconds'))} | "
            f"{cell(r.get('eval_seconds'))} | {cell(r.get('build_peak_mib'), 0)} | {cell(r.get('train_peak_mib'), 0)} | "
            f"{cell(faiss.get('overlap@20'), 3)} | {cell(faiss.get('exact_seconds'), 2)} / {cell(faiss.get('faiss_seconds'), 2)} | "
            f"{r.get('error', '') or ('PyKEEN/text from cache' if r.get('warm_caches') else 'PyKEEN/text computed')} |"
        )
    lines.append(
        "\nFitted log-log slopes (seconds against interactions): "
        + ", ".join(f"{k} {v:.2f}" for k, v in slopes.items())
        + "."
    )
    lines.append("\n![cost curve](scale.png)")
    (out / "scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000, 10_000_000])
    parser.add_argument("--paths", nargs="+", choices=sorted(PATHS), default=sorted(PATHS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=3600, help="Seconds per process.")
    parser.add_argument("--report", action="store_true", help="Only rewrite the report from results/raw/scale/.")
    args = parser.parse_args()
    work = HERE / ".work" / "scale"
    raw = HERE / "results" / "raw" / "scale"
    raw.mkdir(parents=True, exist_ok=True)
    if not args.report:
        for size in args.sizes:
            for path in args.paths:
                built = [json.loads(p.read_text()) for p in raw.glob(f"n{size}-*.json")]
                built = next(
                    (r for r in built if "build_seconds" in r and not str(r.get("error", "")).startswith("build")), None
                )
                record = measure(size, path, work, args, built)
                # PyKEEN and text do not depend on the path and are cached after the first run of a size:
                # keep their cold-cache times, and say that this run's memory is with warm caches.
                first = [json.loads(p.read_text()) for p in raw.glob(f"n{size}-*.json")]
                cold = next((r for r in first if (r.get("text_seconds") or 0) > 0), None)
                if cold is not None and not (record.get("text_seconds") or 0) > 0:
                    record.update(
                        kge_seconds=cold.get("kge_seconds"), text_seconds=cold.get("text_seconds"), warm_caches=True
                    )
                (raw / f"n{size}-{path}.json").write_text(json.dumps(record, indent=2))
                print(json.dumps(record), flush=True)
    records = [{"path": "full", **json.loads(p.read_text())} for p in raw.glob("n*.json")]
    records = sorted(records, key=lambda r: (r["interactions"], r.get("path", "full")))
    report(records, machine(), args)


if __name__ == "__main__":
    main()
