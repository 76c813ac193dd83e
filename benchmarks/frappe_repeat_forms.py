"""Frappe, in context: which functional form of the repeat-use term ranks best (an experiment, not a kgrec run).

    kgrec build-graph --dataset frappe --out WORK/graph
    python benchmarks/frappe_repeat_forms.py --graph WORK/graph loo-log loo-mixn val-log
    python benchmarks/frappe_repeat_forms.py --graph WORK/graph --fields '' loo-mixn         # user and item counts only
    python benchmarks/frappe_repeat_forms.py --graph WORK/graph --fields daytime loo-mixn  # one context field

Each form scores an item for a (user, context) query from the training split's counts of
:class:`kgrec.models.RepeatUse` (user, item, user x value and value counts of each of the seven fields):

- ``log``: ``sum_k w_k log(1 + n_k)`` (``RepeatUse`` before commit 89a4faa);
- ``raw``: ``sum_k w_k n_k``;
- ``mix``: ``log(sum_k exp(w_k) n_k)``, a mixture of counts (the count baselines of ``frappe.py`` are of this form);
- ``mixn``: ``log(sum_k exp(w_k) n_k / N_k)``, a mixture of each count's distribution over items (``RepeatUse`` since 89a4faa; ``N_k`` the
  count's total for the query: interpolated smoothing, as in n-gram language models).

``loo``: weights fitted on the training observations, each left out of its own counts (softmax over all items,
Adam, 2 epochs); ``val``: fitted on the validation queries (4 epochs). Prints validation and test Recall@10 and NDCG@10
beside the best count baseline (user + 4 x (daytime + weekday), those of the two fields the term reads), on the split's queries
as ``frappe.py`` forms them. ``--fields`` restricts the term to some context fields: the per-field ablation.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from kgrec.data.context import log_context_columns
from kgrec.evaluate import evaluate_ranking
from kgrec.evaluate.ranking import interaction_matrix
from kgrec.graph import load_graph
from kgrec.models.repeat import RepeatUse


def combine(raw: torch.Tensor, w: torch.Tensor, kind: str, plain: bool) -> torch.Tensor:
    """``(B, I)`` scores from ``(B, K, I)`` raw counts."""
    if plain:
        raw, w = raw[:, :2], w[:2]
    if kind == "log":
        return torch.einsum("bki,k->bi", torch.log1p(raw), w)
    if kind == "raw":
        return torch.einsum("bki,k->bi", raw, w)
    if kind == "mixn":
        raw = raw / raw.sum(2, keepdim=True).clamp(min=1)
    return torch.log(torch.einsum("bki,k->bi", raw, torch.exp(w)) + 1e-6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", required=True)
    parser.add_argument(
        "forms", nargs="*", default=["loo-log", "loo-mixn"], help="HOW-KIND: loo|val - log|raw|mix|mixn"
    )
    parser.add_argument(
        "--fields",
        default=None,
        help="Comma-separated context fields the term reads (default: all; '' for "
        "none, the user's and the item's counts only).",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    graph = load_graph(args.graph)
    log = graph.split.interactions
    columns = all_columns = log_context_columns(log)
    if args.fields is not None:
        selected = [field for field in args.fields.split(",") if field]
        if unknown := sorted(set(selected) - set(columns)):
            parser.error(f"--fields: {unknown[0]!r} is not a context column of the log ({', '.join(columns)})")
        # With no field the term's first two counts are used alone (the counts are built over all fields regardless).
        columns, plain = (selected or columns), not selected
    else:
        plain = False
    num_users, num_items = len(graph.users), len(graph.items)
    users, items = graph.users.to_index(log["user_id"].to_numpy()), graph.items.to_index(log["item_id"].to_numpy())
    codes = np.column_stack([pd.factorize(log[c].astype(str))[0] for c in columns])
    # Queries are (user, every context field) whichever fields the term reads: the task stays the same.
    query_codes = np.column_stack([pd.factorize(log[c].astype(str))[0] for c in all_columns])
    sizes = codes.max(0) + 1
    tokens = codes + np.concatenate([[1], 1 + np.cumsum(sizes)[:-1]])  # global tokens, 0 unknown (never used here)
    train = (log["split"] == "train").to_numpy()
    repeat = RepeatUse(len(columns)).set_counts(
        users[train],
        items[train],
        tokens[train],
        num_users,
        num_items,
        int(1 + sizes.sum()),
        unknown=np.zeros(len(columns), np.int64),
    )
    counts = repeat._counts  # the experiment reads the term's count matrices directly
    assert counts is not None

    def queries(split: str):
        rows = (log["split"] == split).to_numpy()
        keys, first, query = np.unique(
            np.column_stack([users[rows], query_codes[rows]]), axis=0, return_index=True, return_inverse=True
        )
        truth = interaction_matrix(query.ravel(), items[rows], len(keys), num_items)
        return keys[:, 0], tokens[rows][first], truth, query.ravel(), rows

    tasks = {split: queries(split) for split in ("valid", "test")}

    def measure(scorer, split: str) -> str:
        query_users, query_tokens, truth, _, _ = tasks[split]
        score = lambda r: scorer(query_users[r.numpy()], query_tokens[r.numpy()])  # noqa: E731
        m = evaluate_ranking(
            score, truth, sp.csr_matrix(truth.shape, dtype=np.bool_), ks=(10,), batch_size=1024, topk_only=True
        ).metrics
        return f"{m['recall@10']:.4f} / {m['ndcg@10']:.4f}"

    two_fields = [columns.index(f) for f in ("daytime", "weekday") if f in columns and not plain]

    def baseline(query_users, query_tokens):
        raw = counts.dense(query_users, query_tokens)
        tie = raw[:, 1] / (raw[:, 1].max() + 1) * 1e-3
        return raw[:, 0] + tie + sum(4 * raw[:, 2 + j] for j in two_fields)

    print(f"count baseline: valid {measure(baseline, 'valid')}, test {measure(baseline, 'test')}", flush=True)
    for form in args.forms:
        how, kind = form.split("-")
        weight = torch.full((repeat.num_features,), -3.0 if kind.startswith("mix") else 0.0)
        weight[0] = 0.0 if kind.startswith("mix") else 1.0
        weight.requires_grad_(True)
        optimizer = torch.optim.Adam([weight], lr=0.05)
        generator, started = np.random.default_rng(0), time.time()
        if how == "loo":
            rows_users, rows_items, rows_tokens, epochs = users[train], items[train], tokens[train], 2
        else:
            query_users, query_tokens, _, query, rows = tasks["valid"]
            rows_users, rows_items, rows_tokens, epochs = query_users[query], items[rows], query_tokens[query], 4
        for _ in range(epochs):
            order = generator.permutation(len(rows_users))
            for start in range(0, len(order), 512):
                batch = order[start : start + 512]
                raw = counts.dense(rows_users[batch], rows_tokens[batch])
                if how == "loo":
                    raw[torch.arange(len(batch)), :, torch.from_numpy(rows_items[batch])] -= 1
                    raw.clamp_(min=0)
                loss = torch.nn.functional.cross_entropy(
                    combine(raw, weight, kind, plain), torch.from_numpy(rows_items[batch])
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        fitted = weight.detach()
        scorer = lambda u, t: combine(counts.dense(u, t), fitted, kind, plain)  # noqa: E731
        print(
            f"{form}: {time.time() - started:.0f} s, weights {[round(v, 2) for v in fitted.tolist()]}, "
            f"valid {measure(scorer, 'valid')}, test {measure(scorer, 'test')}",
            flush=True,
        )


if __name__ == "__main__":
    main()
