"""Warm-starting a trained run on new interactions: the same steps as :func:`~kgrec.train.pipeline.train_recommender`
(negatives, task inputs, selection, the EASE blend, final metrics, the run folder), from the trained weights."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import torch

from kgrec.errors import InputError, KgrecError
from kgrec.graph import save_graph, to_hetero
from kgrec.inference import Recommender
from kgrec.inference.run_store import write_config
from kgrec.models import PropagationGraph
from kgrec.train.blend import choose_blend
from kgrec.train.loop import fit
from kgrec.train.pipeline import (
    blend_rule,
    blend_selection,
    make_task_inputs,
    negative_sampler,
    selection_score,
    validate_refit_test,
)
from kgrec.train.result import TrainResult, write_run
from kgrec.train.rundir import RunDirectory
from kgrec.train.schedule import training_callbacks

__all__ = ["update_recommender"]


def update_recommender(
    previous: Recommender,
    events: pd.DataFrame,
    out: str | Path,
    *,
    epochs: int = 3,
    added_items: int = 0,
    quiet: bool = False,
    source: str | Path | None = None,
) -> TrainResult:
    """Train ``previous`` further on its interactions plus ``events`` (read with :func:`kgrec.data.read_interactions`)
    into the new run folder ``out``; see :func:`kgrec.api.update` for what is kept and what is chosen again.

    ``previous`` already holds any new items (:meth:`~kgrec.inference.Recommender.add_items`), its last ``added_items``
    items; ``source`` names the events' file in error messages.

    Raises:
        InputError: an event naming an unknown item, a rating run with events without ratings, a run with a
            fine-tuned text encoder or KG model, ``out`` not a folder kgrec may write.
    """
    if epochs < 1:
        raise InputError(f"epochs must be at least 1, not {epochs}")
    if previous.model.text_encoder is not None or previous.model.kg_model is not None:
        raise InputError(
            "update does not support runs with a fine-tuned text encoder or KG model (text.finetune_layers, the kg task)"
        )
    config = previous.config.override({"train.epochs": epochs, "train.batching": "full"})
    try:
        graph = previous.graph.with_interactions(events)
    except InputError as error:
        raise InputError(error.message, source) from None
    if "rating" in config.train.tasks and graph.split.train["rating"].isna().any():
        raise InputError("the run trains a rating head, so every event needs a rating", source)
    model = copy.deepcopy(previous.model)
    model.add_users(len(graph.users) - len(previous.graph.users), torch.Generator().manual_seed(config.train.seed))
    with torch.no_grad():  # a new user starts at the mean of their items' free embeddings (fold-in), not at noise
        train_log = graph.split.train
        for user in graph.users.ids[len(previous.graph.users) :]:
            items = graph.items.to_index(train_log.loc[train_log["user_id"] == user, "item_id"].to_numpy())
            model.user_emb.weight[graph.users.index_of(user)] = model.item_emb.weight[torch.from_numpy(items)].mean(0)
    # Items added after training keep their listen-only KG edges: they still send nothing into the KG.
    added = torch.arange(len(previous.graph.items) - added_items, len(graph.items))
    prop_graph = PropagationGraph.from_hetero(
        to_hetero(graph), len(graph.relations), listen_only=added if len(added) else None
    )
    recommender = Recommender(
        model, graph, config, device=previous.device, context=previous.context, prop_graph=prop_graph
    )
    run_dir = RunDirectory(out).open()
    try:
        out = run_dir.path
        write_config(out, config)
        graph_dir = out / "graph"
        save_graph(graph, str(graph_dir))
        device = recommender.device
        validate = selection_score(recommender, config) if len(graph.split.valid) else None
        ease = model.ease
        previous_weight = None if ease is None else float(ease.blend)
        if ease is not None:
            ease.blend.zero_()  # trained without the EASE term, as in train; blended again below
        # The start is not a candidate state: validation is the old split, which the new interactions do not
        # touch, so it would keep the start (and the new users unfitted) whenever the old users do not gain.
        fitted = fit(
            model,
            recommender.prop_graph,
            negative_sampler(graph, config.train.seed),
            config.train,
            device=device,
            callbacks=training_callbacks(config.train, validate, quiet)(),
            epochs=epochs,
            stage="update",
            task_inputs=make_task_inputs(recommender, device),
        )
        model.load_training_state(fitted.best_state)
        model.eval()
        blend = None
        if ease is not None:
            rule = blend_rule(config)
            blend = {
                **choose_blend(
                    model,
                    recommender.prop_graph,
                    l2_grid=(ease.l2,),
                    validate=validate,
                    baseline=fitted.best_score,
                    validate_blends=blend_selection(recommender, config) if validate is not None else None,
                    kg_weights=(ease.kg_weight,),
                    text_weights=(ease.text_weight,),
                    rule=rule,
                ),
                "rule": rule,
            }
            if validate is None:
                ease.blend.fill_(previous_weight or 0.0)
        timings = {
            "train_seconds": fitted.seconds,
            "train_seconds_to_best": fitted.seconds_to_best,
            "seconds_per_epoch": fitted.seconds / max(1, len(fitted.history)),
        }
        metrics, per_user = validate_refit_test(recommender, timings)
        result = TrainResult(recommender, metrics, timings, blend, per_user, history=fitted.history)
        extra = {
            "best_epoch": fitted.best_epoch,
            "epochs_run": len(fitted.history),
            "updated_from": str(previous.directory),
            "update": graph.stats.get("update", {}),
        }
        write_run(result, out, graph_dir, extra)
    except BaseException as error:
        run_dir.fail(bad_input=isinstance(error, KgrecError))
        raise
    finally:
        run_dir.close()
    return result
