"""The run folder format: what a saved run holds, and the one place it is written and read.

A run directory holds ``config.yaml`` (the complete RunConfig, :func:`write_config`), ``run.json`` (graph location
and digest, timings, versions; written last, so its presence means the run is complete), ``model.pt``
(``state_dict`` and shapes, read with ``weights_only=True``), ``context.json`` (the context vocabulary, for
context-aware runs), the stored ranking of :mod:`kgrec.inference.ranked`, ``metrics.json``, ``per_user.parquet``
(:func:`write_per_user`), ``history.csv`` and ``curve.png``.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from kgrec._version import __version__
from kgrec.config import RunConfig, dump_config, load_config
from kgrec.data import ContextFeatures
from kgrec.errors import InputError
from kgrec.graph import load_graph
from kgrec.inference.assemble import ModelShapes, assemble_model
from kgrec.inference.ranked import write_ranked
from kgrec.inference.run_files import PER_USER_NAME, RANKED_ITEMS, RANKED_SCORES, RUN_FORMAT, RUN_FORMAT_VERSION
from kgrec.inference.serving import best_unseen
from kgrec.io import atomic_write, check_replaceable, load_tensors, save_tensors, write_json, write_marker

if TYPE_CHECKING:
    from kgrec.inference.recommender import Recommender

__all__ = [
    "PER_USER_NAME",
    "RUN_FORMAT_VERSION",
    "load_run",
    "read_per_user",
    "save_run",
    "write_config",
    "write_per_user",
]

#: Largest users x items a save scores to store each user's ranking (:mod:`kgrec.inference.ranked`); above it (Alibaba-iFashion,
#: 3.4e9) the quick answer is skipped rather than add a full scoring pass to every save.
RANKED_SCORES_LIMIT = 1 << 28
#: How many unseen items per user the stored ranking keeps (a request for more goes to the loaded run).
RANKED_DEPTH = 100


def write_config(directory: str | Path, config: RunConfig) -> None:
    """``config.yaml``: the complete run config, the file a run is reproduced from."""
    with atomic_write(Path(directory) / "config.yaml") as handle:
        handle.write(dump_config(config))


def write_per_user(directory: str | Path, tables: dict[str, pd.DataFrame], split_digest: str) -> None:
    """Store per-user metric tables under their evaluation names (``"test"``, ``"test_unseen"`` ...), replacing those names only."""
    path = Path(directory) / PER_USER_NAME
    frames, stored = [], read_per_user(directory) if path.is_file() else None
    for name, table in tables.items():
        table = table.assign(evaluation=name, split_digest=split_digest)
        old = None if stored is None else stored[stored["evaluation"] == name]
        if old is not None and len(old) == len(table) and (old["split_digest"] == split_digest).all():
            # Another evaluation of the same users (other cut-offs): keep the metrics it did not recompute, as metrics.json does.
            old = old.set_index(["user", "query"])
            merged = table.set_index(["user", "query"])
            if old.index.equals(merged.index):
                table = old.drop(columns=[c for c in merged.columns if c in old.columns]).join(merged).reset_index()
        frames.append(table)
    if stored is not None:
        frames.insert(0, stored[~stored["evaluation"].isin(list(tables))])
    with atomic_write(path, mode="wb") as handle:
        pd.concat(frames, ignore_index=True).to_parquet(handle, index=False)


def read_per_user(directory: str | Path) -> pd.DataFrame:
    """The per-user metric table of a run (columns ``evaluation``, ``split_digest``, ``user``, ``query`` and the metrics)."""
    path = Path(directory) / PER_USER_NAME
    if not path.is_file():
        raise InputError(
            f"the run has no {PER_USER_NAME} (trained before kgrec kept per-user metrics); evaluate the run again to write it",
            directory,
        )
    try:
        return pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise InputError(f"cannot read per-user metrics: {' '.join(str(error).split())[:200]}", path) from None


@torch.no_grad()
def _store_ranking(recommender: Recommender, directory: Path) -> dict[str, int] | None:
    """Each user's best unseen items for the quick answer, when the run's usual question has one that no request
    changes: no context encoder, a discovery run (seen items dropped), and a catalog small enough to score at once."""
    model, config = recommender.model, recommender.config
    if (
        model.context is not None
        or config.eval.task == "in-context"
        or model.num_users * model.num_items > RANKED_SCORES_LIMIT
    ):
        (directory / RANKED_ITEMS).unlink(missing_ok=True)
        (directory / RANKED_SCORES).unlink(missing_ok=True)
        return None
    reps, prop_graph = recommender.representations(), recommender.prop_graph
    ranked = best_unseen(
        lambda users: model.score_all(reps, prop_graph, users),
        recommender.interactions("train", "valid", "test"),
        RANKED_DEPTH,
        config.eval.batch_size,
        recommender.device,
    )
    return write_ranked(directory, ranked.indices.cpu().numpy(), ranked.scores.cpu().numpy())


def save_run(
    recommender: Recommender, directory: str | Path, graph_dir: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``model.pt``, the stored ranking and ``run.json`` (last) into ``directory``; ``config.yaml`` too if absent.

    ``run.json`` records the graph's digest, so a run never loads a graph rebuilt since.

    Raises:
        InputError: when ``directory`` is a folder kgrec did not create.
    """
    directory = Path(directory)
    check_replaceable(directory, "run")
    directory.mkdir(parents=True, exist_ok=True)
    write_marker(directory, "run")
    if not (directory / "config.yaml").is_file():
        write_config(directory, recommender.config)
    model = recommender.model
    shapes = ModelShapes.of(model, len(recommender.graph.relations)).to_dict()
    if recommender.context is not None:
        write_json(directory / "context.json", recommender.context.to_dict())
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_tensors({"state_dict": state, "shapes": shapes}, directory / "model.pt")
    ranked = _store_ranking(recommender, directory)
    run = {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "kgrec_version": __version__,
        "torch_version": torch.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "graph": str(Path(graph_dir).resolve()),
        "graph_digest": recommender.graph.digest,
        "model": repr(model),
        **({"ranked": ranked} if ranked else {}),
        **(extra or {}),
    }
    write_json(directory / "run.json", run)
    recommender.directory, recommender.graph_dir = directory, Path(graph_dir)
    return directory


def load_run(cls: type[Recommender], directory: str | Path, device: str | torch.device = "cpu") -> Recommender:
    """Rebuild a saved run as a ``cls``: config, graph (from the path in ``run.json``) and model weights."""
    directory = Path(directory)
    run_file = directory / "run.json"
    if not run_file.is_file():
        raise InputError("not a complete kgrec run (no run.json); train one with 'kgrec train'", directory)
    try:
        run = json.loads(run_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"corrupted run.json: {error}", run_file) from None
    if run.get("format") != RUN_FORMAT or run.get("format_version") != RUN_FORMAT_VERSION:
        raise InputError(f"run format v{run.get('format_version')} is not v{RUN_FORMAT_VERSION}; train again", run_file)
    config = load_config(directory / "config.yaml")
    graph = load_graph(run["graph"])
    if graph.digest != run.get("graph_digest"):
        raise InputError(
            f"the graph at {run['graph']} has changed since this run was trained (rebuilt with another split, data "
            "or items), so its test set may overlap the model's training data; train again on it, or rebuild it as it was",
            run_file,
        )
    try:
        checkpoint = load_tensors(directory / "model.pt", mmap=True)
    except FileNotFoundError:
        raise InputError("the run has no model.pt checkpoint", directory) from None
    except Exception as error:
        raise InputError(
            f"cannot read the checkpoint: {' '.join(str(error).split())[:200]}", directory / "model.pt"
        ) from None
    shapes = ModelShapes.from_dict(checkpoint["shapes"])
    context = None
    if shapes.context is not None:
        try:
            context = ContextFeatures.from_dict(json.loads((directory / "context.json").read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(f"cannot read the context vocabulary: {error}", directory / "context.json") from None
    try:
        model = assemble_model(config, graph, shapes, context=context)
    except InputError as error:
        raise InputError(error.message, directory / "context.json") from None
    try:
        # assign: the model adopts the mapped tensors and frees its zero-filled ones, instead of copying
        # (an Alibaba EASE matrix is 3.6 GB; held twice, loading peaked at twice the model's size)
        model.load_state_dict(checkpoint["state_dict"], assign=True)
    except RuntimeError as error:
        raise InputError(
            f"checkpoint does not fit the config: {str(error).splitlines()[0]}", directory / "model.pt"
        ) from None
    recommender = cls(model, graph, config, directory, device, context)
    if config.train.refit_linear and model.terms() and len(graph.split.valid):
        recommender.use_history("train", "valid")  # as its EASE was solved and its repeat term counted (api.train)
    recommender.graph_dir = Path(run["graph"])
    return recommender
