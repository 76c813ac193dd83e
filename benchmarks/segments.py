"""Where a model wins: kgrec variants and baselines by user activity and by held-out item popularity, on one split.

    python benchmarks/segments.py --experiment experiments/ml-100k-random.yaml --variants gated no-kg \\
        --baselines ease item-knn kg-knn popularity --seeds 2020 2021 2022

Each kgrec variant is trained once per seed (a fresh ``kgrec train`` process, the experiment's preset and split,
as ``run.py`` trains it; a run already under ``.work`` is reused) and measured with ``kgrec evaluate --segments``;
each baseline is fitted by ``kgrec.baselines`` and ranked the same way (segments are defined in
``kgrec.evaluate.segments``). Writes ``results/segments_<dataset>[-<split>].{md,json,png}``: mean ± std over seeds
per segment, and paired tests per segment (each user's metric averaged over seeds; bootstrap interval, t-test,
Holm over segments) of the first variant against each other system.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
from build_graph import machine
from run import VARIANTS, build, commit, thread_env, train_command

HERE = Path(__file__).resolve().parent
SHOWN = ("recall@20", "ndcg@20")


def train(graph: Path, dataset: str, variant: str, seed: int, threads: int) -> Path:
    """A kgrec run of ``variant`` and ``seed`` (reused when complete)."""
    run_dir = graph.parent / "runs" / f"{variant}-{seed}"
    if (run_dir / "run.json").is_file():
        return run_dir
    settings = {**VARIANTS[variant], "train.seed": seed}
    command = train_command(graph, dataset, run_dir, settings)
    started = time.perf_counter()
    subprocess.run(command, check=True, env=thread_env(threads))
    print(f"trained {variant} seed {seed} in {time.perf_counter() - started:.0f} s", flush=True)
    return run_dir


def kgrec_segments(run_dir: Path, ks: tuple[int, ...]) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    from kgrec import api

    result = api.evaluate_segments(run_dir, ks=ks)
    return result.table, {name: table.groupby("user")[list(SHOWN)].mean() for name, table in result.per_user.items()}


def baseline_segments(
    graph_dir: Path, name: str, seed: int, ks: tuple[int, ...]
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    import kgrec
    from kgrec.baselines import make_baseline
    from kgrec.evaluate.segments import rank_by_segment
    from kgrec.inference import split_matrix

    graph = kgrec.load_graph(str(graph_dir))
    train, exclude, truth = (
        split_matrix(graph, "train"),
        split_matrix(graph, "train", "valid"),
        split_matrix(graph, "test"),
    )
    model = make_baseline(name, seed=seed, cache_dir=graph_dir / "cache").fit(graph, train)
    table, per_row = rank_by_segment(model.score, truth, exclude, train.getnnz(axis=1), train.getnnz(axis=0), ks=ks)
    ids = np.asarray(graph.users.ids, dtype=object)
    return table, {
        n: t.assign(user=ids[t["row"].to_numpy()]).groupby("user")[list(SHOWN)].mean() for n, t in per_row.items()
    }


def paired(base: dict[str, list[pd.DataFrame]], other: dict[str, list[pd.DataFrame]], metric: str) -> dict[str, dict]:
    """Per segment: each user's metric averaged over seeds, paired between two systems."""
    from kgrec.evaluate import holm, paired_comparison

    out = {}
    for name in base:
        if name not in other:
            continue
        a = pd.concat([t[metric] for t in base[name]], axis=1).mean(axis=1)
        b = pd.concat([t[metric] for t in other[name]], axis=1).mean(axis=1)
        both = a.index.intersection(b.index)
        if len(both) >= 2:
            out[name] = paired_comparison(a[both].to_numpy(), b[both].to_numpy(), resamples=2000) | {"users": len(both)}
    for stats, adjusted in zip(out.values(), holm([s["t_p"] for s in out.values()])):
        stats["holm_t_p"] = adjusted
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", type=Path, required=True)
    parser.add_argument("--variants", nargs="+", default=["gated", "no-kg"])
    parser.add_argument("--baselines", nargs="*", default=["ease", "item-knn", "kg-knn", "popularity"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-k", "--ks", nargs="+", type=int, default=[10, 20])
    args = parser.parse_args()
    experiment = _experiment(args.experiment)
    dataset, split = experiment["dataset"], experiment.get("split", "random")
    graph = build(dataset, split, HERE / ".work" / f"{dataset}-{split}")
    tables: dict[str, list[pd.DataFrame]] = {}
    users: dict[str, dict[str, list[pd.DataFrame]]] = {}
    ks = tuple(args.ks)
    for seed in args.seeds:
        for variant in args.variants:
            table, per_user = kgrec_segments(train(graph, dataset, variant, seed, args.threads), ks)
            tables.setdefault(f"kgrec {variant}", []).append(table)
            for name, t in per_user.items():
                users.setdefault(f"kgrec {variant}", {}).setdefault(name, []).append(t)
        for baseline in args.baselines:
            table, per_user = baseline_segments(graph, baseline, seed, ks)
            tables.setdefault(baseline, []).append(table)
            for name, t in per_user.items():
                users.setdefault(baseline, {}).setdefault(name, []).append(t)
    report(dataset, split, graph, args, tables, users)


def _experiment(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def report(dataset: str, split: str, graph: Path, args: argparse.Namespace, tables: dict, users: dict) -> None:
    rows = []
    for system, runs in tables.items():
        stacked = pd.concat(runs)
        for (by, segment), group in stacked.groupby(["by", "segment"], sort=False):
            row = {
                "system": system,
                "by": by,
                "segment": segment,
                "users": int(group["users"].iloc[0]),
                "targets": int(group["targets"].iloc[0]),
                "seeds": len(group),
            }
            for metric in SHOWN:
                row[metric], row[f"{metric} std"] = float(group[metric].mean()), float(group[metric].std(ddof=0))
            rows.append(row)
    frame = pd.DataFrame(rows)
    first = f"kgrec {args.variants[0]}"
    tests = {other: paired(users[first], users[other], "recall@20") for other in users if other != first}
    stem = HERE / "results" / f"segments_{dataset}{'' if split == 'random' else '-' + split}"
    info = machine()
    record = {
        "dataset": dataset,
        "split": split,
        "seeds": args.seeds,
        "commit": commit(),
        "machine": info,
        "rows": rows,
        "paired_recall@20": tests,
    }
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2, default=float) + "\n")
    _plot(frame, stem.with_suffix(".png"))
    lines = [
        f"# Where the KG pays: {dataset} ({split} split) by segment\n",
        f"Made by `python benchmarks/segments.py --experiment experiments/{dataset}-{split}.yaml` at commit {commit()} on "
        f"{info['cpu']}, {info['cores']} cores; seeds {' '.join(map(str, args.seeds))}; full ranking, training and "
        "validation items masked; segments and their definitions: docs/training.md (Where a model wins). "
        "Mean ± std over seeds (the baselines are deterministic but popularity's tie order).\n",
    ]
    for by in ("user activity", "item popularity"):
        part = frame[frame["by"] == by]
        segments = list(dict.fromkeys(part["segment"]))
        lines += [
            f"\n## Recall@20 by {by} (training interactions)\n",
            "| system | "
            + " | ".join(f"{s} ({int(part[part['segment'] == s]['users'].iloc[0])} users)" for s in segments)
            + " |",
            "|---|" + "---|" * len(segments),
        ]
        for system in dict.fromkeys(part["system"]):
            cells = []
            for segment in segments:
                row = part[(part["system"] == system) & (part["segment"] == segment)].iloc[0]
                cells.append(
                    "—" if np.isnan(row["recall@20"]) else f"{row['recall@20']:.4f} ± {row['recall@20 std']:.4f}"
                )
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
    lines += [
        f"\n## {first} against each system, paired per item-popularity segment (Recall@20, users' means over seeds)\n",
        "| against | segment | users | difference | 95% CI | Holm p |",
        "|---|---|---|---|---|---|",
    ]
    for other, stats in tests.items():
        for name, s in stats.items():
            if name == "overall":
                continue
            lines.append(
                f"| {other} | {name} | {s['users']} | {-s['difference']:+.4f} | "
                f"[{-s['ci_high']:+.4f}, {-s['ci_low']:+.4f}] | {s['holm_t_p']:.2g} |"
            )
    lines.append(f"\n![Recall@20 by segment]({stem.with_suffix('.png').name})\n")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _plot(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, by in zip(axes, ("user activity", "item popularity")):
        part = frame[frame["by"] == by]
        for system in dict.fromkeys(part["system"]):
            rows = part[part["system"] == system]
            axis.errorbar(
                rows["segment"], rows["recall@20"], yerr=rows["recall@20 std"], marker="o", label=system, capsize=3
            )
        axis.set_title(f"Recall@20 by {by}")
        axis.set_xlabel("training interactions")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
