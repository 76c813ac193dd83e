"""Time and peak memory of `build-graph` on public datasets, against a bare pandas read of the same files.

Each measurement runs in a fresh Python process (so peak RSS is the build's own), is repeated,
and the median is reported. Raw numbers go to benchmarks/results/<date>_<machine>/build_graph.json.

    python benchmarks/build_graph.py --datasets ml-100k ml-1m --repeats 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# Runs inside the child process: phases timed separately, peak RSS from getrusage.
_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
mode, name, out = sys.argv[1:4]
if mode == "pandas":
    import pandas as pd
    from kgrec.data import PUBLIC_DATASETS, resolve_data_dir
    folder = resolve_data_dir() / name
    t1 = time.perf_counter()
    spec = PUBLIC_DATASETS[name]
    for file in (*spec.files, *spec.pair_files):  # one string column per line for the space-separated KGAT files
        pd.read_csv(folder / file, sep="\t", dtype=str, quoting=3, header=None if file.endswith(".txt") else "infer")
    phases = {"read": time.perf_counter() - t1}
else:
    import kgrec
    from kgrec.config import load_config
    t1 = time.perf_counter()
    dataset = kgrec.load_dataset(name)
    t2 = time.perf_counter()
    graph = kgrec.build_graph(dataset, load_config(name))
    t3 = time.perf_counter()
    save_graph(graph, out)
    t4 = time.perf_counter()
    phases = {"read": t2 - t1, "build": t3 - t2, "save": t4 - t3}
phases["total"] = time.perf_counter() - t0
print(json.dumps({"seconds": phases, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import pandas
    import torch

    from kgrec import __version__

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kgrec": __version__,
        "torch": torch.__version__,
        "pandas": pandas.__version__,
    }


def measure(mode: str, name: str, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as scratch:
            result = subprocess.run(
                [sys.executable, "-c", _CHILD, mode, name, str(Path(scratch) / name)],
                capture_output=True,
                text=True,
                check=True,
            )
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    phases = runs[0]["seconds"].keys()
    return {
        "median_seconds": {p: round(statistics.median(r["seconds"][p] for r in runs), 3) for p in phases},
        "peak_rss_mib": round(statistics.median(r["peak_rss_mib"] for r in runs), 1),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["ml-100k", "ml-1m"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    if not os.environ.get("KGREC_DATA_DIR"):
        sys.exit("set KGREC_DATA_DIR to the folder holding ml-100k/ and ml-1m/")
    info = machine()
    results = {"machine": info, "repeats": args.repeats, "datasets": {}}
    rows = [
        "| dataset | read s | build s | save s | total s (incl. imports) | peak RSS MiB | pandas-only read s | ratio total / pandas |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in args.datasets:
        kgrec_result = measure("kgrec", name, args.repeats)
        baseline = measure("pandas", name, args.repeats)
        results["datasets"][name] = {"kgrec": kgrec_result, "pandas_read": baseline}
        s = kgrec_result["median_seconds"]
        b = baseline["median_seconds"]["total"]
        rows.append(
            f"| {name} | {s['read']:.2f} | {s['build']:.2f} | {s['save']:.2f} | {s['total']:.2f} | "
            f"{kgrec_result['peak_rss_mib']:.0f} | {b:.2f} | {s['total'] / b:.1f}x |"
        )
    stamp = datetime.date.today().isoformat()
    folder = args.out / f"{stamp}_{info['cores']}core-cpu"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "build_graph.json").write_text(json.dumps(results, indent=2))
    table = "\n".join(rows)
    (folder / "build_graph.md").write_text(
        f"# build-graph, median of {args.repeats} fresh processes\n\nMachine: {info['cpu']}, {info['cores']} cores; "
        f"Python {info['python']}, torch {info['torch']}, pandas {info['pandas']}, kgrec {info['kgrec']}.\n\n{table}\n"
    )
    print(table)
    print(f"wrote {folder}")


if __name__ == "__main__":
    main()
