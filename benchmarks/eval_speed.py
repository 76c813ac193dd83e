"""Full-ranking evaluation speed: kgrec's evaluator against the textbook one, same scores, same run.

    python benchmarks/eval_speed.py [--users 4096] [--items 30040] [--relevant 3.5] [--threads 1]

The textbook evaluator (what kgrec did before 2026-12-03, and what most full-ranking code does):
every batch's scores are shuffled into the fixed tie order before ``topk`` (so equal scores are not
ranked by item id), and AUC ranks the whole catalogue with two ``argsort`` calls. kgrec's: only rows
with a tie among their best k+1 scores are shuffled; AUC compares each relevant item with its row
(a tie counting half). The blend sweep (EASE weight chosen on validation, 8 weights) is timed the
same way: textbook shuffles every weight's sum, kgrec masks the two parts once and shuffles only tied rows.

Scores are synthetic at Alibaba-iFashion's shape by default (30,040 items, 3.5 relevant and 12
training items a user): low-rank embeddings, and in place of EASE a low-rank item-item part over each
user's training items; like a trained model's, they have few ties. Both evaluators must give the same top-K metrics (checked; the
script fails otherwise) and the same AUC where there are no ties. Writes
benchmarks/results/eval_speed.{md,json}.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
from build_graph import machine

from kgrec.evaluate import evaluate_blends, evaluate_ranking, interaction_matrix
from kgrec.evaluate.metrics import topk_metrics
from kgrec.evaluate.ranking import CPU_SCORES_BYTES
from kgrec.io import atomic_write, write_json

BLEND_FACTORS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 1000.0)


def textbook_evaluation(score_users, truth, exclude, ks, batch_size, order, blend_parts=None, weights=()):
    """Shuffle-then-topk ranking and double-argsort AUC: the reference kgrec is timed against."""
    users = np.flatnonzero(truth.getnnz(axis=1) > 0)
    sums: dict[str, float] = {}
    for start in range(0, len(users), batch_size):
        rows = users[start : start + batch_size]
        index = torch.from_numpy(rows)
        relevant = torch.from_numpy(truth[rows].toarray())
        excluded = torch.from_numpy(exclude[rows].toarray()) & ~relevant
        if blend_parts is None:
            batches = [("", score_users(index))]
        else:
            learned, linear = blend_parts(index)
            batches = [(f"w{weight:g}/", learned + weight * linear if weight else learned) for weight in weights]
        for prefix, scores in batches:
            masked = scores.float().masked_fill(excluded, float("-inf"))
            top = order[masked[:, order].topk(max(ks), dim=1).indices]
            for name, values in topk_metrics(relevant.gather(1, top), relevant.sum(1).float(), ks).items():
                sums[prefix + name] = sums.get(prefix + name, 0.0) + float(values.sum())
            if blend_parts is None:
                ranks = masked.argsort(1).argsort(1).float() + 1
                num_pos, num_neg = relevant.sum(1).float(), (~excluded & ~relevant).sum(1).float()
                positive_ranks = ((ranks - excluded.sum(1, keepdim=True)) * relevant).sum(1)
                sums["auc"] = sums.get("auc", 0.0) + float(
                    ((positive_ranks - num_pos * (num_pos + 1) / 2) / (num_pos * num_neg)).sum()
                )
    return {name: total / len(users) for name, total in sums.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=4096)
    parser.add_argument("--items", type=int, default=30_040)
    parser.add_argument("--relevant", type=float, default=3.5, help="held-out items a user (mean)")
    parser.add_argument("--history", type=float, default=12.0, help="training items a user (mean)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "eval_speed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    users, items = args.users, args.items

    def pairs(mean: float) -> tuple[np.ndarray, np.ndarray]:
        count = rng.poisson(mean, users) + 1
        return np.repeat(np.arange(users), count), rng.integers(0, items, count.sum())

    truth = interaction_matrix(*pairs(args.relevant), users, items)
    exclude = interaction_matrix(*pairs(args.history), users, items)
    generator = torch.Generator().manual_seed(0)
    user_emb, item_emb = torch.randn(users, 64, generator=generator), torch.randn(items, 64, generator=generator)
    # A low-rank item-item part over each user's training items, standing in for EASE's weights.
    item_links = torch.randn(items, 32, generator=generator) / 32

    def score_users(index: torch.Tensor) -> torch.Tensor:
        return user_emb[index] @ item_emb.T

    def blend_parts(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = exclude[index.numpy()].tocoo()
        history = torch.sparse_coo_tensor(np.vstack([rows.row, rows.col]), torch.ones(rows.nnz), rows.shape)
        return score_users(index), (history @ item_links) @ item_links.T

    order = torch.randperm(items, generator=torch.Generator().manual_seed(0))
    ks = (10, 20)
    timings: dict[str, float] = {}
    load_average = os.getloadavg()[0]

    started = time.perf_counter()
    ours = evaluate_ranking(score_users, truth, exclude, ks=ks, batch_size=args.batch_size).metrics
    timings["kgrec_full"] = time.perf_counter() - started
    started = time.perf_counter()
    reference = textbook_evaluation(score_users, truth, exclude, ks, args.batch_size, order)
    timings["textbook_full"] = time.perf_counter() - started
    weights = [factor * 0.1 for factor in BLEND_FACTORS]
    started = time.perf_counter()
    swept = evaluate_blends(blend_parts, truth, exclude, weights, ks=ks, batch_size=args.batch_size)
    timings["kgrec_sweep"] = time.perf_counter() - started
    started = time.perf_counter()
    reference_sweep = textbook_evaluation(None, truth, exclude, ks, args.batch_size, order, blend_parts, weights)
    timings["textbook_sweep"] = time.perf_counter() - started

    for name in (f"{metric}@{k}" for metric in ("recall", "ndcg", "mrr") for k in ks):
        if abs(ours[name] - reference[name]) > 1e-6:
            raise SystemExit(f"evaluators disagree on {name}: kgrec {ours[name]} vs textbook {reference[name]}")
        for weight, result in zip(weights, swept):
            if abs(result[name] - reference_sweep[f"w{weight:g}/{name}"]) > 1e-6:
                raise SystemExit(f"blend sweeps disagree on {name} at weight {weight}")
    if abs(ours["auc"] - reference["auc"]) > 1e-5:
        raise SystemExit(f"evaluators disagree on AUC: kgrec {ours['auc']} vs textbook {reference['auc']}")

    result = {
        "machine": machine(),
        "threads": args.threads,
        "users": users,
        "items": items,
        "relevant_per_user": args.relevant,
        "history_per_user": args.history,
        "seconds": timings,
        "speedup_full": timings["textbook_full"] / timings["kgrec_full"],
        "speedup_sweep": timings["textbook_sweep"] / timings["kgrec_sweep"],
        "ndcg@20": ours["ndcg@20"],
        "auc": ours["auc"],
        "load_average": load_average,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out.with_suffix(".json"), result)
    per_thousand = 1000 / users
    lines = [
        "# Full-ranking evaluation speed",
        "",
        f"`python benchmarks/eval_speed.py --users {users} --items {items} --threads {args.threads}`, on "
        f"{result['machine'].get('cpu', 'this machine')}. Synthetic scores, {args.relevant} held-out and "
        f"{args.history} training items a user (mean), batches of {args.batch_size} users (kgrec caps them at "
        f"{CPU_SCORES_BYTES // (4 * items)} at this catalogue size, see `kgrec.evaluate.ranking.CPU_SCORES_BYTES`); "
        f"load average {result['load_average']:.1f} at the start. Both evaluators give the same metrics (checked).",
        "",
        "| what | textbook (s / 1,000 users) | kgrec (s / 1,000 users) | speed-up |",
        "|---|---|---|---|",
        f"| full evaluation (top-K metrics, AUC, coverage) | {timings['textbook_full'] * per_thousand:.2f} | "
        f"{timings['kgrec_full'] * per_thousand:.2f} | {result['speedup_full']:.1f}x |",
        f"| blend sweep, {len(weights)} weights (top-K only) | {timings['textbook_sweep'] * per_thousand:.2f} | "
        f"{timings['kgrec_sweep'] * per_thousand:.2f} | {result['speedup_sweep']:.1f}x |",
        "",
    ]
    with atomic_write(args.out.with_suffix(".md")) as handle:
        handle.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
