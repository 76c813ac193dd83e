"""Ablation studies of kgrec's own parts on ml-100k: context features, and multi-task training.

    python benchmarks/studies.py context   [--seeds 2020 2021 2022] [--jobs 2]
    python benchmarks/studies.py multitask [--seeds 2020] [--jobs 2]

context: a temporal split (each user's last interaction is the test, the one before it validates),
the same kgrec config with and without context features, same seeds. Every test interaction is
ranked in its own context (its hour, weekday, gap since the previous interaction, month; the
user's attributes), against every item.

multitask: the random split of benchmarks/run.py; each task alone and jointly, with the EASE blend
switched off (model.linear=none) and the joint schedule, so the figures measure the shared
representations themselves. NDCG@20 (ranking), RMSE/MAE (rating), and link-prediction MRR on the
KG triples PyKEEN held out (filtered, both sides), before (PyKEEN as trained) and after fine-tuning.

Each (variant, seed) is one fresh ``kgrec train`` process (resumable: finished records are kept in
benchmarks/results/raw/<study>/). Writes benchmarks/results/<study>_ml-100k.{md,csv}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
from build_graph import machine
from run import build, commit, split_checksum, thread_env, write_record

USER_CONTEXT = {"context.user": ["age", "gender", "occupation", "zip_code"], "context.prefix": {"zip_code": 1}}
TIME_CONTEXT = {"context.time": ["hour", "weekday", "gap", "period"]}
NO_BLEND = {"model.linear": "none", "train.schedule": "joint"}

STUDIES: dict[str, dict] = {
    "context": {
        "split": "loo",
        "variants": {
            "no context": {},
            "time": TIME_CONTEXT,
            "user attributes": USER_CONTEXT,
            "time + user attributes": {**TIME_CONTEXT, **USER_CONTEXT},
            # Without the EASE blend, the figures measure what context does to the learned representations.
            "no context, no EASE": {"model.linear": "none"},
            "time + user attributes, no EASE": {**TIME_CONTEXT, **USER_CONTEXT, "model.linear": "none"},
        },
        "columns": ("ndcg@10", "ndcg@20", "recall@20", "mrr@20"),
    },
    "multitask": {
        "split": "random",
        "variants": {
            "rank": {**NO_BLEND, "train.tasks": ["rank"]},
            "rating": {**NO_BLEND, "train.tasks": ["rating"]},
            "kg": {**NO_BLEND, "train.tasks": ["kg"], "train.epochs": 100},
            "rank + rating": {**NO_BLEND, "train.tasks": ["rank", "rating"]},
            "rank + kg": {**NO_BLEND, "train.tasks": ["rank", "kg"]},
            "rank + rating + kg (fixed)": {**NO_BLEND, "train.tasks": ["rank", "rating", "kg"]},
            "rank + rating + kg (uncertainty)": {
                **NO_BLEND,
                "train.tasks": ["rank", "rating", "kg"],
                "train.task_weighting": "uncertainty",
            },
        },
        "columns": ("ndcg@20", "recall@20", "rmse", "mae", "kg_mrr", "kg_hits@10"),
    },
}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-").replace("--", "-")


def run_variant(study: str, graph: Path, variant: str, seed: int, args: argparse.Namespace, raw: Path) -> None:
    """One ``kgrec train`` process for a (variant, seed); its metrics become the raw record."""
    out = raw / f"{_slug(variant)}-{seed}.json"
    if out.is_file():
        return
    run_dir = graph.parent / "runs" / f"{study}-{_slug(variant)}-{seed}"
    settings = {**STUDIES[study]["variants"][variant], "train.seed": seed}
    command = [
        sys.executable,
        "-m",
        "kgrec",
        "train",
        "--graph",
        str(graph),
        "--config",
        "ml-100k",
        "--out",
        str(run_dir),
        "--quiet",
    ]
    command += [arg for key, value in settings.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=thread_env(args.threads))
    record: dict = {
        "variant": variant,
        "seed": seed,
        "settings": settings,
        "commit": commit(),
        "wall_seconds": time.perf_counter() - started,
    }
    if done.returncode != 0:
        record["error"] = (done.stderr.strip().splitlines() or ["failed"])[-1][:500]
    else:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        run = json.loads((run_dir / "run.json").read_text())
        kg = metrics.get("kge_finetuned") or metrics.get("kge") or {}
        record.update(
            test={**metrics.get("test", {}), "kg_mrr": kg.get("mrr"), "kg_hits@10": kg.get("hits@10")},
            kge_pykeen=metrics.get("kge", {}),
            kg_finetuned="kge_finetuned" in metrics,
            seconds=run.get("timings", {}).get("train_seconds"),
            best_epoch=run.get("best_epoch"),
            epochs=run.get("epochs_run"),
        )
    write_record(out, record)
    print(
        variant,
        seed,
        record.get("error")
        or {k: round(v, 4) for k, v in record["test"].items() if k in STUDIES[study]["columns"] and v is not None},
        flush=True,
    )


def report(study: str, graph: Path, raw: Path, seeds: tuple[int, ...]) -> None:
    """Mean ± std over seeds per variant, as markdown and CSV."""
    spec = STUDIES[study]
    records = [json.loads(p.read_text()) for p in sorted(raw.glob("*.json"))]
    records = [r for r in records if r["seed"] in seeds]
    rows = []
    for variant in spec["variants"]:
        mine = [r for r in records if r["variant"] == variant]
        ok = [r for r in mine if "error" not in r]
        row: dict = {"variant": variant, "seeds": len(ok)}
        if not ok:
            row["error"] = mine[0]["error"] if mine else "not run"
        for column in spec["columns"]:
            values = pd.Series([r["test"].get(column) for r in ok], dtype=float).dropna()
            row[column] = values.mean() if len(values) else float("nan")
            row[f"{column}_std"] = values.std(ddof=0) if len(values) > 1 else float("nan")
        row["seconds"] = pd.Series([r.get("seconds") for r in ok], dtype=float).mean()
        if study == "multitask":
            row["kg_finetuned"] = any(r.get("kg_finetuned") for r in ok)
            pykeen = [r["kge_pykeen"].get("mrr") for r in ok if r.get("kge_pykeen")]
            row["pykeen_mrr"] = pd.Series(pykeen, dtype=float).mean() if pykeen else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    out = HERE / "results" / f"{study}_ml-100k"
    table.to_csv(out.with_suffix(".csv"), index=False)
    info = machine()

    def cell(row: pd.Series, column: str) -> str:
        if pd.isna(row[column]):
            return "—"
        std = row[f"{column}_std"]
        return f"{row[column]:.4f}" + ("" if pd.isna(std) else f" ± {std:.4f}")

    header = ["variant", *spec["columns"], "train s", "seeds"]
    lines = [
        f"# {'Context features' if study == 'context' else 'Multi-task training'} on ml-100k\n",
        f"Made by `python benchmarks/studies.py {study} --seeds {' '.join(map(str, seeds))}` at commit {commit()}; "
        f"{info['cpu']}, {info['cores']} cores, torch {info.get('torch', '')}, one thread per process, two processes at once. "
        f"Split `{spec['split']}` (seed 2020, interactions sha256 {split_checksum(graph)}…); mean ± std over seeds; test set, full ranking.\n",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for _, row in table.iterrows():
        cells = [
            row["variant"],
            *(cell(row, c) for c in spec["columns"]),
            f"{row['seconds']:.0f}" if pd.notna(row["seconds"]) else "—",
            str(row["seeds"]),
        ]
        if "error" in row and isinstance(row.get("error"), str):
            cells[1] = f"failed: {row['error']}"
        lines.append("| " + " | ".join(cells) + " |")
    if study == "multitask":
        lines.append(
            f"\nKG link prediction of PyKEEN's embeddings as trained (frozen; what `rank` and `rank + rating` use): "
            f"MRR {table['pykeen_mrr'].mean():.4f}. Rows with `kg` report the MRR after joint fine-tuning on the same held-out triples."
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=sorted(STUDIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    parser.add_argument("--variants", nargs="+", help="A subset of the study's variants.")
    parser.add_argument("--jobs", type=int, default=2, help="kgrec processes at once.")
    parser.add_argument("--threads", type=int, default=1, help="Threads per process.")
    parser.add_argument("--report", action="store_true", help="Only write the report from the raw records.")
    args = parser.parse_args()
    spec = STUDIES[args.study]
    work = HERE / ".work" / f"ml-100k-{spec['split']}"
    graph = build("ml-100k", spec["split"], work)
    raw = HERE / "results" / "raw" / args.study
    if not args.report:
        variants = args.variants or list(spec["variants"])
        # The first run fills the graph's PyKEEN and text caches; the others then read them.
        first, *rest = [(v, s) for s in args.seeds for v in variants]
        run_variant(args.study, graph, *first, args, raw)
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda job: run_variant(args.study, graph, *job, args, raw), rest))
    report(args.study, graph, raw, tuple(args.seeds))


if __name__ == "__main__":
    main()
