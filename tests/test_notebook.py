"""notebooks/explanation_paths.ipynb runs top to bottom, headless, on a tiny run."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgrec import api
from kgrec.config import GraphConfig, RunConfig, SplitConfig
from kgrec.graph import build_graph, save_graph
from tests.conftest import TINY_TRAINING

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "explanation_paths.ipynb"


@pytest.mark.slow
def test_explanation_notebook_executes(tiny_dataset, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    graph = build_graph(tiny_dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))))
    save_graph(graph, str(tmp_path / "graph"))
    config = RunConfig().override({**TINY_TRAINING, "train.epochs": 10})
    api.train(graph, config, out=tmp_path / "run", graph_dir=tmp_path / "graph", quiet=True)
    monkeypatch.setenv("KGREC_RUN", str(tmp_path / "run"))
    monkeypatch.setenv("KGREC_USER", "u1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    for needle in ("user u1:", "interacted with", "graph view", "EASE", "ontology#itemId"):
        assert needle in text, needle
