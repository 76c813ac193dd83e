"""Train kgrec on a built graph with several configurations; record quality, stage timings and memory.

The reference every variant is compared with (as a ratio) is EASE, the strongest closed-form
peer, computed in the same invocation on the same machine and the same saved split.

    python benchmarks/train.py --graph graphs/ml-100k \
        --variant gated= --variant backbone-only=model.use_kg=false,model.use_text=false
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from build_graph import machine  # noqa: E402


def _overrides(text: str) -> dict:
    pairs = [item for item in text.split(",") if item]
    return {key: yaml.safe_load(value) for key, _, value in (pair.partition("=") for pair in pairs)}


def ease_baseline(graph) -> dict:  # noqa: ANN001 - a KnowledgeGraph
    """EASE alone (RecBole's default penalty 250) on the same split: the closed-form peer to beat."""
    import resource
    import time

    from kgrec.evaluate import evaluate_ranking
    from kgrec.models import PropagationGraph
    from kgrec.models.linear import EASE
    from kgrec.train.run import split_matrix

    inputs = PropagationGraph.from_hetero(graph.hetero, len(graph.relations))
    started = time.perf_counter()
    ease = EASE(len(graph.items), l2=250.0).fit(inputs.history)
    fit_seconds = time.perf_counter() - started
    scores = lambda users: ease(inputs.history_rows(users))  # noqa: E731
    metrics, timings = {}, {"train_seconds": fit_seconds, "train_seconds_to_best": fit_seconds}
    for split, exclude in (("valid", ("train",)), ("test", ("train", "valid"))):
        result = evaluate_ranking(scores, split_matrix(graph, split), split_matrix(graph, *exclude), ks=(10, 20))
        metrics[split] = result.metrics
        timings[f"eval_{split}_seconds"] = result.seconds
    timings["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"overrides": {}, "test": metrics["test"], "valid": metrics["valid"], "kge": {}, "timings": timings, "model": repr(ease)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graph", type=Path, required=True)
    parser.add_argument("--variant", action="append", required=True, help="NAME=key=value,key=value")
    parser.add_argument("--runs", type=Path, default=Path("runs/bench"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import kgrec
    from kgrec.config import RunConfig

    graph = kgrec.KnowledgeGraph.load(args.graph)
    info = machine()
    results = {"machine": info, "graph": str(args.graph), "split": graph.stats["split"], "variants": {}}
    results["variants"]["EASE (peer, l2=250)"] = ease_baseline(graph)
    print("EASE", {k: round(v, 4) for k, v in results["variants"]["EASE (peer, l2=250)"]["test"].items() if k.endswith("@20")})
    for variant in args.variant:
        name, _, overrides = variant.partition("=")
        config = RunConfig().override(_overrides(overrides))
        run = kgrec.train(graph, config, out=args.runs / name, graph_dir=args.graph, quiet=True)
        results["variants"][name] = {
            "overrides": _overrides(overrides),
            "test": run.metrics.get("test", {}),
            "valid": run.metrics.get("valid", {}),
            "kge": run.metrics.get("kge", {}),
            "timings": run.timings,
            "model": repr(run.model),
        }
        print(name, {k: round(v, 4) for k, v in run.metrics["test"].items() if k.endswith("@20")}, flush=True)
    reference = next(iter(results["variants"].values()))
    rows = [
        "| variant | test NDCG@20 | Recall@20 | MRR@20 | AUC | NDCG@20 / EASE | train s (to best) | eval s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results["variants"].items():
        test, timing = result["test"], result["timings"]
        rows.append(
            f"| {name} | {test['ndcg@20']:.4f} | {test['recall@20']:.4f} | {test['mrr@20']:.4f} | {test['auc']:.4f} | "
            f"{test['ndcg@20'] / reference['test']['ndcg@20']:.3f} | {timing['train_seconds']:.0f} ({timing['train_seconds_to_best']:.0f}) | "
            f"{timing['eval_test_seconds']:.2f} | {timing['peak_rss_mib']:.0f} |"
        )
    folder = args.out / f"{datetime.date.today().isoformat()}_{info['cores']}core-cpu"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"train_{args.graph.name}"
    (folder / f"{stem}.json").write_text(json.dumps(results, indent=2))
    (folder / f"{stem}.md").write_text(
        f"# kgrec train on {args.graph.name}\n\nMachine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}. "
        f"Split: {graph.stats['split']}.\n\n" + "\n".join(rows) + "\n"
    )
    print("\n".join(rows))
    print(f"wrote {folder}")


if __name__ == "__main__":
    main()
