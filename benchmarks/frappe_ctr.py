"""Frappe, the click-through protocol: AUC and log loss on observations against sampled negatives, kgrec beside RecBole's FM and DeepFM.

    python benchmarks/frappe_ctr.py --graph WORK/graph --runs WORK/ctx-* WORK/plain-* [--peers FM DeepFM]

The protocol the context-aware literature reports on Frappe (NFM, AFN, ...): every observation (user, app,
context) is a positive; each gets ``--negatives`` (2) negatives, apps drawn at random among those the user
did not use in that context, in the same context (seeded). Negatives take their positive's split, so the
split is kgrec's own (80/10/10 of observations per user, graph seed). AUC is global over the test rows;
log loss needs probabilities: RecBole's models output them (trained with log loss), kgrec's scores are
ranking scores, mapped to probabilities by Platt scaling (``sigmoid(a * score + b)``, fitted on the
validation rows) — said next to the figures. The count baselines score a row by how often the user used
the app (overall, and ``w`` times in each of the context's fields; ``popularity``: everyone's uses of it),
Platt-scaled the same way.

RecBole's FM and DeepFM read the same rows as atomic files (user, app, the seven context fields, label;
no item attributes), with RecBole's defaults, its labeled evaluation (AUC, LogLoss), early stopping on
validation AUC (10 epochs without gain) and at most ``--epochs`` (300, its default), in their own venv (``run.py``'s ``recbole_python``).

Writes ``benchmarks/results/frappe_ctr.{md,json}`` with the machine and its load.
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
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from scipy.stats import rankdata

HERE = Path(__file__).resolve().parent
from build_graph import machine
from frappe import Counts, group_runs, mean_std
from run import recbole_python

from kgrec.data.context import log_context_columns
from kgrec.graph import load_graph
from kgrec.inference import Recommender
from kgrec.io import atomic_write, write_json

WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0)


def labeled_rows(log: pd.DataFrame, items: np.ndarray, negatives: int, seed: int) -> pd.DataFrame:
    """The log's observations (label 1), each with ``negatives`` apps its user did not use in its context (label 0).

    A negative copies its positive's user, context and split; its app is drawn uniformly from ``items`` and
    redrawn while it is an observation of the log (the same user, app and context) or repeats a negative of
    the same row.
    """
    columns = log_context_columns(log)
    context = (
        pd.factorize(pd.MultiIndex.from_frame(log[columns].astype(str)))[0] if columns else np.zeros(len(log), np.int64)
    )
    user = pd.factorize(log["user_id"])[0]
    index = {item: j for j, item in enumerate(items)}
    item = log["item_id"].map(index).to_numpy()
    num_items, num_contexts = len(items), int(context.max()) + 1
    bases = (
        user.astype(np.int64) * num_contexts + context
    ) * num_items  # one key per (user, context); + item per observation
    observed = set((bases + item).tolist())
    rng = np.random.default_rng(seed)
    drawn = np.empty((len(log), negatives), np.int64)
    for row, base in enumerate(bases.tolist()):
        picked: list[int] = []
        while len(picked) < negatives:
            candidate = int(rng.integers(num_items))
            if base + candidate not in observed and candidate not in picked:
                picked.append(candidate)
        drawn[row] = picked
    keep = ["user_id", *columns, "split"]
    positives = log[[*keep, "item_id"]].assign(label=1.0)
    repeated = log[keep].loc[log.index.repeat(negatives)].reset_index(drop=True)
    negative = repeated.assign(item_id=np.asarray(items)[drawn.ravel()], label=0.0)
    return pd.concat([positives.reset_index(drop=True), negative], ignore_index=True)


def global_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC over all rows (ties count half), as RecBole's labeled AUC."""
    ranks = rankdata(scores)
    positive = labels > 0.5
    num_pos, num_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - num_pos * (num_pos + 1) / 2) / (num_pos * num_neg))


def log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))


def platt(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """``(a, b)`` of ``sigmoid(a * score + b)`` fitted by log loss on (validation) rows; scores standardised first."""
    center, scale = float(scores.mean()), float(scores.std()) or 1.0
    z = (scores - center) / scale

    def loss(params: np.ndarray) -> float:
        logits = params[0] * z + params[1]
        return float(-np.mean(labels * log_expit(logits) + (1 - labels) * log_expit(-logits)))

    a, b = minimize(loss, np.array([1.0, 0.0]), method="L-BFGS-B").x
    return float(a / scale), float(b - a * center / scale)


def measure(
    valid_scores: np.ndarray, valid_labels: np.ndarray, test_scores: np.ndarray, test_labels: np.ndarray
) -> dict:
    a, b = platt(valid_scores, valid_labels)
    return {
        "valid": {
            "auc": global_auc(valid_scores, valid_labels),
            "logloss": log_loss(expit(a * valid_scores + b), valid_labels),
        },
        "test": {
            "auc": global_auc(test_scores, test_labels),
            "logloss": log_loss(expit(a * test_scores + b), test_labels),
        },
        "platt": [a, b],
    }


def count_scores(
    counts: Counts,
    users: np.ndarray,
    items: np.ndarray,
    codes: dict[str, np.ndarray],
    fields: tuple[str, ...],
    weight: float,
) -> np.ndarray:
    """Per row: the user's uses of the app, plus ``weight`` times their uses of it in each field's value; overall use breaks ties."""
    scores = np.asarray(counts.user[users, items]).ravel() + counts.item[items] / (counts.item.max() + 1.0) * 1e-3
    for field in fields:
        scores = (
            scores
            + weight
            * np.asarray(counts.by_user_value[field][users * counts.sizes[field] + codes[field], items]).ravel()
        )
    return scores


def export_atomic(rows: pd.DataFrame, columns: list[str], directory: Path, name: str) -> None:
    """``name.{train,valid,test}.inter`` in RecBole's atomic format: user, app, context tokens, float label."""
    directory.mkdir(parents=True, exist_ok=True)
    header = ["user_id:token", "item_id:token", *(f"{c}:token" for c in columns), "label:float"]
    for split in ("train", "valid", "test"):
        part = rows[rows["split"] == split][["user_id", "item_id", *columns, "label"]].astype(str)
        # Field values hold no tabs; spaces inside a token would split it, so they become underscores.
        part = part.apply(lambda column: column.str.replace(r"\s+", "_", regex=True))
        with atomic_write(directory / f"{name}.{split}.inter") as handle:
            handle.write("\t".join(header) + "\n")
            part.to_csv(handle, sep="\t", header=False, index=False)


def run_peer(
    python: Path,
    model: str,
    data_dir: Path,
    name: str,
    columns: list[str],
    seed: int,
    epochs: int,
    work: Path,
    timeout: int,
) -> dict:
    overrides = {
        "load_col": {"inter": ["user_id", "item_id", *columns, "label"]},
        "LABEL_FIELD": "label",
        "RATING_FIELD": None,
        "TIME_FIELD": None,
        "eval_args": {"group_by": None, "order": "RO", "mode": "labeled"},
        "metrics": ["AUC", "LogLoss"],
        "valid_metric": "AUC",
        "epochs": epochs,
    }
    work.mkdir(parents=True, exist_ok=True)
    command = [
        str(python),
        str(HERE / "recbole_runner.py"),
        model,
        str(data_dir.resolve()),
        name,
        str(seed),
        str(work.resolve()),
        "1",
        json.dumps(overrides),
    ]
    started = time.perf_counter()
    try:
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
        }  # RecBole reloads its checkpoints
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, cwd=work
        )  # its log/ folders go there
    except subprocess.TimeoutExpired:
        return {"model": model, "error": f"stopped after {timeout} s"}
    if done.returncode:
        return {
            "model": model,
            "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}",
        }
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", type=Path, required=True, help="The Frappe graph from kgrec build-graph.")
    parser.add_argument("--runs", type=Path, nargs="*", default=[], help="kgrec run folders on that graph.")
    parser.add_argument("--peers", nargs="*", default=["FM", "DeepFM"], help="RecBole context-aware models to run.")
    parser.add_argument("--negatives", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2020, help="Seed of the negative sampling and of the peers.")
    parser.add_argument(
        "--epochs", type=int, default=300, help="At most this many epochs per peer (RecBole's default)."
    )
    parser.add_argument("--timeout", type=int, default=3600, help="Seconds per peer run.")
    parser.add_argument(
        "--reuse-peers",
        action="store_true",
        help="Keep the peers of the last report (same rows: negatives and seed) instead of running --peers again.",
    )
    parser.add_argument("--note", default="", help="A paragraph of findings appended to the report.")
    args = parser.parse_args()
    out = HERE / "results" / "frappe_ctr"

    load = os.getloadavg()[0]
    graph = load_graph(args.graph)
    log = graph.split.interactions.reset_index(drop=True)
    columns = log_context_columns(log)
    started = time.perf_counter()
    rows = labeled_rows(log, np.asarray(graph.items.to_ids(np.arange(len(graph.items)))), args.negatives, args.seed)
    print(f"{len(rows):,} labeled rows ({len(log):,} positives) in {time.perf_counter() - started:.0f} s", flush=True)
    parts = {split: rows[rows["split"] == split].reset_index(drop=True) for split in ("valid", "test")}
    labels = {split: part["label"].to_numpy() for split, part in parts.items()}

    # Count baselines, on the training split's observations (as in frappe.py).
    users = graph.users.to_index(log["user_id"].to_numpy())
    items = graph.items.to_index(log["item_id"].to_numpy())
    factorized = {c: pd.factorize(log[c].astype(str)) for c in columns}
    counts = Counts(
        log, users, items, {c: codes for c, (codes, _) in factorized.items()}, (len(graph.users), len(graph.items))
    )

    def row_codes(part: pd.DataFrame) -> dict[str, np.ndarray]:
        return {c: pd.Index(values).get_indexer(part[c].astype(str)) for c, (_, values) in factorized.items()}

    popularity = {s: counts.item[graph.items.to_index(p["item_id"].to_numpy())].astype(float) for s, p in parts.items()}
    baselines = [
        {
            "system": "popularity",
            "weight": 0.0,
            **measure(popularity["valid"], labels["valid"], popularity["test"], labels["test"]),
        }
    ]
    for name, fields in (
        ("user", ()),
        ("user + daytime, weekday", ("daytime", "weekday")),
        ("user + all context fields", tuple(columns)),
    ):
        scored = []
        for weight in WEIGHTS if fields else (0.0,):
            score = {
                s: count_scores(
                    counts,
                    graph.users.to_index(p["user_id"].to_numpy()),
                    graph.items.to_index(p["item_id"].to_numpy()),
                    row_codes(p),
                    fields,
                    weight,
                )
                for s, p in parts.items()
            }
            scored.append((weight, measure(score["valid"], labels["valid"], score["test"], labels["test"])))
        weight, best = max(scored, key=lambda pair: pair[1]["valid"]["auc"])
        baselines.append({"system": name, "weight": weight, **best})
        print(
            f"{name}: w={weight:g} test AUC {best['test']['auc']:.4f}, log loss {best['test']['logloss']:.4f}",
            flush=True,
        )

    runs = []
    for run in args.runs:
        recommender = Recommender.load(run)
        started = time.perf_counter()
        score = {s: recommender.score_log(p) for s, p in parts.items()}
        runs.append(
            {
                "run": run.name,
                "seconds": time.perf_counter() - started,
                "task": recommender.config.eval.task,
                **measure(score["valid"], labels["valid"], score["test"], labels["test"]),
            }
        )
        print(
            f"{run.name}: test AUC {runs[-1]['test']['auc']:.4f}, log loss {runs[-1]['test']['logloss']:.4f}",
            flush=True,
        )

    peers = []
    if args.reuse_peers:
        last = json.loads(out.with_suffix(".json").read_text())
        if (last["negatives"], last["seed"], last["rows"]) != (
            args.negatives,
            args.seed,
            {s: int((rows["split"] == s).sum()) for s in last["rows"]},
        ):
            sys.exit(f"{out}.json was made on other rows (negatives, seed or split): run the peers again")
        peers = last["peers"]
    elif args.peers:
        python = recbole_python(HERE / ".work" / "recbole-venv")
        data_dir = HERE / ".work" / "frappe-ctr"
        export_atomic(rows, columns, data_dir / "frappe-ctr", "frappe-ctr")
        for model in args.peers:
            result = run_peer(
                python,
                model,
                data_dir,
                "frappe-ctr",
                columns,
                args.seed,
                args.epochs,
                data_dir / f"work-{model}",
                args.timeout,
            )
            peers.append(result)
            print(f"{model}: {result.get('test', result.get('error'))}", flush=True)

    result = {
        "graph": str(args.graph),
        "rows": {s: int((rows["split"] == s).sum()) for s in ("train", "valid", "test")},
        "negatives": args.negatives,
        "seed": args.seed,
        "epochs_cap": args.epochs,
        "baselines": baselines,
        "runs": runs,
        "peers": peers,
        "machine": machine(),
        "load_before": load,
        "note": args.note,
    }
    write_json(out.with_suffix(".json"), result)
    with atomic_write(out.with_suffix(".md")) as handle:
        handle.write(report(result))
    print(f"wrote {out}.md")


def report(result: dict) -> str:
    rows = result["rows"]
    lines = [
        "# Frappe, the click-through protocol: AUC and log loss",
        "",
        f"Made by `python benchmarks/frappe_ctr.py` on `{result['graph']}`: every observation a positive, "
        f"{result['negatives']} sampled negatives each (apps the user did not use in that context, same context, seed "
        f"{result['seed']}), split with their positive (kgrec's random 80/10/10 of observations per user): "
        f"{rows['train']:,} / {rows['valid']:,} / {rows['test']:,} labeled rows. AUC global over test rows. kgrec and the "
        "count baselines are Platt-scaled on validation rows for log loss (their scores are ranking scores); RecBole's "
        f"models output probabilities (at most {result['epochs_cap']} epochs, early stopping on validation AUC). Machine: "
        f"{result['machine']['cpu']}, {result['machine']['cores']} cores, torch {result['machine']['torch']}; 1-minute load "
        f"average before the run {result['load_before']:.2f}.",
        "",
        "| system | seeds | test AUC | test log loss | notes |",
        "|---|---|---|---|---|",
    ]
    for row in result["baselines"]:
        label = row["system"] + (f" (w = {row['weight']:g})" if row["weight"] else "")
        lines.append(
            f"| {label} | — | {row['test']['auc']:.4f} | {row['test']['logloss']:.4f} | counts, Platt-scaled |"
        )
    for peer in result["peers"]:
        if "error" in peer:
            lines.append(f"| RecBole {peer['model']} | 1 | — | — | {peer['error']} |")
            continue
        note = f"{peer['epochs']} epochs (best {peer['best_epoch']}), {peer['seconds_per_epoch']:.0f} s/epoch, {peer['seconds'] / 60:.1f} min"
        lines.append(
            f"| RecBole {peer['model']} | 1 | {peer['test']['auc']:.4f} | {peer['test']['logloss']:.4f} | {note} |"
        )
    for name, group in group_runs(result["runs"]).items():
        cells = [mean_std([run["test"][key] for run in group]) for key in ("auc", "logloss")]
        lines.append(
            f"| kgrec {name} | {len(group)} | {cells[0]} | {cells[1]} | trained for eval.task {group[0]['task']}, Platt-scaled |"
        )
    if result.get("note"):
        lines += ["", result["note"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
