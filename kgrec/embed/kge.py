"""PyKEEN entity embeddings of the KG, with rows in kgrec's KG node order.

This module is the one place where vocabularies meet: PyKEEN's "label" is kgrec's node key
(``item:<id>``/``entity:<id>``) and PyKEEN's "id" is kgrec's KG node index.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kgrec.config import KGEConfig
from kgrec.embed.cache import cache_key, load_cached, store_cached
from kgrec.errors import DivergedError, InputError
from kgrec.graph import KnowledgeGraph

__all__ = ["KGEmbeddings", "train_kg_embeddings", "make_kg_model"]


@dataclass(frozen=True)
class KGEmbeddings:
    """Entity embeddings and their link-prediction quality.

    Attributes:
        entity_emb: ``(num_kg_nodes, d_kg)``; row *i* is KG node *i* (items first, then entities).
        relation_emb: ``(num_relations, d_rel)``; row *r* is ``graph.relations`` index *r*.
        metrics: PyKEEN rank-based metrics on held-out triples (``mrr``, ``hits@10``, ...).
        seconds: Training time (0 when read from the cache).
        cached: Whether the cache answered.
        model_state: The PyKEEN model's ``state_dict`` (to fine-tune it further, :func:`make_kg_model`).
        training: ``(n, 3)`` PyKEEN-mapped triples it trained on (KG node index, relation index, KG node index).
        testing: ``(m, 3)`` held-out triples its metrics were measured on.
    """

    entity_emb: torch.Tensor
    relation_emb: torch.Tensor
    metrics: dict[str, float]
    seconds: float
    cached: bool
    model_state: dict[str, torch.Tensor]
    training: torch.Tensor
    testing: torch.Tensor


def _real(tensor: torch.Tensor) -> torch.Tensor:
    # Complex models (RotatE, ComplEx) keep complex entities; the recommender reads real features.
    return torch.view_as_real(tensor).flatten(1) if tensor.is_complex() else tensor


@contextmanager
def _collections_skip_old_objects() -> Iterator[None]:
    """Make PyKEEN's ``gc.collect()`` after every epoch cheap: objects alive before training are not walked again.

    In a process that already holds many objects (a test session, a notebook, a server) each full collection
    took about half a second, a hundred epochs a minute on a graph whose training took seconds.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def train_kg_embeddings(
    graph: KnowledgeGraph,
    config: KGEConfig,
    cache_dir: Path | None = None,
    device: str = "cpu",
    result_tracker: tuple[str, dict] | None = None,
    progress: bool = False,
) -> KGEmbeddings:
    """Train a PyKEEN model on the KG triples and return embeddings aligned with the KG node index.

    Args:
        graph: The built graph; only ``graph.triples`` (KG facts, no interactions) are used.
        config: PyKEEN model name, dimension, epochs, ...
        cache_dir: Where to cache the result; the key covers the triples, the config and library versions.
        device: Torch device for PyKEEN.
        result_tracker: PyKEEN's ``(result_tracker, result_tracker_kwargs)`` for its pipeline (an experiment
            tracker's KG stage); unused when the embeddings come from the cache.
        progress: PyKEEN's own progress bars (epochs, evaluation).
    """
    labeled = graph.labeled_triples().astype(str)
    key = cache_key(labeled.tobytes() + str(graph.num_kg_nodes).encode(), config.model_dump(mode="json"), ("pykeen",))
    fields = ("entity_emb", "relation_emb", "metrics", "model_state", "training", "testing")
    if (entry := load_cached(cache_dir, "kge", key, fields)) is not None:
        return KGEmbeddings(
            entry["entity_emb"],
            entry["relation_emb"],
            dict(entry["metrics"]),
            0.0,
            True,
            dict(entry["model_state"]),
            entry["training"],
            entry["testing"],
        )
    if len(labeled) == 0:
        raise InputError("the knowledge graph has no triples; disable KG embeddings with model.use_kg=false")

    from pykeen.pipeline import pipeline
    from pykeen.triples import TriplesFactory

    started = time.perf_counter()
    entity_to_id = {graph.node_key(n): n for n in range(graph.num_kg_nodes)}
    relation_to_id = graph.relations.id_to_index
    factory = TriplesFactory.from_labeled_triples(
        labeled, entity_to_id=entity_to_id, relation_to_id=relation_to_id, compact_id=False
    )
    rng = np.random.default_rng(config.seed)
    held_out = rng.random(len(labeled)) < config.eval_share if config.eval_share > 0 else np.zeros(len(labeled), bool)
    held_out &= np.cumsum(held_out) <= config.max_eval_triples
    training = TriplesFactory(factory.mapped_triples[torch.from_numpy(~held_out)], entity_to_id, relation_to_id)
    testing = TriplesFactory(factory.mapped_triples[torch.from_numpy(held_out)], entity_to_id, relation_to_id)
    # PyKEEN's pipeline always evaluates on its testing triples; without link prediction it gets one of them
    # (milliseconds instead of a minute) and its result is not reported.
    evaluated = (
        testing
        if config.link_prediction or not held_out.any()
        else TriplesFactory(testing.mapped_triples[:1], entity_to_id, relation_to_id)
    )
    logging.getLogger("pykeen").setLevel(logging.WARNING)  # PyKEEN logs every step at INFO
    try:
        with _collections_skip_old_objects():
            result = pipeline(
                training=training,
                testing=evaluated if held_out.any() else training,
                model=config.model,
                model_kwargs={"embedding_dim": config.dim},
                optimizer="Adam",
                optimizer_kwargs={"lr": config.lr},
                training_kwargs={
                    "num_epochs": config.epochs,
                    "batch_size": config.batch_size,
                    "use_tqdm": progress,
                    "use_tqdm_batch": False,
                },
                evaluation_kwargs={"use_tqdm": progress, "batch_size": 256},
                random_seed=config.seed,
                device=device,
                result_tracker=None if result_tracker is None else result_tracker[0],
                result_tracker_kwargs=None if result_tracker is None else result_tracker[1],
            )
    except (KeyError, ValueError) as error:
        raise InputError(f"PyKEEN cannot train kge.model={config.model!r}: {' '.join(str(error).split())}") from None
    with torch.no_grad():
        model = result.model  # an ERModel: its representations are module lists
        entity_emb = _real(model.entity_representations[0](indices=None)).float().cpu().clone()  # type: ignore[index,operator]
        relation_emb = _real(model.relation_representations[0](indices=None)).float().cpu().clone()  # type: ignore[index,operator]
    if not (torch.isfinite(entity_emb).all() and torch.isfinite(relation_emb).all()):
        raise DivergedError(
            f"PyKEEN's {config.model} diverged: its embeddings are not finite after {config.epochs} epochs; nothing is "
            f"cached. Try a smaller learning rate (now {config.lr:g}): kge.lr={min(config.lr / 10, 0.01):g}"
        )
    metrics = {}
    if held_out.any() and config.link_prediction:
        for name, metric in (("mrr", "inverse_harmonic_mean_rank"), ("hits@1", "hits_at_1"), ("hits@10", "hits_at_10")):
            metrics[name] = float(result.metric_results.get_metric(f"both.realistic.{metric}"))
        metrics["eval_triples"] = int(held_out.sum())
    state = {name: value.detach().cpu().clone() for name, value in result.model.state_dict().items()}
    entry = {
        "entity_emb": entity_emb,
        "relation_emb": relation_emb,
        "metrics": metrics,
        "model_state": state,
        "training": training.mapped_triples.clone(),
        "testing": testing.mapped_triples.clone(),
    }
    store_cached(cache_dir, "kge", key, entry)
    return KGEmbeddings(
        entity_emb,
        relation_emb,
        metrics,
        time.perf_counter() - started,
        False,
        state,
        entry["training"],
        entry["testing"],
    )


def make_kg_model(
    graph: KnowledgeGraph, config: KGEConfig, training: torch.Tensor, state: dict[str, torch.Tensor] | None = None
):  # noqa: ANN201 - a pykeen ERModel
    """A PyKEEN model over ``graph``'s KG (``kge.model``, ``kge.dim``) for fine-tuning, with ``state`` loaded when given.

    Its entity index is kgrec's KG node index, as in :func:`train_kg_embeddings`.

    Raises:
        InputError: when the state does not fit the model (another KG or config).
    """
    from pykeen.models import model_resolver
    from pykeen.triples import CoreTriplesFactory

    factory = CoreTriplesFactory.create(
        mapped_triples=training.long(), num_entities=graph.num_kg_nodes, num_relations=len(graph.relations)
    )
    try:
        model = model_resolver.make(
            config.model, triples_factory=factory, embedding_dim=config.dim, random_seed=config.seed
        )
    except (KeyError, ValueError, TypeError) as error:
        raise InputError(f"PyKEEN cannot build kge.model={config.model!r}: {' '.join(str(error).split())}") from None
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise InputError(
                f"the PyKEEN state does not fit kge.model={config.model!r}: {str(error).splitlines()[0]}"
            ) from None
    return model
