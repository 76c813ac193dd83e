"""kgrec against RecBole 1.2.1's peers on one saved split, over several seeds; tables and plots.

    python benchmarks/run.py --dataset ml-100k                      # everything, 3 seeds
    python benchmarks/run.py --dataset ml-100k --only peers --peers KGAT KGIN --seeds 2020
    python benchmarks/run.py --dataset ml-100k --split cold-items
    python benchmarks/run.py --dataset ml-100k --report             # tables and plots from what has run

Steps, each resumable (a result already on disk is kept, so a long benchmark can be run in pieces
and in parallel, e.g. the peers in one shell and kgrec in another):

1. ``kgrec build-graph`` with the dataset's preset and the chosen split (split seed 2020 whatever the
   training seeds), under ``benchmarks/.work/<dataset>-<split>/graph``.
2. kgrec: every fusion and the ablations, one fresh ``kgrec train`` process per variant and seed.
3. Peers: the split exported as RecBole benchmark files (``kgrec export``), RecBole 1.2.1 in its own
   virtual environment (``requirements-recbole.txt``, created on first use), default hyper-parameters,
   full ranking, valid NDCG@10 early stopping with patience 10. A peer that fails or times out is
   recorded with the reason and shown in the table.
   On ``--split cold-items`` the collaborative peers cannot score items without interactions; the
   baselines are popularity and a text nearest-neighbour model, and every system ranks only the
   held-out items.
4. Report: ``benchmarks/results/<dataset>[-cold-items].{md,csv}`` (mean ± std over seeds) and two
   PNGs (NDCG@20/Recall@20 bars; training time vs NDCG@20), each naming machine, seeds, commit
   and the split's checksum. Raw per-run JSON stays under ``benchmarks/results/raw/``.

Each process is limited to ``--threads`` threads (default 1) so two can share a 2-core machine
without disturbing each other's timings; the table records it.
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
ROOT = HERE.parent
from build_graph import machine

# name -> (--set overrides); every variant is `kgrec train` with the dataset's preset plus these.
VARIANTS: dict[str, dict[str, object]] = {
    "gated": {"model.fusion": "gated"},
    "gated-kg-neighbours": {"model.fusion": "gated", "model.kg_neighbours": "on", "model.kg_neighbours_rule": "one-se"},
    "gated-kg-neighbours-best": {
        "model.fusion": "gated",
        "model.kg_neighbours": "on",
        "model.kg_neighbours_rule": "best",
    },
    "concat": {"model.fusion": "concat"},
    "sum": {"model.fusion": "sum"},
    "attention": {"model.fusion": "attention"},
    "no-kg": {"model.fusion": "gated", "model.use_kg": False},
    "no-text": {"model.fusion": "gated", "model.use_text": False},
    "no-propagation": {"model.fusion": "gated", "model.num_layers": 0},
    # KG entities as nodes of the propagation graph (issue 14), with text and without.
    "gated-knowledge": {"model.fusion": "gated", "model.propagation": "knowledge"},
    "no-text-knowledge": {"model.fusion": "gated", "model.use_text": False, "model.propagation": "knowledge"},
    # The relation-vector ablation: the same graph, every KG message a plain neighbour mean.
    "gated-knowledge-mean": {"model.fusion": "gated", "model.propagation": "knowledge-mean"},
    "no-text-knowledge-mean": {"model.fusion": "gated", "model.use_text": False, "model.propagation": "knowledge-mean"},
    # The learned KG model alone (no text, no EASE to hand the items to): what the relation vectors do to it.
    "kg-model-knowledge": {
        "model.fusion": "gated",
        "model.use_text": False,
        "model.linear": "none",
        "model.propagation": "knowledge",
    },
    "kg-model-knowledge-mean": {
        "model.fusion": "gated",
        "model.use_text": False,
        "model.linear": "none",
        "model.propagation": "knowledge-mean",
    },
    # Not the default (yet): sampled softmax over 16 negatives instead of BPR, measured beside it.
    "gated-softmax": {"model.fusion": "gated", "train.loss": "softmax", "train.negatives": 16},
    # The best of the first `kgrec tune` study on ml-100k (benchmarks/results/tune_ml-100k/, validation NDCG@10 0.2711).
    "tuned": {
        "model.fusion": "concat",
        "model.dim": 64,
        "model.num_layers": 2,
        "train.lr": 0.0449,
        "train.negatives": 4,
        "train.loss": "bpr",
        "train.reg": 0.000906,
        "train.weight_decay": 1.57e-8,
        "model.ease_l2": "[104]",
        "model.use_kg": True,
    },
    # The mini-batch path: each step propagates over the batch's sampled neighbourhood (benchmarks/scale.py).
    "gated-sampled": {
        "model.fusion": "gated",
        "train.batching": "sampled",
        "train.batch_size": 8192,
        "train.fanout": "[10,5,5]",
    },
}
DEFAULT_VARIANTS = ("gated", "concat", "sum", "attention", "no-kg", "no-text", "no-propagation", "gated-knowledge")
COLD_VARIANTS = ("gated", "no-kg", "no-text", "gated-knowledge", "no-text-knowledge")
PEERS = ("EASE", "BPR", "LightGCN", "CKE", "KGAT", "KGIN", "KGCN")
KNOWLEDGE_PEERS = {"CKE", "KGAT", "KGIN", "KGCN"}
# Why a peer's environment differs from plain RecBole 1.2.1, or why it cannot run here; shown under the table.
PEER_NOTES = {
    "KGIN": "RecBole's KGIN imports torch_scatter.scatter_mean; torch-scatter has no wheel for torch 2.13, so "
    "benchmarks/shims/torch_scatter provides the same function on torch's index_add_.",
    "KGAT": "RecBole's KGAT needs DGL; DGL's newest wheel (2.1.0) predates torch 2.13, so run.py installs it without "
    "its dependencies (with torchdata 0.7.1 and pydantic), skips its optional graphbolt library on import and "
    "rewrites RecBole's two DGL 1.x calls (prepare_dgl).",
}
COLD_BASELINES = ("popularity", "text-knn", "kg-knn")
SEEDS = (2020, 2021, 2022)


def thread_env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "kgrec"], cwd=ROOT, capture_output=True, text=True).stdout
    return done.stdout.strip() + ("+dirty" if dirty.strip() else "") if done.returncode == 0 else "unknown"


def write_record(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(path)


def build(dataset: str, split: str, work: Path, settings: tuple[str, ...] = ()) -> Path:
    """The graph and its saved split, built once per dataset and split kind (``settings``: extra ``--set K=V``)."""
    graph = work / "graph"
    if not (graph / "manifest.json").is_file():
        import resource

        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "kgrec",
                "build-graph",
                "--dataset",
                dataset,
                "--split",
                split,
                "--seed",
                "2020",
                "--out",
                str(graph),
                *(arg for setting in settings for arg in ("--set", setting)),
            ],
            check=True,
        )
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        write_record(work / "build.json", {"seconds": time.perf_counter() - started, "peak_rss_mib": peak})
    return graph


def train_command(graph: Path, config: str, out: Path, settings: dict) -> list[str]:
    """One ``kgrec train`` process: the preset or config file, quiet, each setting as ``--set KEY=VALUE``."""
    command = [
        sys.executable,
        "-m",
        "kgrec",
        "train",
        "--graph",
        str(graph),
        "--config",
        config,
        "--out",
        str(out),
        "--quiet",
    ]
    return command + [
        arg
        for key, value in settings.items()
        for arg in ("--set", f"{key}={json.dumps(value) if isinstance(value, bool) else value}")
    ]


def split_checksum(graph: Path) -> str:
    """sha256 of the saved split (train/valid/test interactions), as recorded in the graph's manifest."""
    return json.loads((graph / "manifest.json").read_text())["files"]["interactions.parquet"][:16]


def run_kgrec(graph: Path, variant: str, seed: int, args: argparse.Namespace, raw: Path) -> None:
    """One fresh ``kgrec train`` process; its run.json and metrics.json become the raw record."""
    out = raw / f"kgrec-{variant}-{seed}.json"
    if out.is_file():
        return
    run_dir = graph.parent / "runs" / f"{variant}-{seed}"
    settings = {**VARIANTS[variant], "train.seed": seed, "train.device": args.device}
    if args.split == "cold-items":
        settings["eval.candidates"] = "unseen"  # select on validation the way the task is measured
        # Items without interactions are placed by EASE's KG and text rows alone, and a ridge penalty far above the
        # warm optimum suits that (the fit nears the side rows' item similarities): a wider grid, still chosen on validation.
        settings["model.ease_l2"] = "[500,5000,100000]"
        settings["model.ease_text_weight"] = "[0,3,12,50]"
    command = train_command(graph, args.dataset, run_dir, settings)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=thread_env(args.threads))
    wall = time.perf_counter() - started
    record: dict = {
        "system": f"kgrec {variant}",
        "kind": "kgrec",
        "seed": seed,
        "threads": args.threads,
        "device": args.device,
        "commit": commit(),
    }
    if done.returncode != 0:
        record["error"] = (done.stderr.strip().splitlines() or ["failed"])[-1][:500]
    else:
        if args.split == "cold-items":
            subprocess.run(
                [sys.executable, "-m", "kgrec", "evaluate", "--run", str(run_dir), "--candidates", "unseen"],
                check=True,
                capture_output=True,
                env=thread_env(args.threads),
            )
        _keep_per_user(
            run_dir,
            "test_unseen" if args.split == "cold-items" else "test",
            raw / "per_user" / f"kgrec-{variant}-{seed}.parquet",
        )
        run = json.loads((run_dir / "run.json").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
        timings = run.get("timings", {})
        record.update(
            valid=metrics.get("valid", {}),
            test=metrics.get("test_unseen" if args.split == "cold-items" else "test", {}),
            test_all_items=metrics.get("test", {}),
            kge=metrics.get("kge", {}),
            wall_seconds=wall,
            seconds=timings.get("train_seconds"),
            train_seconds_to_best=timings.get("train_seconds_to_best"),
            side_seconds=timings.get("kge_seconds", 0.0) + timings.get("text_seconds", 0.0),
            seconds_per_epoch=timings.get("seconds_per_epoch"),
            eval_test_seconds=timings.get("eval_test_seconds"),
            peak_rss_mib=timings.get("peak_rss_mib"),
            peak_cuda_mib=timings.get("peak_cuda_mib"),
            best_epoch=run.get("best_epoch"),
            epochs=run.get("epochs_run"),
            blend=run.get("blend"),
        )
    write_record(out, record)
    print(
        record["system"],
        seed,
        record.get("error") or {k: round(v, 4) for k, v in record["test"].items() if k in ("ndcg@20", "recall@20")},
        flush=True,
    )


PER_USER_COLUMNS = ("ndcg@20", "recall@20")
# RecBole's EASE default penalty: kgrec's EASE at it reproduces RecBole EASE's test metrics on the shared split
# (ml-100k: NDCG@20 0.3365 both), so its per-user values stand in for RecBole's, which RecBole does not write.
EASE_STAND_IN_L2 = 250.0


def _keep_per_user(run_dir: Path, evaluation: str, out: Path) -> None:
    """A slim copy (user, NDCG@20, Recall@20) of a run's per-user test metrics, for the p-value column."""
    table = pd.read_parquet(run_dir / "per_user.parquet")
    table = (
        table[table["evaluation"] == evaluation].groupby("user", sort=True)[list(PER_USER_COLUMNS)].mean().reset_index()
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out.with_suffix(".tmp"), index=False)
    out.with_suffix(".tmp").replace(out)


def ease_stand_in(graph: Path, dataset: str, raw: Path, threads: int) -> None:
    """kgrec's EASE at RecBole's penalty on the same graph (deterministic: one fit), its per-user test metrics kept."""
    out = raw / "per_user" / "kgrec-ease-stand-in.parquet"
    if out.is_file():
        return
    folder = graph.parent / "ease-stand-in"
    subprocess.run(
        [
            sys.executable,
            str(HERE / "linear_kg.py"),
            "--graph",
            str(graph),
            "--l2",
            str(EASE_STAND_IN_L2),
            "--kg-weight",
            "0",
            "--label",
            f"{dataset}-ease-stand-in",
            "--per-user",
            str(folder),
        ],
        check=True,
        env=thread_env(threads),
    )
    _keep_per_user(folder, "test", out)


def significance(table: pd.DataFrame, raw: Path, metric: str = "ndcg@20") -> pd.DataFrame:
    """A ``p vs EASE`` column: paired t-test over users of each kgrec row (users' values averaged over its seeds)
    against kgrec's EASE stand-in, where every seed's per-user file exists."""
    from kgrec.evaluate.significance import paired_comparison

    base_file = raw / "per_user" / "kgrec-ease-stand-in.parquet"
    table["p vs EASE"] = np.nan
    if not base_file.is_file():
        return table
    base = pd.read_parquet(base_file).set_index("user")[metric]
    for index, row in table.iterrows():
        if row["kind"] != "kgrec" or not str(row["seeds"]).strip():
            continue
        name = row["system"].removeprefix("kgrec ")
        files = [raw / "per_user" / f"kgrec-{name}-{seed}.parquet" for seed in str(row["seeds"]).split()]
        if not all(f.is_file() for f in files):
            continue
        ours = pd.concat([pd.read_parquet(f).set_index("user")[metric] for f in files], axis=1).mean(axis=1)
        if not ours.index.sort_values().equals(base.index.sort_values()):
            continue  # other users (another split): no paired test
        table.loc[index, "p vs EASE"] = paired_comparison(base.sort_index().to_numpy(), ours.sort_index().to_numpy())[
            "t_p"
        ]
    return table


def _p(value: float) -> str:
    return "—" if pd.isna(value) else ("< 1e-4" if value < 1e-4 else f"{value:.4f}")


_SIDE_COST = r"""
import json, resource, sys, time
import torch
import kgrec
from kgrec.config import load_config
from kgrec.embed import encode_item_texts, train_kg_embeddings
graph = kgrec.load_graph(sys.argv[1])
config = load_config(sys.argv[2])
started = time.perf_counter()
train_kg_embeddings(graph, config.kge, None)
kge = time.perf_counter() - started
started = time.perf_counter()
encode_item_texts(graph.catalog, config.text, None)
text = time.perf_counter() - started
print(json.dumps({"kge_seconds": kge, "text_seconds": text, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure_side_cost(graph: Path, args: argparse.Namespace, raw: Path) -> None:
    """PyKEEN + text-encoder time without any cache, once per graph: what a first ``kgrec train`` adds.

    The variant runs share the graph's embedding cache, so their own timings leave this out.
    """
    out = raw / "side" / "cost.json"
    if out.is_file():
        return
    done = subprocess.run(
        [sys.executable, "-c", _SIDE_COST, str(graph), args.dataset],
        capture_output=True,
        text=True,
        env=thread_env(args.threads),
        check=True,
    )
    write_record(out, {**json.loads(done.stdout.strip().splitlines()[-1]), "threads": args.threads, "commit": commit()})


def recbole_python(venv: Path) -> Path:
    """The RecBole venv's python, created on first use (the CPU torch first, as for kgrec)."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0"], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(HERE / "requirements-recbole.txt")], check=True
        )
    return python


# RecBole's KGAT needs DGL, whose newest wheel (2.1.0) predates torch 2.13: installed without its
# dependencies, its optional graphbolt library (built per torch version) is skipped on import, and
# RecBole's two calls that DGL 2.x renamed are rewritten. Applied once, to the benchmark venv only.
DGL_PACKAGES = ("dgl==2.1.0", "torchdata==0.7.1")
DGL_PATCHES = {
    "dgl/graphbolt/__init__.py": (
        (
            "\nload_graphbolt()\n",
            "\ntry:\n    load_graphbolt()\nexcept Exception:  # patched by kgrec's benchmarks/run.py\n    pass\n",
        ),
    ),
    "recbole/model/knowledge_aware_recommender/kgat.py": (
        ("preserve_nodes=True", "relabel_nodes=False"),
        ('.adjacency_matrix(transpose=False, scipy_fmt="coo")', '.adj_external(transpose=False, scipy_fmt="coo")'),
    ),
}


def prepare_dgl(python: Path) -> None:
    """DGL in the RecBole venv, patched so that RecBole's KGAT runs with torch 2.13 (idempotent)."""
    site = Path(
        subprocess.run(
            [str(python), "-c", "import site; print(site.getsitepackages()[0])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    if not (site / "dgl").is_dir():
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", *DGL_PACKAGES], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pydantic"], check=True)  # dgl imports it
    for relative, replacements in DGL_PATCHES.items():
        path = site / relative
        text = path.read_text()
        for old, new in replacements:
            text = text.replace(old, new)
        path.write_text(text)


def _partial_progress(path: Path) -> dict:
    """Epochs done, mean seconds per training epoch and per validation pass, best validation so far, of a stopped peer."""
    if not path.is_file():
        return {}
    passes = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    train = [p["seconds"] for p in passes if p["pass"] == "train"]
    valid = [p for p in passes if p["pass"] == "valid"]
    out: dict = {"epochs": len(train)}
    if train:
        out["seconds_per_epoch"] = sum(train) / len(train)
    if valid:
        out["valid_seconds_per_pass"] = sum(p["seconds"] for p in valid) / len(valid)
        out["best_valid_ndcg@10_so_far"] = max(p["score"] for p in valid)
    return out


def run_peer(graph: Path, model: str, seed: int, args: argparse.Namespace, raw: Path) -> None:
    """One RecBole model in its own venv on the exported split."""
    out = raw / f"recbole-{model}-{seed}.json"
    if out.is_file():
        return
    name = f"kgrec-{args.dataset}"  # RecBole replaces a dataset called ml-100k by its bundled copy
    data_dir = graph.parent / "recbole-data"
    if not (data_dir / name / f"{name}.train.inter").is_file():
        subprocess.run(
            [sys.executable, "-m", "kgrec", "export", "--graph", str(graph), "--out", str(data_dir), "--name", name],
            check=True,
        )
    python = recbole_python(HERE / ".work" / "recbole-venv")
    work = graph.parent / "recbole-runs" / f"{model}-{seed}"
    work.mkdir(parents=True, exist_ok=True)
    env = {**thread_env(args.threads), "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}  # RecBole reloads its own checkpoints
    if model == "KGIN":
        env["PYTHONPATH"] = str(HERE / "shims")
    if model == "KGAT":
        prepare_dgl(python)
    record: dict = {
        "system": f"RecBole {model}",
        "kind": "peer",
        "seed": seed,
        "threads": args.threads,
        "device": "cpu",
    }
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [
                str(python),
                str(HERE / "recbole_runner.py"),
                model,
                str(data_dir),
                name,
                str(seed),
                str(work),
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=work,
            timeout=args.timeout,
        )
        if done.returncode < 0:
            record["error"] = f"killed by signal {-done.returncode}"
        elif done.returncode != 0:
            record["error"] = (done.stderr.strip().splitlines() or ["failed"])[-1][:500]
        else:
            result = json.loads(done.stdout.strip().splitlines()[-1])
            record.update({k: v for k, v in result.items() if k not in ("model", "seed", "threads")})
    except subprocess.TimeoutExpired:
        record["error"] = f"did not finish within {args.timeout} s on this machine"
        record.update(_partial_progress(work / "progress.jsonl"))
    record["wall_seconds"] = time.perf_counter() - started
    write_record(out, record)
    print(
        record["system"],
        seed,
        record.get("error") or {k: round(v, 4) for k, v in record["test"].items() if k in ("ndcg@20", "recall@20")},
        flush=True,
    )


def _default_baselines(dataset: str) -> tuple[str, ...]:
    """The cold-items baselines that mean something on the dataset: no text nearest neighbours without text."""
    from kgrec.config import load_config

    return tuple(b for b in COLD_BASELINES if b != "text-knn" or load_config(dataset).model.use_text)


def run_cold_baseline(graph_dir: Path, baseline: str, seed: int, args: argparse.Namespace, raw: Path) -> None:
    """Popularity, text nearest neighbours and KG nearest neighbours (kgrec.baselines), ranked among the items unseen
    in training."""
    out = raw / f"baseline-{baseline}-{seed}.json"
    if out.is_file():
        return
    import resource

    import torch

    import kgrec
    from kgrec.baselines import make_baseline
    from kgrec.config import load_config
    from kgrec.evaluate import evaluate_ranking
    from kgrec.inference import split_matrix

    torch.set_num_threads(args.threads)
    graph = kgrec.load_graph(str(graph_dir))
    train, seen = split_matrix(graph, "train"), split_matrix(graph, "train", "valid")
    started = time.perf_counter()
    model = make_baseline(baseline, seed=seed, text=load_config(args.dataset).text, cache_dir=graph_dir / "cache").fit(
        graph, train
    )
    fit_seconds = time.perf_counter() - started
    results = {}
    for split, exclude in (("valid", train), ("test", seen)):
        results[split] = evaluate_ranking(
            model.score, split_matrix(graph, split), exclude, ks=(10, 20), candidates=exclude.getnnz(axis=0) == 0
        )
    record = {
        "system": baseline,
        "kind": "baseline",
        "seed": seed,
        "threads": args.threads,
        "device": "cpu",
        "valid": results["valid"].metrics,
        "test": results["test"].metrics,
        "seconds": fit_seconds,
        "train_seconds_to_best": fit_seconds,
        "eval_test_seconds": results["test"].seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    write_record(out, record)
    print(
        baseline, seed, {k: round(v, 4) for k, v in record["test"].items() if k in ("ndcg@20", "recall@20")}, flush=True
    )


# ---------------------------------------------------------------------------------------------- report

COLUMNS = ("ndcg@10", "ndcg@20", "recall@10", "recall@20", "mrr@20", "hit@20", "precision@20")


def summarise(raw: Path) -> pd.DataFrame:
    """One row per system: metrics as mean and std over seeds, timings as means, failures as text."""
    records = [json.loads(path.read_text()) for path in sorted(raw.glob("*.json"))]
    rows = []
    for system in dict.fromkeys(record["system"] for record in records):
        runs = [r for r in records if r["system"] == system]
        ok = [r for r in runs if "error" not in r]
        row: dict = {"system": system, "kind": runs[0]["kind"], "seeds": " ".join(str(r["seed"]) for r in ok)}
        row["commits"] = " ".join(sorted({str(r.get("commit", "?")) for r in runs}))
        if not ok:
            row["error"] = runs[0]["error"]
            for key in (
                "epochs",
                "seconds_per_epoch",
                "valid_seconds_per_pass",
                "best_valid_ndcg@10_so_far",
                "peak_rss_mib",
            ):
                if runs[0].get(key) is not None:
                    row[key] = runs[0][key]
            rows.append(row)
            continue
        for metric in COLUMNS:
            values = np.array([r["test"].get(metric, np.nan) for r in ok], dtype=float)
            row[metric], row[f"{metric} std"] = values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0
        row["valid ndcg@10"] = float(np.mean([r["valid"].get("ndcg@10", np.nan) for r in ok]))
        for key in (
            "train_seconds_to_best",
            "seconds",
            "seconds_per_epoch",
            "side_seconds",
            "eval_test_seconds",
            "peak_rss_mib",
        ):
            values = [r[key] for r in ok if r.get(key) is not None]
            row[key] = float(np.mean(values)) if values else np.nan
        row["threads"] = ok[0].get("threads")
        row["device"] = ok[0].get("device")
        rows.append(row)
    order = [f"RecBole {m}" for m in PEERS] + list(COLD_BASELINES) + [f"kgrec {v}" for v in VARIANTS]
    rank = {system: i for i, system in enumerate(order)}
    return (
        pd.DataFrame(rows)
        .sort_values("system", key=lambda column: column.map(lambda s: rank.get(s, len(rank))))
        .reset_index(drop=True)
    )


def _fmt(row: pd.Series, metric: str) -> str:
    if pd.isna(row.get(metric)):
        return "—"
    std = row.get(f"{metric} std", 0.0)
    return f"{row[metric]:.4f} ± {std:.4f}" if len(str(row["seeds"]).split()) > 1 else f"{row[metric]:.4f}"


def _verdict(table: pd.DataFrame, best_peer: pd.Series | None) -> list[str]:
    """The issue's targets, computed from the table: kgrec gated against the best peer and against peers' times."""
    ours = table[table.system == "kgrec gated"]
    if best_peer is None or ours.empty or pd.isna(ours.iloc[0].get("ndcg@20")):
        return []
    ours = ours.iloc[0]
    lines = ["", f"Against the best peer ({best_peer['system']}):"]
    for metric, label in (("ndcg@20", "NDCG@20"), ("recall@20", "Recall@20")):
        gain = ours[metric] / best_peer[metric] - 1
        spread = max(ours[f"{metric} std"], best_peer[f"{metric} std"])
        lines.append(
            f"- {label}: kgrec gated {ours[metric]:.4f} vs {best_peer[metric]:.4f}, {gain:+.1%} "
            f"(difference {ours[metric] - best_peer[metric]:+.4f}, largest seed std {spread:.4f})"
        )
    for peer in ("RecBole LightGCN", "RecBole KGAT"):
        row = table[(table.system == peer) & table["ndcg@20"].notna()] if "ndcg@20" in table else table.iloc[:0]
        if len(row):
            ratio = ours["train_seconds_to_best"] / row.iloc[0]["train_seconds_to_best"]
            side = ours["side_seconds"] if pd.notna(ours.get("side_seconds")) else 0.0
            total = (ours["train_seconds_to_best"] + side) / row.iloc[0]["train_seconds_to_best"]
            lines.append(
                f"- training to the best validation epoch: kgrec gated {ours['train_seconds_to_best']:.0f} s vs {peer}'s "
                f"{row.iloc[0]['train_seconds_to_best']:.0f} s ({ratio:.2f}x); with kgrec's PyKEEN and text embeddings "
                f"computed from scratch (+{side:.0f} s, cached per graph afterwards) {total:.2f}x"
            )
    return lines


def report(dataset: str, split: str, graph: Path, raw: Path, seeds: tuple[int, ...]) -> None:
    """Markdown and CSV tables plus the two plots, from whatever raw results exist."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = summarise(raw)
    if table.empty:
        raise SystemExit(f"no results under {raw}")
    side_file = raw / "side" / "cost.json"
    side = json.loads(side_file.read_text()) if side_file.is_file() else None
    if side is not None:
        for name, overrides in VARIANTS.items():
            cost = side["kge_seconds"] * overrides.get("model.use_kg", True) + side["text_seconds"] * overrides.get(
                "model.use_text", True
            )
            table.loc[table.system == f"kgrec {name}", "side_seconds"] = cost
    info = machine()
    # The given split's kgrec runs are reported by alibaba.py in <dataset>.md; this table sits beside it.
    stem = dataset if split == "random" else f"{dataset}-{split}"
    out = HERE / "results"
    out.mkdir(parents=True, exist_ok=True)
    cold = split == "cold-items"
    peers = table[(table.kind != "kgrec") & table["ndcg@20"].notna()] if "ndcg@20" in table else table.iloc[:0]
    best_peer = peers.loc[peers["ndcg@20"].idxmax()] if len(peers) else None
    table = significance(table, raw)
    if best_peer is not None:
        table["NDCG@20 / best peer"] = table["ndcg@20"] / best_peer["ndcg@20"]
        table["Recall@20 / best peer"] = table["recall@20"] / best_peer["recall@20"]
    header = (
        f"Machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}; "
        f"commit {commit()}; split `{split}` (seed 2020) sha256 {split_checksum(graph)}; seeds {' '.join(map(str, seeds))}; "
        f"{'ranking among the items unseen in training (kgrec also selects on validation that way: eval.candidates=unseen)' if cold else 'full ranking over all items'}, "
        f"training (and at test time validation) items masked.\n"
    )
    command = f"python benchmarks/run.py --dataset {dataset}" + ("" if split == "random" else f" --split {split}")
    lines = [
        f"# {dataset}{' — cold items' if cold else ''}: kgrec and its peers on one split\n",
        f"Made by `{command}` (resumable; see benchmarks/README.md). " + header,
        "| system | seeds | NDCG@10 | NDCG@20 | Recall@20 | MRR@20 | NDCG@20 / best peer | p vs EASE | train s to best | s / epoch | eval s (test) | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in table.iterrows():
        if pd.notna(row.get("error")) and row.get("error"):
            progress = ""
            if row.get("epochs") == 0:
                progress = "; no training epoch finished in that time (RecBole's data preparation included)"
            elif pd.notna(row.get("seconds_per_epoch")):
                progress = f"; {row['epochs']:.0f} epochs done, {row['seconds_per_epoch']:.0f} s per training epoch"
                if pd.notna(row.get("valid_seconds_per_pass")):
                    progress += f" + {row['valid_seconds_per_pass']:.0f} s per validation pass, best valid NDCG@10 so far {row['best_valid_ndcg@10_so_far']:.4f}"
            lines.append(
                f"| {row['system']} | — | {'stopped' if progress else 'not run'}: {row['error']}{progress} | | | | | | | | | |"
            )
            continue
        ratio = f"{row['NDCG@20 / best peer']:.3f}" if best_peer is not None else "—"
        side = f" + {row['side_seconds']:.0f}" if pd.notna(row.get("side_seconds")) and row.get("side_seconds") else ""
        lines.append(
            f"| {row['system']} | {len(str(row['seeds']).split())} | {_fmt(row, 'ndcg@10')} | {_fmt(row, 'ndcg@20')} | {_fmt(row, 'recall@20')} | {_fmt(row, 'mrr@20')} | "
            f"{ratio} | {_p(row['p vs EASE'])} | {row['train_seconds_to_best']:.0f}{side} | {row['seconds_per_epoch']:.2f} | {row['eval_test_seconds']:.2f} | "
            f"{row['peak_rss_mib']:.0f} |".replace("| nan |", "| — |")
        )
    if cold:
        lines.append(
            "| RecBole EASE, BPR, LightGCN, CKE, KGAT, KGIN, KGCN | — | not run: they score an item from its "
            "training interactions (ID embeddings or item-item weights), so items held out of training all get "
            "the same untrained score | | | | | | | | | |"
        )
    notes = [f"- {model}: {note}" for model, note in PEER_NOTES.items() if f"RecBole {model}" in set(table.system)]
    lines += [""] + notes if notes else []
    lines += _verdict(table, best_peer)
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    table.assign(
        machine=f"{info['cpu']}, {info['cores']} cores", commit=commit(), split_sha256=split_checksum(graph)
    ).to_csv(out / f"{stem}.csv", index=False, float_format="%.5f")

    ok = table[table["ndcg@20"].notna()] if "ndcg@20" in table else table.iloc[:0]
    if ok.empty:  # nothing finished (e.g. every peer stopped by the timeout): tables only
        return
    colors = ["tab:orange" if kind == "kgrec" else "tab:gray" for kind in ok.kind]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.35 * len(ok) + 1.8), sharey=True)
    for axis, metric in zip(axes, ("ndcg@20", "recall@20")):
        axis.barh(ok.system, ok[metric], xerr=ok[f"{metric} std"], color=colors)
        low, high = float(ok[metric].min()), float(ok[metric].max())
        axis.set_xlim(
            max(0.0, low - 0.25 * (high - low + 1e-3)), high + 0.05 * (high - low + 1e-3)
        )  # differences, not zero, matter here
        axis.set_xlabel(f"test {metric.replace('ndcg', 'NDCG').replace('recall', 'Recall')} (mean ± std over seeds)")
        axis.invert_yaxis()
        axis.grid(axis="x", alpha=0.3)
    fig.suptitle(
        f"{dataset}{' cold items' if cold else ''}: {info['cores']}-core CPU, commit {commit()}, split {split_checksum(graph)}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out / f"{stem}_quality.png", dpi=110)
    plt.close(fig)

    timed = ok[ok["train_seconds_to_best"].notna()]
    fig, axis = plt.subplots(figsize=(7, 4.5))
    for i, (_, row) in enumerate(timed.iterrows()):
        point = (max(row["train_seconds_to_best"], 0.1), row["ndcg@20"])
        axis.scatter(*point, color="tab:orange" if row.kind == "kgrec" else "tab:gray")
        # kgrec's variants sit close together: alternate their labels above and below
        offset = (3, 2) if row.kind != "kgrec" else (3, 6 if i % 2 else -9)
        axis.annotate(
            row["system"].replace("RecBole ", ""), point, fontsize=7, xytext=offset, textcoords="offset points"
        )
    axis.set_xscale("log")
    axis.set_xlabel(
        f"training seconds to the best validation epoch (log; {int(timed.threads.max() or 1)} thread per process)"
    )
    axis.set_ylabel("test NDCG@20")
    axis.grid(alpha=0.3)
    axis.set_title(f"{dataset}{' cold items' if cold else ''}: time vs quality ({info['cpu'][:40]})", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / f"{stem}_time.png", dpi=110)
    plt.close(fig)
    print("\n".join(lines))
    print(f"wrote {out / stem}.md, .csv, _quality.png, _time.png")


def read_experiment(path: Path, parser: argparse.ArgumentParser) -> dict:
    """An experiment file's settings, checked against the runner's flags (an unknown key is an error, not ignored)."""
    import yaml

    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SystemExit(f"{path}: cannot read the experiment: {error}") from None
    flags = {action.dest for action in parser._actions} - {"help", "experiment", "report"}
    unknown = sorted(set(values) - flags)
    if not isinstance(values, dict) or unknown:
        raise SystemExit(f"{path}: unknown experiment keys {unknown} (known: {', '.join(sorted(flags))})")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--experiment", type=Path, help="A YAML file of benchmarks/experiments/: its keys are this runner's flags."
    )
    parser.add_argument("--dataset", choices=["ml-100k", "ml-1m", "alibaba-fashion"])
    parser.add_argument(
        "--split",
        default="random",
        choices=["random", "cold-items", "given"],
        help="given: the dataset's own test set (alibaba-fashion)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--only", choices=["kgrec", "peers"], help="Run one side only (to run both sides in parallel).")
    parser.add_argument(
        "--variants",
        nargs="*",
        choices=list(VARIANTS),
        help=f"kgrec variants [{' '.join(DEFAULT_VARIANTS)}]; none: --variants alone",
    )
    parser.add_argument(
        "--baselines",
        nargs="*",
        choices=COLD_BASELINES,
        help=f"cold-items baselines [{' '.join(COLD_BASELINES)}; text-knn only where the preset uses text]",
    )
    parser.add_argument("--peers", nargs="+", help=f"RecBole models [{' '.join(PEERS)}]")
    parser.add_argument("--threads", type=int, default=1, help="Threads per process.")
    parser.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="kgrec's device (RecBole runs on CPU)."
    )
    parser.add_argument(
        "--timeout", type=int, default=3600, help="Seconds per RecBole run before it is recorded as not finished."
    )
    parser.add_argument("--report", action="store_true", help="Only regenerate tables and plots.")
    known, _ = parser.parse_known_args()
    if known.experiment is not None:
        parser.set_defaults(**read_experiment(known.experiment, parser))  # flags given on the command line still win
    args = parser.parse_args()
    if args.dataset is None:
        parser.error("give --dataset, or an --experiment file that names one")

    work = HERE / ".work" / f"{args.dataset}-{args.split}"
    suffix = "" if args.device == "cpu" else f"-{args.device}"
    raw = HERE / "results" / "raw" / f"{args.dataset}-{args.split}{suffix}"
    graph = build(args.dataset, args.split, work)
    if not args.report:
        cold = args.split == "cold-items"
        variants = args.variants if args.variants is not None else (COLD_VARIANTS if cold else DEFAULT_VARIANTS)
        baselines = args.baselines if args.baselines is not None else _default_baselines(args.dataset) if cold else ()
        peers = args.peers or (() if cold else PEERS)
        if args.only != "peers" and variants:
            measure_side_cost(graph, args, raw)
            if not cold:
                ease_stand_in(graph, args.dataset, raw, args.threads)
        for seed in args.seeds:
            if args.only != "peers":
                for variant in variants:
                    run_kgrec(graph, variant, seed, args, raw)
                for baseline in baselines:
                    run_cold_baseline(graph, baseline, seed, args, raw)
            if args.only != "kgrec":
                for model in peers:
                    run_peer(graph, model, seed, args, raw)
    report(args.dataset, args.split, graph, raw, tuple(args.seeds))


if __name__ == "__main__":
    main()
