"""What the KG (and text) add to the linear backbone alone: EASE against EASE with the KG's item links and the items' text as extra rows.

    python benchmarks/linear_kg.py --graph benchmarks/.work/alibaba-fashion-given/graph --l2 500 --kg-weight 0 1 4
    python benchmarks/linear_kg.py --graph benchmarks/.work/ml-100k-cold-items/graph --candidates unseen \
        --l2 500 5000 100000 --kg-weight 0 1 4 --text-weight 0 3 12 50 --config ml-100k

For every KG-row weight (0 is plain EASE, the same solver and split): the closed-form fit on the
saved graph's training interactions (plus, for a weight above 0, the KG item links of
``PropagationGraph.item_links`` scaled by it), full-ranking validation and test metrics under
kgrec's protocol (training items masked; at test, validation items too). The weight is chosen on
validation only; test is reported for every weight so the ablation is visible, and the chosen row
is marked. ``--text-weight`` above 0 adds the items' centred text similarities
(``kgrec.models.ease.text_features`` of the graph's cached text embeddings, encoded with ``--config``'s
text settings). No learned embeddings, no PyKEEN: this isolates the KG's contribution to the one model
family that beats every published KG recommender on these splits.

Writes ``benchmarks/results/linear_kg_<graph>.{md,json}`` with the machine and its load.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
from build_graph import machine

from kgrec.graph import load_graph, to_hetero
from kgrec.io import atomic_write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", type=Path, required=True, help="A graph saved by kgrec build-graph.")
    parser.add_argument("--l2", type=float, nargs="+", default=[500.0], help="EASE ridge penalties.")
    parser.add_argument(
        "--kg-weight", type=float, nargs="+", default=[0.0, 1.0, 4.0], help="KG-row weights (0: plain EASE)."
    )
    parser.add_argument("--text-weight", type=float, nargs="+", default=[0.0], help="Text-row weights (0: none).")
    parser.add_argument(
        "--config", default="default", help="Preset or file whose text settings encode the items (with --text-weight)."
    )
    parser.add_argument(
        "--candidates",
        choices=["all", "unseen"],
        default="all",
        help="unseen: rank only items without training interactions (cold items).",
    )
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--select", default="ndcg@20", help="Validation metric that chooses the row.")
    parser.add_argument("--label", help="Name in the results file (default: the graph's folder).")
    parser.add_argument(
        "--per-user",
        type=Path,
        metavar="DIR",
        help="Also write the chosen row's per-user metrics to DIR/per_user.parquet, so that `kgrec compare DIR RUN...` "
        "tests runs on the same graph against this EASE (the p-value column of benchmarks/run.py).",
    )
    args = parser.parse_args()

    from kgrec.config import load_config
    from kgrec.embed import encode_item_texts
    from kgrec.evaluate import evaluate_ranking
    from kgrec.inference import split_matrix, write_per_user
    from kgrec.models import PropagationGraph
    from kgrec.models.ease import EASE, text_features

    label = args.label or args.graph.parent.name
    load = os.getloadavg()[0]
    graph = load_graph(args.graph)
    prop_graph = PropagationGraph.from_hetero(to_hetero(graph), len(graph.relations))
    links = prop_graph.item_links()
    text = None
    if any(args.text_weight):
        text = text_features(
            encode_item_texts(graph.catalog, load_config(args.config).text, args.graph / "cache").text_emb
        )
    train, valid, test = (split_matrix(graph, part) for part in ("train", "valid", "test"))
    train_valid = split_matrix(graph, "train", "valid")
    rows, per_user = [], []
    for l2, kg_weight, text_weight in itertools.product(args.l2, args.kg_weight, args.text_weight):
        ease = EASE(prop_graph.num_items, l2, kg_weight, text_weight)
        started = time.perf_counter()
        ease.fit(prop_graph.history, links, text)
        fit_seconds = time.perf_counter() - started
        row = {"l2": l2, "kg_weight": kg_weight, "text_weight": text_weight, "fit_seconds": fit_seconds}
        tables = {}
        for split, truth, exclude in (("valid", valid, train), ("test", test, train_valid)):
            candidates = None if args.candidates == "all" else exclude.getnnz(axis=0) == 0
            result = evaluate_ranking(
                lambda users, ease=ease: ease(prop_graph.history_rows(users)),
                truth,
                exclude,
                ks=tuple(args.ks),
                batch_size=1024,
                candidates=candidates,
                topk_only=args.per_user is None,
            )
            row[split] = result.metrics
            row[f"{split}_seconds"] = result.seconds
            if args.per_user is not None:
                table = result.per_user.rename(columns={"row": "query"})
                table.insert(0, "user", graph.users.to_ids(table["query"].to_numpy()))
                tables[split] = table
        rows.append(row)
        per_user.append(dict(tables))
        print(
            f"{label} l2={l2:g} kg_weight={kg_weight:g} text_weight={text_weight:g}: fit {fit_seconds:.0f} s, valid {args.select} "
            f"{row['valid'][args.select]:.4f}, test {row['test'][args.select]:.4f}",
            flush=True,
        )
        del ease
    chosen = max(range(len(rows)), key=lambda i: rows[i]["valid"][args.select])
    if args.per_user is not None:
        args.per_user.mkdir(parents=True, exist_ok=True)
        write_per_user(args.per_user, per_user[chosen], graph.split_digest)
        print(f"wrote {args.per_user}/per_user.parquet")
    result = {
        "graph": str(args.graph),
        "label": label,
        "candidates": args.candidates,
        "select": args.select,
        "chosen": chosen,
        "rows": rows,
        "machine": machine(),
        "load_before": load,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
        "users": len(graph.users),
        "items": len(graph.items),
        "item_links": int(links._nnz()),
    }
    out = HERE / "results" / f"linear_kg_{label}"
    for path, text in (
        (out.with_suffix(".json"), json.dumps(result, indent=2) + "\n"),
        (out.with_suffix(".md"), report(result, args.ks)),
    ):
        with atomic_write(path) as handle:
            handle.write(text)
    print(f"wrote {out}.md")


def report(result: dict, ks: list[int]) -> str:
    keys = [f"{name}@{k}" for k in ks for name in ("recall", "ndcg")]
    lines = [
        f"# What the KG adds to EASE alone: {result['label']}",
        "",
        f"Made by `python benchmarks/linear_kg.py` on `{result['graph']}` ({result['users']:,} users, {result['items']:,} items, "
        f"{result['item_links']:,} KG item links). Ranking: {'all items' if result['candidates'] == 'all' else 'only items without training interactions'}, "
        f"training items masked (and validation items at test). The row is chosen on validation {result['select']} (marked); "
        f"test is shown for every row. Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, torch "
        f"{result['machine']['torch']}, {result['torch_threads']} torch threads, "
        f"1-minute load average before the run {result['load_before']:.2f}; peak RSS {result['peak_rss_mib']:,.0f} MiB.",
        "",
        "| l2 | KG-row weight | text-row weight | "
        + " | ".join(f"valid {k}" for k in keys)
        + " | "
        + " | ".join(f"test {k}" for k in keys)
        + " | fit s |",
        "|---|---|---|" + "---|" * (2 * len(keys)) + "---|",
    ]
    for i, row in enumerate(result["rows"]):
        mark = " (chosen)" if i == result["chosen"] else ""
        weight = "0 (plain EASE)" if row["kg_weight"] == 0 else f"{row['kg_weight']:g}"
        lines.append(
            f"| {row['l2']:g} | {weight}{mark} | {row.get('text_weight', 0.0):g} | "
            + " | ".join(f"{row['valid'][k]:.4f}" for k in keys)
            + " | "
            + " | ".join(f"{row['test'][k]:.4f}" for k in keys)
            + f" | {row['fit_seconds']:.0f} |"
        )
    plain = [r for r in result["rows"] if r["kg_weight"] == 0 and not r.get("text_weight")]
    if plain:
        lines.append("")
        best_plain = max(plain, key=lambda r: r["valid"][result["select"]])
        chosen = result["rows"][result["chosen"]]
        for key in keys[-2:]:
            change = chosen["test"][key] / best_plain["test"][key] - 1 if best_plain["test"][key] else float("nan")
            lines.append(
                f"- test {key}: chosen {chosen['test'][key]:.4f} vs plain EASE (its best validation penalty) "
                f"{best_plain['test'][key]:.4f}, {change:+.1%}"
            )
    select = result["select"]
    families = {
        "KG rows only": [r for r in result["rows"] if r["kg_weight"] and not r.get("text_weight")],
        "text rows only": [r for r in result["rows"] if r.get("text_weight") and not r["kg_weight"]],
        "KG and text rows": [r for r in result["rows"] if r["kg_weight"] and r.get("text_weight")],
    }
    for name, rows in families.items():
        if rows:
            best = max(rows, key=lambda r: r["valid"][select])
            lines.append(
                f"- best {name} by validation (l2 {best['l2']:g}, KG {best['kg_weight']:g}, text "
                f"{best.get('text_weight', 0.0):g}): valid {select} {best['valid'][select]:.4f}, test {best['test'][select]:.4f}"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
