"""Training reports written into a run directory: history CSV and the training-curve PNG."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kgrec.io import atomic_write

__all__ = ["write_history", "plot_curve"]


def write_history(history: list[dict[str, float]], path: Path) -> None:
    """One row per epoch: loss, elapsed seconds and, where evaluated, the validation metric."""
    with atomic_write(path) as handle:
        pd.DataFrame(history).to_csv(handle, index=False)


def plot_curve(history: list[dict[str, float]], metric: str, path: Path) -> None:
    """Loss and validation metric against epochs, as a PNG."""
    # A Figure of its own, not pyplot: pyplot would need a backend, and switching the process to Agg (as kgrec did)
    # left a notebook that trained a run with no figures.
    from matplotlib.figure import Figure

    frame = pd.DataFrame(history)
    figure = Figure(figsize=(6, 3.5))
    loss_axis = figure.subplots()
    loss_axis.plot(frame["epoch"], frame["loss"], color="tab:blue", label="training loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("loss", color="tab:blue")
    if "valid" in frame:
        evaluated = frame.dropna(subset=["valid"])
        metric_axis = loss_axis.twinx()
        metric_axis.plot(evaluated["epoch"], evaluated["valid"], color="tab:orange", marker="o", markersize=3)
        metric_axis.set_ylabel(f"valid {metric}", color="tab:orange")
    figure.tight_layout()
    with atomic_write(path, mode="wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
