"""`kgrec serve` under a bounded load on 127.0.0.1, against the CLI's per-call cost in the same run.

    python benchmarks/serve.py --run ml-100k=benchmarks/.work/ml-100k-random/runs/gated-2020 \\
        --run ml-1m=benchmarks/.work/ml-1m-random/runs/gated-2020 [--requests 2000]

For each run: a fresh server process (its event log in a temporary folder, so the run is left as
it was), then a fixed number of ``GET /recommend?user=U&k=10`` requests at 1, 8 and 32 concurrent
clients (users drawn uniformly, seeded; one asyncio client process, so the load generator shares
the machine with the server, as it would on one box), then ``POST /recommend`` batches of 1,000
users, and ``kgrec recommend`` called as a fresh process a few times. Writes
``benchmarks/results/serve.{md,json}`` with the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
from build_graph import machine

from kgrec.graph import load_graph

TARGETS = {"rps_32": 300.0, "p99_ms_32": 50.0, "batch_users_per_s": 20_000.0}


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(run: Path, state: Path, threads: int) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    process = subprocess.Popen(
        [sys.executable, "-m", "kgrec", "serve", "--run", str(run), "--state", str(state), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server for {run} exited: {process.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"server for {run} did not answer within 300 s")


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str) -> int:
    """One keep-alive HTTP/1.1 GET on an open connection; returns the status (the body is read and dropped)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return status


async def _load(url: str, users: list[str], concurrency: int) -> dict[str, float]:
    """``len(users)`` GET /recommend requests, ``concurrency`` connections each with one request in flight.

    The client speaks HTTP/1.1 over asyncio streams itself: a general-purpose client (httpx) spent
    more CPU per request than the server, so it, not the server, set the pace on two cores.
    """
    from urllib.parse import quote, urlsplit

    parts = urlsplit(url)
    queue = list(users)
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while queue:
                user = queue.pop()
                started = time.perf_counter()
                status = await _get(reader, writer, parts.netloc, f"/recommend?user={quote(user)}&k=10")
                latencies.append(time.perf_counter() - started)
                errors += status != 200
        finally:
            writer.close()

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "seconds": wall,
        "rps": len(latencies) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "client_cpu_ms_per_request": (time.process_time() - cpu) * 1000 / len(latencies),
    }


def _batch(url: str, users: list[str], size: int, streams: int) -> dict[str, float]:
    """``POST /recommend`` of ``size`` users a request, ``streams`` requests in flight (each on its own connection).

    With one stream the server waits while the client parses each answer (stdlib JSON, about as costly as the
    server's work); two keep both sides busy, as two callers of a service would.
    """
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    chunks = [users[start : start + size] for start in range(0, len(users), size)]

    def run(part: list[list[str]]) -> int:
        served = 0
        with httpx.Client(base_url=url, timeout=300) as client:
            for chunk in part:
                response = client.post("/recommend", json={"users": chunk, "k": 10})
                response.raise_for_status()
                served += len(response.json()["results"])
        return served

    run([users[:size]])  # warm-up
    started = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        served = sum(pool.map(run, [chunks[i::streams] for i in range(streams)]))
    wall = time.perf_counter() - started
    return {"batch_size": size, "streams": streams, "users": served, "seconds": wall, "users_per_s": served / wall}


def _cli_cost(run: Path, user: str, calls: int) -> float:
    """Mean seconds of one ``kgrec recommend`` process (load the run, answer one user)."""
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "kgrec", "recommend", "--run", str(run), "--user", user, "-k", "10"],
            check=True,
            capture_output=True,
        )
        seconds.append(time.perf_counter() - started)
    return float(np.mean(seconds))


def bench(label: str, run: Path, args: argparse.Namespace) -> dict:

    info = json.loads((run / "run.json").read_text())
    user_ids = list(load_graph(info["graph"]).users.ids)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as state:
        started = time.perf_counter()
        process, url = start_server(run, Path(state), args.server_threads)
        startup = time.perf_counter() - started
        try:
            asyncio.run(_load(url, rng.choices(user_ids, k=200), 8))  # warm-up, not recorded
            loads = []
            for concurrency in args.concurrency:
                cpu = _cpu_seconds(process.pid)
                row = asyncio.run(_load(url, rng.choices(user_ids, k=args.requests), concurrency))
                row["server_cpu_ms_per_request"] = (_cpu_seconds(process.pid) - cpu) * 1000 / row["requests"]
                loads.append(row)
            cpu = _cpu_seconds(process.pid)
            batch = _batch(url, rng.choices(user_ids, k=args.batch_users), 1000, args.batch_streams)
            batch["server_cpu_us_per_user"] = (_cpu_seconds(process.pid) - cpu) * 1e6 / batch["users"]
        finally:
            process.terminate()
            process.wait(timeout=30)
    cli = _cli_cost(run, user_ids[0], args.cli_calls)
    result = {
        "label": label,
        "run": str(run),
        "users": len(user_ids),
        "server_start_s": startup,
        "load": loads,
        "batch": batch,
        "cli_seconds_per_call": cli,
    }
    for row in loads:
        print(
            f"{label}: {row['concurrency']:2d} clients {row['rps']:7.1f} req/s  p50 {row['p50_ms']:.1f} ms  "
            f"p95 {row['p95_ms']:.1f} ms  p99 {row['p99_ms']:.1f} ms  errors {row['errors']}  "
            f"server CPU {row['server_cpu_ms_per_request']:.2f} ms/request",
            flush=True,
        )
    print(
        f"{label}: batch {batch['users_per_s']:.0f} users/s (server CPU {batch['server_cpu_us_per_user']:.0f} us/user); "
        f"CLI {cli:.2f} s per call",
        flush=True,
    )
    return result


def report(results: list[dict], args: argparse.Namespace) -> None:
    info = machine()
    load_before = args.loadavg
    lines = [
        "# kgrec serve: throughput and latency on 127.0.0.1\n",
        f"Made by `python benchmarks/serve.py` ({args.requests} requests per level, k=10, users uniform at random, seed {args.seed}). "
        f"Machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}; server and load generator on the same machine "
        f"(one asyncio client process speaking HTTP/1.1 keep-alive itself); server torch threads {args.server_threads}; 1-minute load average before the run "
        f"{load_before:.2f}.\n",
        "| run | clients | req/s | p50 ms | p95 ms | p99 ms | errors | server CPU ms / request |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for row in result["load"]:
            lines.append(
                f"| {result['label']} | {row['concurrency']} | {row['rps']:.0f} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | "
                f"{row['p99_ms']:.1f} | {row['errors']} | {row['server_cpu_ms_per_request']:.2f} |"
            )
    lines += [
        "",
        "| run | batch users/s (POST /recommend, 1,000 users per request, "
        + f"{args.batch_streams} in flight) | server CPU us / user | `kgrec recommend` s per call "
        "(a fresh process) | server start s | one GET at 1 client vs one CLI call |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        p50 = result["load"][0]["p50_ms"] / 1000
        lines.append(
            f"| {result['label']} | {result['batch']['users_per_s']:,.0f} | {result['batch']['server_cpu_us_per_user']:.0f} | "
            f"{result['cli_seconds_per_call']:.2f} | "
            f"{result['server_start_s']:.1f} | {result['cli_seconds_per_call'] / p50:,.0f}x faster |"
        )
    lines += [
        "",
        f"Targets (issue 15, this 2-core machine): >= {TARGETS['rps_32']:.0f} req/s and p99 < {TARGETS['p99_ms_32']:.0f} ms "
        f"at 32 clients on ml-1m; batch >= {TARGETS['batch_users_per_s']:,.0f} users/s.",
    ]
    for result in results:
        at32 = next((row for row in result["load"] if row["concurrency"] == 32), None)
        if at32 is not None:
            met = at32["rps"] >= TARGETS["rps_32"] and at32["p99_ms"] < TARGETS["p99_ms_32"]
            batch_met = result["batch"]["users_per_s"] >= TARGETS["batch_users_per_s"]
            lines.append(
                f"- {result['label']}: 32 clients {'met' if met else 'NOT met'} ({at32['rps']:.0f} req/s, p99 {at32['p99_ms']:.1f} ms); "
                f"batch {'met' if batch_met else 'NOT met'} ({result['batch']['users_per_s']:,.0f} users/s)."
            )
    out = HERE / "results"
    (out / "serve.md").write_text("\n".join(lines) + "\n")
    (out / "serve.json").write_text(
        json.dumps({"machine": info, "loadavg_before": load_before, "results": results}, indent=2) + "\n"
    )
    print(f"wrote {out / 'serve.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--run", action="append", required=True, metavar="LABEL=DIR", help="A trained run (repeatable)."
    )
    parser.add_argument("--requests", type=int, default=2000, help="GET requests per concurrency level.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--batch-users", type=int, default=20_000, help="Users sent to POST /recommend, 1,000 per request."
    )
    parser.add_argument("--batch-streams", type=int, default=2, help="Batch requests in flight at once.")
    parser.add_argument("--cli-calls", type=int, default=3)
    parser.add_argument("--server-threads", type=int, default=1, help="torch threads in the server process.")
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()
    args.loadavg = os.getloadavg()[0]
    results = []
    for spec in args.run:
        label, _, directory = spec.partition("=")
        results.append(bench(label, Path(directory), args))
    report(results, args)


if __name__ == "__main__":
    main()
