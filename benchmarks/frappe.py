"""Frappe, in context: popularity-in-context baselines beside kgrec with and without context, on the same split.

    kgrec build-graph --dataset frappe --out WORK/graph
    kgrec train --graph WORK/graph --config frappe --out WORK/ctx-2020 --set eval.task=in-context --set train.seed=2020
    kgrec train --graph WORK/graph --config frappe --out WORK/plain-2020 --set eval.task=in-context \\
        --set 'context.columns=[]' --set train.seed=2020
    python benchmarks/frappe.py --graph WORK/graph --runs WORK/ctx-* WORK/plain-*

The in-context task: each held-out (user, context) of the log is one query; every item is ranked, the
user's items from other contexts included; the targets are the items used in that context. The count
baselines score an item for a query by how often the user used it (``user``), plus ``w`` times how often
they used it in each of the context's fields (``user + <fields>``; ``w`` chosen on validation), with the
item's overall use count breaking ties; ``popularity`` ranks by overall use and ``popularity in context``
by use in each field's value. Counts are observations of the training split. Queries group the held-out
rows by their raw context values, as kgrec's in-context evaluation does for every run (a context-aware run
splits them further by its encoded context only where time or user fields add to the log's columns).

Writes ``benchmarks/results/frappe.{md,json}`` with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

HERE = Path(__file__).resolve().parent
from build_graph import machine

from kgrec.data.context import log_context_columns
from kgrec.evaluate import evaluate_ranking
from kgrec.evaluate.ranking import interaction_matrix
from kgrec.graph import load_graph
from kgrec.io import atomic_write, write_json

WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0)


class Counts:
    """Training-split use counts: per user and item, and per (user, field value) and item, and overall."""

    def __init__(
        self,
        log: pd.DataFrame,
        users: np.ndarray,
        items: np.ndarray,
        codes: dict[str, np.ndarray],
        shape: tuple[int, int],
    ):
        train = (log["split"] == "train").to_numpy()
        self.num_users, self.num_items = shape
        self.sizes = {field: int(values.max()) + 1 for field, values in codes.items()}
        ones = np.ones(int(train.sum()))
        self.user = sp.csr_matrix((ones, (users[train], items[train])), shape=shape)
        self.item = np.asarray(self.user.sum(0)).ravel()
        self.by_user_value = {
            field: sp.csr_matrix(
                (ones, (users[train] * size + codes[field][train], items[train])),
                shape=(self.num_users * size, self.num_items),
            )
            for field, size in self.sizes.items()
        }
        self.by_value = {
            field: sp.csr_matrix((ones, (codes[field][train], items[train])), shape=(size, self.num_items))
            for field, size in self.sizes.items()
        }

    def score(
        self, users: np.ndarray, context: dict[str, np.ndarray], kind: str, fields: tuple[str, ...], weight: float
    ) -> torch.Tensor:
        """``(B, I)`` baseline scores for queries ``users (B,)`` in ``context`` (field -> value code per query)."""
        tie = self.item[None, :] / (self.item.max() + 1.0) * 1e-3
        if kind == "popularity":
            scores = np.broadcast_to(self.item[None, :], (len(users), self.num_items)).astype(float)
        elif kind == "popularity in context":
            scores = sum(self.by_value[f][context[f]].toarray() for f in fields) + tie
        else:
            scores = self.user[users].toarray() + tie
            for field in fields:
                scores = (
                    scores + weight * self.by_user_value[field][users * self.sizes[field] + context[field]].toarray()
                )
        return torch.from_numpy(np.asarray(scores, dtype=np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", type=Path, required=True, help="The Frappe graph from kgrec build-graph.")
    parser.add_argument(
        "--runs", type=Path, nargs="*", default=[], help="kgrec run folders trained with eval.task=in-context."
    )
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--select", default="ndcg@10")
    parser.add_argument("--note", default="", help="A paragraph of findings appended to the report.")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    graph = load_graph(args.graph)
    log = graph.split.interactions
    columns = log_context_columns(log)
    users = graph.users.to_index(log["user_id"].to_numpy())
    items = graph.items.to_index(log["item_id"].to_numpy())
    codes = {c: pd.factorize(log[c].astype(str))[0] for c in columns}
    counts = Counts(log, users, items, codes, (len(graph.users), len(graph.items)))

    def queries(split: str) -> tuple[np.ndarray, dict[str, np.ndarray], sp.csr_matrix]:
        rows = (log["split"] == split).to_numpy()
        stacked = np.column_stack([users[rows], *(codes[c][rows] for c in columns)])
        keys, query = np.unique(stacked, axis=0, return_inverse=True)
        truth = interaction_matrix(query.ravel(), items[rows], len(keys), len(graph.items))
        return keys[:, 0], {c: keys[:, 1 + j] for j, c in enumerate(columns)}, truth

    tasks = {split: queries(split) for split in ("valid", "test")}

    def measure(kind: str, fields: tuple[str, ...], weight: float, split: str) -> dict:
        query_users, context, truth = tasks[split]
        nothing = sp.csr_matrix(truth.shape, dtype=np.bool_)

        def score(rows, context=context, query_users=query_users):  # bound now: evaluated in this iteration
            return counts.score(
                query_users[rows.numpy()], {f: v[rows.numpy()] for f, v in context.items()}, kind, fields, weight
            )

        return evaluate_ranking(score, truth, nothing, ks=tuple(args.ks), batch_size=1024, topk_only=True).metrics

    baselines = []
    for name, kind, fields in (
        ("popularity", "popularity", ()),
        ("popularity in context (all fields)", "popularity in context", tuple(columns)),
        ("user", "user", ()),
        ("user + daytime, weekday", "user", ("daytime", "weekday")),
        ("user + all context fields", "user", tuple(columns)),
    ):
        candidates = WEIGHTS if kind == "user" and fields else (0.0,)
        scored = [(weight, measure(kind, fields, weight, "valid")) for weight in candidates]
        weight, valid = max(scored, key=lambda pair: pair[1][args.select])
        baselines.append(
            {"system": name, "weight": weight, "valid": valid, "test": measure(kind, fields, weight, "test")}
        )
        print(
            f"{name}: w={weight:g} valid {args.select} {valid[args.select]:.4f}, test {baselines[-1]['test'][args.select]:.4f}",
            flush=True,
        )

    # Discovery (training and validation apps masked, per user): popularity among the apps the user has not used.
    train_valid = interaction_matrix(
        users[(log["split"] != "test").to_numpy()],
        items[(log["split"] != "test").to_numpy()],
        len(graph.users),
        len(graph.items),
    )
    test_rows = (log["split"] == "test").to_numpy()
    new = interaction_matrix(users[test_rows], items[test_rows], len(graph.users), len(graph.items))
    new = (new.astype(np.int8) - new.multiply(train_valid).astype(np.int8)).astype(np.bool_).tocsr()
    new.eliminate_zeros()
    popular = torch.from_numpy(counts.item.astype(np.float32))
    discovery = evaluate_ranking(
        lambda rows: popular.expand(len(rows), -1), new, train_valid, ks=tuple(args.ks), batch_size=1024, topk_only=True
    ).metrics
    runs = []
    for run in args.runs:
        metrics = json.loads((run / "metrics.json").read_text())
        info = json.loads((run / "run.json").read_text())
        config = (run / "config.yaml").read_text()
        runs.append(
            {
                "run": run.name,
                "test": metrics["test"],
                "valid": metrics.get("valid", {}),
                "timings": info.get("timings", {}),
                "in_context": "task: in-context" in config,
            }
        )
    result = {
        "graph": str(args.graph),
        "queries": {s: int(tasks[s][2].shape[0]) for s in tasks},
        "baselines": baselines,
        "runs": runs,
        "discovery_popularity": discovery,
        "discovery_users": int((new.getnnz(axis=1) > 0).sum()),
        "machine": machine(),
        "load_before": load,
        "select": args.select,
        "note": args.note,
    }
    out = HERE / "results" / "frappe"
    write_json(out.with_suffix(".json"), result)
    with atomic_write(out.with_suffix(".md")) as handle:
        handle.write(report(result, args.ks))
    print(f"wrote {out}.md")


def group_runs(runs: list[dict]) -> dict[str, list[dict]]:
    """Runs by name, the seed suffix (``ctx-2020``) dropped."""
    groups: dict[str, list[dict]] = {}
    for run in runs:
        groups.setdefault(run["run"].rsplit("-", 1)[0], []).append(run)
    return groups


def mean_std(values: list[float]) -> str:
    """``mean ± std`` over seeds (the mean alone for one)."""
    array = np.asarray(values, dtype=float)
    return f"{array.mean():.4f}" + (f" ± {array.std():.4f}" if len(array) > 1 else "")


def _run_rows(runs: list[dict], keys: list[str]) -> list[str]:
    """One table row per run name (its seeds' mean ± std)."""
    lines = []
    for name, group in group_runs(runs).items():
        cells = [mean_std([run["test"][k] for run in group]) for k in keys]
        lines.append(f"| kgrec {name} | {len(group)} | " + " | ".join(cells) + " |")
    return lines


def report(result: dict, ks: list[int]) -> str:
    keys = [f"{name}@{k}" for k in ks for name in ("recall", "ndcg")]
    lines = [
        "# Frappe, in context: which of my apps now",
        "",
        f"Made by `python benchmarks/frappe.py` on `{result['graph']}` (random split of (user, app, context) observations, "
        f"80/10/10 per user, seed 2020; {result['queries']['valid']:,} validation and {result['queries']['test']:,} test "
        "(user, context) queries; every app ranked, none masked). Baseline weights chosen on validation "
        f"{result['select']}. Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, torch "
        f"{result['machine']['torch']}; 1-minute load average before the run {result['load_before']:.2f}.",
        "",
        "| system | seeds | " + " | ".join(f"test {k}" for k in keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    for row in result["baselines"]:
        label = row["system"] + (f" (w = {row['weight']:g})" if row["weight"] else "")
        lines.append(f"| {label} | — | " + " | ".join(f"{row['test'][k]:.4f}" for k in keys) + " |")
    lines += _run_rows([run for run in result["runs"] if run["in_context"]], keys)
    discovery = [run for run in result["runs"] if not run["in_context"]]
    if discovery and "discovery_popularity" in result:
        lines += [
            "",
            f"**Discovery** (`eval.task: discovery`, the default): the apps a user has not used in training or validation, "
            f"masked as seen; {result['discovery_users']:,} test users have one. A run without context ranks once per user; a "
            "context-aware run once per (user, context) of its held-out uses, so the two rows' queries differ.",
            "",
            "| system | seeds | " + " | ".join(f"test {k}" for k in keys) + " |",
            "|---|---|" + "---|" * len(keys),
            "| popularity (per user) | — | "
            + " | ".join(f"{result['discovery_popularity'][k]:.4f}" for k in keys)
            + " |",
            *_run_rows(discovery, keys),
        ]
    if result.get("note"):
        lines += ["", result["note"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
