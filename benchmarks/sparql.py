"""First-query and repeated-query time of kgrec's local SPARQL stores: Oxigraph (the default) against rdflib's memory store.

    python benchmarks/sparql.py --graph benchmarks/.work/ml-100k-random/graph [--repeats 3]

Each measurement is a fresh process (``kgrec.graph.sparql.LocalStore`` with one backend), so the first
query includes loading ``kg.nt`` and ``ontology.ttl``, as the first ``kgrec query`` or explanation
does. The later queries run on the loaded store. Both backends must return the same tables (checked).
Writes ``benchmarks/results/sparql_<graph>.{md,json}`` with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
from build_graph import machine

QUERIES = {
    "title of item 50": 'SELECT ?l WHERE { ?i kgrec:itemId "50" ; rdfs:label ?l }',
    "items per category": "SELECT ?c (COUNT(?i) AS ?n) WHERE { ?i kgrec:hasCategory ?c } GROUP BY ?c ORDER BY DESC(?n) ?c",
    "entities shared by items 1 and 2": 'SELECT ?e WHERE { ?a kgrec:itemId "1" . ?b kgrec:itemId "2" . ?a ?p ?e . ?b ?q ?e } ORDER BY ?e',
    "triples": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
}

_ONE = r"""
import json, resource, sys, time
from kgrec.graph.sparql import LocalStore
store = LocalStore(sys.argv[1], sys.argv[2])
queries = json.loads(sys.argv[3])
out = {"seconds": {}, "answers": {}}
for name, sparql in queries.items():
    started = time.perf_counter()
    table = store.query(sparql)
    out["seconds"][name] = time.perf_counter() - started
    out["answers"][name] = table.astype(str).values.tolist()
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3, help="Fresh processes per backend.")
    parser.add_argument("--label", help="Name in the results file [the graph's parent folder].")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results: dict[str, list[dict]] = {}
    for _ in range(args.repeats):
        for backend in ("oxigraph", "rdflib"):
            done = subprocess.run(
                [sys.executable, "-c", _ONE, str(args.graph), backend, json.dumps(QUERIES)],
                capture_output=True,
                text=True,
                check=True,
            )
            results.setdefault(backend, []).append(json.loads(done.stdout.strip().splitlines()[-1]))
    same = all(results["oxigraph"][0]["answers"][q] == results["rdflib"][0]["answers"][q] for q in QUERIES)
    first = next(iter(QUERIES))
    rows = []
    for backend, runs in results.items():
        rows.append(
            {
                "backend": backend,
                "first query s (median)": statistics.median(r["seconds"][first] for r in runs),
                **{f"{name} s": statistics.median(r["seconds"][name] for r in runs) for name in list(QUERIES)[1:]},
                "peak RSS MiB": max(r["peak_rss_mib"] for r in runs),
            }
        )
    label = args.label or args.graph.parent.name
    commit = (
        subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
        or "unknown"
    )
    record = {
        "graph": str(args.graph),
        "rows": rows,
        "same_answers": same,
        "machine": machine(),
        "load_before": load,
        "repeats": args.repeats,
        "queries": QUERIES,
        "commit": commit,
    }
    out = HERE / "results" / f"sparql_{label}"
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    columns = list(rows[0])
    lines = [
        f"# Local SPARQL stores on {label}: Oxigraph vs rdflib",
        "",
        f"Made by `python benchmarks/sparql.py --graph {args.graph}`: {args.repeats} fresh processes per backend, medians. "
        f"The first query ({first!r}) includes loading `kg.nt` + `ontology.ttl`; the rest run on the loaded store. "
        f"Commit {commit}. Machine: {record['machine']['cpu']}, {record['machine']['cores']} cores; 1-minute load average before {load:.2f}. "
        f"Same answers from both: {'yes' if same else '**no**'}.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        lines.append(
            "| "
            + " | ".join(
                row["backend"] if c == "backend" else f"{row[c]:.0f}" if c == "peak RSS MiB" else f"{row[c]:.3f}"
                for c in columns
            )
            + " |"
        )
    ratio = rows[1]["first query s (median)"] / rows[0]["first query s (median)"]
    lines += [
        "",
        f"First query: Oxigraph {rows[0]['first query s (median)']:.2f} s, rdflib {rows[1]['first query s (median)']:.2f} s ({ratio:.1f}x).",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
