"""The sparse-data curve: the same test set, each user's training interactions thinned to a fraction.

    python benchmarks/sparse_curve.py --experiment experiments/ml-100k-random.yaml --fractions 0.1 0.25 0.5 1.0

For each fraction a graph is built with ``graph.split.train_fraction`` (the split's seed fixed, so validation and
test are those of the full split; the thinning draw is recorded in the split digest), the kgrec variants are trained
per seed and the baselines fitted, and every system is measured overall and by segment (``segments.py``). Writes
``results/sparse_curve_<dataset>.{md,json,png}``: NDCG@20 overall and Recall@20 on held-out items with 1-5
training interactions (the tail), mean ± std over seeds, and the paired test of the first two variants per fraction.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from build_graph import machine
from run import build, commit
from segments import _experiment, baseline_segments, kgrec_segments, paired, train

HERE = Path(__file__).resolve().parent
TAIL = "1-5"


def graph_for(dataset: str, split: str, fraction: float) -> Path:
    """The split's graph with each user's training part thinned to ``fraction`` (built once)."""
    work = (
        HERE / ".work" / f"{dataset}-{split}"
        if fraction == 1.0
        else HERE / ".work" / f"{dataset}-{split}-train{fraction:g}"
    )
    return build(dataset, split, work, () if fraction == 1.0 else (f"graph.split.train_fraction={fraction}",))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", type=Path, required=True)
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.1, 0.25, 0.5, 1.0])
    parser.add_argument("--variants", nargs="+", default=["gated", "no-kg"])
    parser.add_argument("--baselines", nargs="*", default=["ease", "item-knn", "kg-knn"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    experiment = _experiment(args.experiment)
    dataset, split = experiment["dataset"], experiment.get("split", "random")
    rows, tests = [], {}
    for fraction in args.fractions:
        graph = (
            HERE / ".work" / f"{dataset}-{split}" / "graph" if fraction == 1.0 else graph_for(dataset, split, fraction)
        )
        users: dict[str, dict[str, list[pd.DataFrame]]] = {}
        for seed in args.seeds:
            systems = [
                (f"kgrec {v}", lambda v=v: kgrec_segments(train(graph, dataset, v, seed, args.threads), (20,)))
                for v in args.variants
            ]
            systems += [(b, lambda b=b: baseline_segments(graph, b, seed, (20,))) for b in args.baselines]
            for system, measure in systems:
                table, per_user = measure()
                for name, t in per_user.items():
                    users.setdefault(system, {}).setdefault(name, []).append(t)
                overall = users[system]["overall"][-1]
                tail = table[(table["by"] == "item popularity") & (table["segment"] == TAIL)]
                rows.append(
                    {
                        "fraction": fraction,
                        "system": system,
                        "seed": seed,
                        "ndcg@20": float(overall["ndcg@20"].mean()),
                        "recall@20": float(overall["recall@20"].mean()),
                        "tail recall@20": float(tail["recall@20"].iloc[0]) if len(tail) else float("nan"),
                        "tail users": int(tail["users"].iloc[0]) if len(tail) else 0,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
        first, second = (f"kgrec {v}" for v in args.variants[:2])
        tests[fraction] = {
            name: stats
            for name, stats in paired(users[first], users[second], "recall@20").items()
            if name in ("overall", TAIL)
        }
    report(dataset, split, args, pd.DataFrame(rows), tests)


def report(dataset: str, split: str, args: argparse.Namespace, frame: pd.DataFrame, tests: dict) -> None:
    stem = HERE / "results" / f"sparse_curve_{dataset}"
    info = machine()
    summary = (
        frame.groupby(["fraction", "system"], sort=False)
        .agg(
            ndcg=("ndcg@20", "mean"),
            ndcg_std=("ndcg@20", lambda x: x.std(ddof=0)),
            tail=("tail recall@20", "mean"),
            tail_std=("tail recall@20", lambda x: x.std(ddof=0)),
            tail_users=("tail users", "first"),
        )
        .reset_index()
    )
    stem.with_suffix(".json").write_text(
        json.dumps(
            {
                "dataset": dataset,
                "split": split,
                "commit": commit(),
                "machine": info,
                "seeds": args.seeds,
                "runs": frame.to_dict("records"),
                "paired_recall@20": {str(k): v for k, v in tests.items()},
            },
            indent=2,
            default=float,
        )
        + "\n"
    )
    first, second = (f"kgrec {v}" for v in args.variants[:2])
    lines = [
        f"# The sparse-data curve: {dataset} ({split} split)\n",
        f"Made by `python benchmarks/sparse_curve.py --experiment experiments/{dataset}-{split}.yaml` at commit {commit()} on "
        f"{info['cpu']}, {info['cores']} cores; seeds {' '.join(map(str, args.seeds))}. Validation and test are those of "
        "the full split at every fraction (`graph.split.train_fraction` thins each user's training part, at least one "
        "interaction kept). Tail: held-out items with 1-5 training interactions *at that fraction* (Recall@20 with the "
        "targets restricted to them; docs/training.md). Mean ± std over seeds.\n",
        "| fraction | system | NDCG@20 | tail Recall@20 | tail users |",
        "|---|---|---|---|---|",
    ]
    for row in summary.to_dict("records"):
        lines.append(
            f"| {row['fraction']:g} | {row['system']} | {row['ndcg']:.4f} ± {row['ndcg_std']:.4f} | "
            f"{row['tail']:.4f} ± {row['tail_std']:.4f} | {row['tail_users']} |"
        )
    lines += [
        f"\n## {first} against {second}, paired over users (each user's Recall@20 averaged over seeds)\n",
        "| fraction | segment | users | difference | 95% CI | Holm p (over the segments) |",
        "|---|---|---|---|---|---|",
    ]
    for fraction, stats in tests.items():
        for name, s in stats.items():
            lines.append(
                f"| {fraction:g} | {name} | {s['users']} | {-s['difference']:+.4f} | "
                f"[{-s['ci_high']:+.4f}, {-s['ci_low']:+.4f}] | {s['holm_t_p']:.2g} |"
            )
    _plot(summary, stem.with_suffix(".png"))
    lines.append(f"\n![NDCG@20 and tail Recall@20 by training fraction]({stem.with_suffix('.png').name})\n")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _plot(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for system in dict.fromkeys(summary["system"]):
        rows = summary[summary["system"] == system]
        axes[0].errorbar(rows["fraction"], rows["ndcg"], yerr=rows["ndcg_std"], marker="o", label=system, capsize=3)
        axes[1].errorbar(rows["fraction"], rows["tail"], yerr=rows["tail_std"], marker="o", label=system, capsize=3)
    for axis, title in zip(
        axes, ("NDCG@20, all held-out items", "Recall@20, held-out items with 1-5 training interactions")
    ):
        axis.set_xscale("log")
        axis.set_xlabel("share of each user's training interactions")
        axis.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
