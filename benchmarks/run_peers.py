"""RecBole 1.2.1 peers on exactly kgrec's saved split, in RecBole's own virtual environment.

    python benchmarks/run_peers.py --graph graphs/ml-100k --models EASE BPR LightGCN --seeds 2020

Exports the graph's split as RecBole benchmark files (``kgrec export``), creates
``benchmarks/.work/recbole-venv`` from requirements-recbole.txt if it is missing (CPU torch first),
runs each model with RecBole's default hyper-parameters, full ranking, valid NDCG@10 early stopping
(patience 10), and writes raw results to benchmarks/results/<date>_<machine>/peers_<graph>.json.
A peer that fails is recorded with its error, never dropped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from build_graph import machine  # noqa: E402


def recbole_python(venv: Path) -> Path:
    """The RecBole venv's python, created on first use."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(HERE / "requirements-recbole.txt")], check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graph", type=Path, required=True)
    parser.add_argument("--models", nargs="+", default=["EASE", "BPR", "LightGCN"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020])
    parser.add_argument("--venv", type=Path, default=HERE / ".work" / "recbole-venv")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--timeout", type=int, default=3600, help="Seconds per peer run.")
    parser.add_argument("--tag", default="", help="Suffix of the results file, to keep runs of several model sets apart.")
    args = parser.parse_args()

    name = f"kgrec-{args.graph.name}"  # RecBole replaces a dataset called ml-100k by its bundled copy
    data_dir = HERE / ".work" / "recbole-data"
    subprocess.run(
        [sys.executable, "-m", "kgrec", "export", "--graph", str(args.graph), "--out", str(data_dir), "--name", name], check=True
    )
    python = recbole_python(args.venv)
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}  # RecBole reloads its own checkpoints
    info = machine()
    folder = args.out / f"{datetime.date.today().isoformat()}_{info['cores']}core-cpu"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"peers_{args.graph.name}{'-' + args.tag if args.tag else ''}.json"
    runs = []
    for model in args.models:
        for seed in args.seeds:
            work = HERE / ".work" / "recbole-runs" / f"{model}-{seed}"
            work.mkdir(parents=True, exist_ok=True)
            try:
                done = subprocess.run(
                    [str(python), str(HERE / "recbole_runner.py"), model, str(data_dir), name, str(seed), str(work)],
                    capture_output=True, text=True, env=env, cwd=work, timeout=args.timeout,
                )
                if done.returncode != 0:
                    runs.append({"model": model, "seed": seed, "error": done.stderr.strip().splitlines()[-1][:500]})
                else:
                    runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            except subprocess.TimeoutExpired:
                runs.append({"model": model, "seed": seed, "error": f"did not finish within {args.timeout} s"})
            last = runs[-1]
            print(model, seed, last.get("error") or {k: round(v, 4) for k, v in last["test"].items() if k.endswith("@20")}, flush=True)
            # Written after every run, so a long session that is cut short keeps what finished.
            path.write_text(json.dumps({"machine": info, "graph": str(args.graph), "recbole": "1.2.1", "runs": runs}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
