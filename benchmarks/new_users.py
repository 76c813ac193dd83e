"""New users with 1-5 known interactions, scored without retraining.

    python benchmarks/new_users.py --run benchmarks/.work/ml-100k-random/runs/gated-2020

ml-100k has no user with fewer than 20 ratings, so new users are simulated: each test user is shown
to the model as a stranger who interacted with only ``n`` of their training items (chosen at random,
n = 1..5), through ``Recommender.recommend_for_history`` (the fold-in kgrec uses for ``recommend
--history``). Their test items are the targets; their other training and validation items are never
ranked (they are known not to be test items). Baselines on the same histories: EASE alone (its
fold-in is exact) and popularity. For a run trained with user-attribute context (``--context
age,gender,occupation,zip_code``), also n = 0: the new user is known only by their stated attributes
(``recommend --new-user --context age=25 ...``), and the fold-in with attributes added.
Writes benchmarks/results/new_users_<graph>[-<suffix>].{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
from build_graph import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 2, 3, 5])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--suffix", default="", help="Appended to the result file names.")
    args = parser.parse_args()

    import torch

    from kgrec import Recommender
    from kgrec.evaluate import evaluate_ranking

    torch.set_num_threads(args.threads)
    recommender = Recommender.load(args.run)
    model, graph = recommender.model, recommender.graph
    train, seen, test = (recommender.interactions(*parts) for parts in (("train",), ("train", "valid"), ("test",)))
    popularity = torch.from_numpy(np.asarray(train.sum(0)).ravel()).float()
    model.eval()
    with torch.no_grad():
        reps = model(recommender.prop_graph)
    rng = np.random.default_rng(args.seed)
    attributes = unknown = None
    if recommender.context is not None:
        # What `recommend --history` uses when nothing is stated: every field at its unknown value.
        unknown = torch.from_numpy(recommender.context.encode_values([{}])).expand(len(graph.users.ids), -1)
    if recommender.context is not None and recommender.context.field_offsets("user"):
        # Each user's own attributes, stated as a new user would state them (no time context).
        stated = recommender.context.user_rows(graph.user_table, list(graph.users.ids))
        attributes = torch.from_numpy(recommender.context.encode_values(stated))
    rows = []
    sizes = ([0] if attributes is not None else []) + list(args.sizes)
    for size in sizes:
        # One random history of `size` training items per user (users with enough of them).
        history = torch.zeros(train.shape)
        for user in range(train.shape[0]):
            items = train.indices[train.indptr[user] : train.indptr[user + 1]]
            if len(items) >= size:
                history[user, rng.choice(items, size=size, replace=False)] = 1.0
        systems = {}
        if size > 0:
            systems["kgrec (fold-in, recommend --history)"] = lambda users: model.score_history(
                reps, history[users], None if unknown is None else unknown[users]
            )
        if attributes is not None:
            name = "kgrec (attributes only, recommend --new-user)" if size == 0 else "kgrec (fold-in + attributes)"
            systems[name] = lambda users: model.score_history(reps, history[users], attributes[users])
        systems |= {
            "EASE alone (same penalty)": lambda users: model.ease(history[users]) if model.ease is not None else None,
            "popularity": lambda users: popularity.expand(len(users), -1),
        }
        for name, score in systems.items():
            if name.startswith("EASE") and (model.ease is None or size == 0):
                continue
            with torch.no_grad():
                result = evaluate_ranking(score, test, seen, ks=(10, 20))
            rows.append(
                {
                    "history": size,
                    "system": name,
                    **{k: result.metrics[k] for k in ("ndcg@20", "recall@20", "ndcg@10")},
                    "users": result.num_users,
                }
            )
            print(rows[-1], flush=True)
    info = machine()
    out = HERE / "results"
    stem = f"new_users_{graph.name}{'-' + args.suffix if args.suffix else ''}"
    (out / f"{stem}.json").write_text(json.dumps({"machine": info, "run": str(args.run), "rows": rows}, indent=2))
    lines = [
        f"# New users on {graph.name}: 1-5 known interactions, no retraining\n",
        f"Made by `python benchmarks/new_users.py --run {args.run}`; {info['cpu']}, {info['cores']} cores. Each test user is "
        "shown to the model with only n random training items; test items are the targets (full ranking; the "
        "user's other training and validation items are not ranked).\n",
        "| known interactions | system | NDCG@10 | NDCG@20 | Recall@20 | users |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['history']} | {r['system']} | {r['ndcg@10']:.4f} | {r['ndcg@20']:.4f} | {r['recall@20']:.4f} | {r['users']} |"
        for r in rows
    ]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
