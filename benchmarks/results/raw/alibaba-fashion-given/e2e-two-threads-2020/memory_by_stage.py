"""Peak RSS per post-training stage of a finished run (VmHWM reset between stages)."""
import sys, time, os
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith(("VmHWM", "VmRSS")): print("   ", line.strip(), flush=True)
def reset(): open("/proc/self/clear_refs", "w").write("5")
def mark(name, t):
    print(f"{name}: {time.perf_counter()-t:.0f}s", flush=True); hwm(); reset()
t = time.perf_counter()
from kgrec.api import load_run
from kgrec.train.pipeline import refit_linear
run = load_run(sys.argv[1])
mark("load", t); t = time.perf_counter()
res = run.evaluate("valid", topk_only=True); mark("valid topk", t); t = time.perf_counter()
res = run.evaluate("valid"); mark("valid full", t); t = time.perf_counter()
timings = {}; refit_linear(run, timings); mark("refit", t); t = time.perf_counter()
res = run.evaluate("test"); mark("test", t); print(res.metrics.get("recall@20"))
