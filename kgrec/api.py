"""The public verbs of kgrec; the only module that sees a whole RunConfig. Each CLI command calls one of these."""

from __future__ import annotations

from pathlib import Path

from kgrec.config import RunConfig
from kgrec.data import Dataset, load_dataset, read_dataset
from kgrec.errors import InputError
from kgrec.graph import KnowledgeGraph
from kgrec.graph import build_graph as _build_graph

__all__ = ["load_dataset", "read_dataset", "build_graph", "open_dataset"]


def open_dataset(
    config: RunConfig,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    interactions: str | Path | None = None,
    items: str | Path | None = None,
    users: str | Path | None = None,
    triples: str | Path | None = None,
    links: str | Path | None = None,
    name: str | None = None,
) -> Dataset:
    """A public dataset by name, or the user's own files read with ``config.data``; exactly one of the two."""
    if (dataset is None) == (interactions is None):
        raise InputError("give either a public dataset name or an interaction file, not both or neither")
    if dataset is not None:
        if any(path is not None for path in (items, users, triples, links)):
            raise InputError(f"--dataset {dataset} brings its own files; --items/--users/--triples/--links are for own data")
        return load_dataset(dataset, data_dir)
    return read_dataset(interactions, items, users, triples, links, config=config.data, name=name)


def build_graph(dataset: Dataset, config: RunConfig | None = None, out: str | Path | None = None) -> KnowledgeGraph:
    """Split the dataset and build its knowledge graph; save it to ``out`` atomically when given.

    Args:
        dataset: From :func:`load_dataset` or :func:`read_dataset`.
        config: The run config; only its ``graph`` section is used here.
        out: A graph directory (e.g. ``graphs/ml-100k``), replaced as a whole when the build succeeds.
    """
    config = config or RunConfig()
    graph = _build_graph(dataset, config.graph)
    if out is not None:
        graph.save(str(out))
    return graph
