"""The training pipeline: embeddings, model assembly, the schedule, the final metrics and the run directory.

:func:`train_recommender` is the one named unit a training run is; :func:`kgrec.api.train` wraps it with the
run directory's claim, the tracker and the clean-up after a failure. Its steps (:func:`negative_sampler`,
:func:`make_task_inputs`, :func:`selection_score`, :func:`validate_refit_test`, :func:`~kgrec.train.result.write_run`) are
shared with :func:`kgrec.train.update.update_recommender`, which trains an existing run further.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from kgrec.config import RunConfig
from kgrec.data import ContextFeatures
from kgrec.embed import encode_item_texts, train_kg_embeddings
from kgrec.embed.text import text_tuner
from kgrec.errors import InputError
from kgrec.evaluate import link_prediction
from kgrec.graph import KnowledgeGraph, save_graph
from kgrec.inference import ModelShapes, Recommender, assemble_model, repeat_enabled
from kgrec.inference.run_store import write_config
from kgrec.io import sha256_bytes
from kgrec.logs import bars_wanted, stage_line
from kgrec.train.callbacks import TrainingCallback
from kgrec.train.checkpoint import CHECKPOINT_NAME, Checkpointer
from kgrec.train.distributed import Distributed
from kgrec.train.objectives import TaskInputs
from kgrec.train.result import TrainResult, write_run
from kgrec.train.rundir import RunDirectory
from kgrec.train.sampling import NegativeSampler
from kgrec.train.schedule import run_schedule
from kgrec.train.terms_fit import train_kg_neighbours, train_repeat_use
from kgrec.train.tracking import Tracker, flatten

__all__ = [
    "blend_rule",
    "blend_selection",
    "validate_refit_test",
    "negative_sampler",
    "refit_linear",
    "make_task_inputs",
    "selection_score",
    "train_recommender",
    "training_context",
]


def selection_score(recommender: Recommender, config: RunConfig):  # noqa: ANN202 - a model -> score callable
    """The model-selection score: the ranking metric, or minus the validation RMSE when only ratings are trained."""
    tasks = config.train.tasks
    if "rank" in tasks:
        select, candidates = config.eval.select_metric, config.eval.candidates
        return lambda _: recommender.evaluate("valid", candidates=candidates, topk_only=True).metrics[select]
    if "rating" in tasks:
        return lambda _: -recommender.rating_errors("valid")["rmse"]
    return None  # kg alone: no interaction objective to select on; train.epochs run in full


def blend_rule(config: RunConfig) -> str:
    """The blend rule a run uses: ``model.blend_rule``, with ``auto`` resolved (one-se-blend when ranking new items)."""
    rule = config.model.blend_rule
    if rule == "auto":
        return "one-se-blend" if config.eval.candidates == "unseen" else "best"
    return rule


def blend_selection(recommender: Recommender, config: RunConfig):  # noqa: ANN202 - (model, weights) -> scores
    """The selection metric for several EASE blend weights in one pass (ranking runs only)."""
    if "rank" not in config.train.tasks:
        return None
    select, candidates, rule = config.eval.select_metric, config.eval.candidates, blend_rule(config)
    if rule != "best":  # the one-se rules compare users' scores between blends (and, for one-se-blend, items' totals)
        per_item = rule == "one-se-blend"
        return lambda _, weights: [
            (m[select], m["per_user"], *((m["per_item"],) if per_item else ()))
            for m in recommender.evaluate_blends(weights, "valid", candidates, per_user=select, per_item=per_item)
        ]
    return lambda _, weights: [m[select] for m in recommender.evaluate_blends(weights, "valid", candidates)]


def negative_sampler(graph: KnowledgeGraph, seed: int) -> NegativeSampler:
    """Negatives for the graph's training interactions."""
    train_log = graph.split.train
    return NegativeSampler(
        graph.users.to_index(train_log["user_id"].to_numpy()),
        graph.items.to_index(train_log["item_id"].to_numpy()),
        len(graph.items),
        seed=seed,
    )


def make_task_inputs(recommender: Recommender, device: torch.device, kg_training: Any = None) -> TaskInputs:
    """What the training objectives read besides the sampled pairs: context tokens, ratings, PyKEEN's triples."""
    train_log, config = recommender.graph.split.train, recommender.config
    return TaskInputs(
        context=training_context(recommender, device),
        context_dropout=config.context.dropout,
        ratings=None
        if recommender.model.rating is None
        else torch.tensor(train_log["rating"].to_numpy(), dtype=torch.float32, device=device),
        kg_training=kg_training,
    )


def train_recommender(
    graph: KnowledgeGraph,
    config: RunConfig,
    *,
    run_dir: RunDirectory | None,
    graph_dir: str | Path | None,
    cache_dir: Path | None,
    distributed: Distributed,
    device: torch.device,
    quiet: bool = False,
    resume: dict | None = None,
    on_validation: Callable[[int, float], None] | None = None,
    tracking: Tracker | None = None,
    notes: Sequence[str] = (),
    callbacks: Sequence[TrainingCallback] = (),
) -> TrainResult:
    """The training pipeline, in a run directory already claimed (:func:`kgrec.api.train` claims it and cleans up).

    In order: the run's config is written; PyKEEN entity embeddings and item text embeddings are computed
    (or read from the cache); the model is assembled; the schedule trains it (backbone, then the KG/text
    views, each a :func:`~kgrec.train.loop.fit` with its callbacks, then the EASE blend); a repeat-use term (in-context
    task) learns its count weights and its blend weight (:func:`~kgrec.train.terms_fit.train_repeat_use`); EASE is solved again
    on training plus validation when ``train.refit_linear``; validation and test are measured once; the run
    directory is written (``run.json`` last) and the checkpoint removed.

    Args:
        graph: The graph to train on.
        config: The complete run config.
        run_dir: The claimed run directory, or None to keep nothing on disk.
        graph_dir: Where ``graph`` is saved; None with a run directory saves it under ``<run>/graph``.
        cache_dir: Where embedding caches live (None: no cache).
        distributed: This process's place in a data-parallel group.
        device: Where training runs.
        quiet: No progress bars.
        resume: A checkpoint to continue from (:func:`kgrec.api.resume`).
        on_validation: Called with ``(step, score)`` after every validation.
        tracking: An experiment tracker, started here and finished at the end.
        notes: What the caller decided for the user to read (kept in ``run.json``).
        callbacks: Extra training callbacks (:class:`~kgrec.train.callbacks.TrainingCallback`) for every ``fit`` of the schedule.

    Returns:
        The trained recommender with its metrics, timings, chosen blend and notes.
    """
    from kgrec.config import dump_config

    checkpoint = None
    out = None if run_dir is None else run_dir.path
    run_name = out.name if out is not None else f"{graph.name}-{config.model.fusion}"
    if out is not None:
        write_config(out, config)
        if graph_dir is None:
            graph_dir = out / "graph"
            save_graph(graph, str(graph_dir))
            cache_dir = cache_dir or graph_dir / "cache"
        meta = {
            "config": sha256_bytes(dump_config(config).encode())[:16],
            "graph": graph.digest,
            "graph_dir": str(Path(graph_dir).resolve()),
        }
        checkpoint = Checkpointer(out / CHECKPOINT_NAME, config.train.checkpoint_every, meta, resume)
    timings: dict[str, float] = {}

    tasks = config.train.tasks
    train_log = graph.split.train
    if "rating" in tasks and ("rating" not in train_log or train_log["rating"].isna().any()):
        raise InputError(
            "train.tasks includes rating but the interaction log has no rating for every training interaction"
        )
    features = ContextFeatures.fit(train_log, graph.user_table, config.context) if config.context.enabled else None
    if not distributed.writer:
        distributed.barrier()  # rank 0 trains PyKEEN and encodes text first; the others then read its cache
    kg_emb = kge = None
    if config.model.use_kg:
        kge = train_kg_embeddings(
            graph,
            config.kge,
            cache_dir,
            device=str(device),
            result_tracker=None if tracking is None else tracking.pykeen(run_name, out),
            progress=bars_wanted(quiet),
        )
        kg_emb, timings["kge_seconds"] = kge.entity_emb, kge.seconds
        stage_line(
            quiet,
            f"PyKEEN {config.kge.model}: "
            + ("from the cache" if kge.cached else f"{config.kge.epochs} epochs in {kge.seconds:.0f} s"),
        )
    text_emb = text_encoder = None
    if config.model.use_text:
        text = encode_item_texts(graph.catalog, config.text, cache_dir, device=str(device), progress=bars_wanted(quiet))
        text_emb, timings["text_seconds"] = text.text_emb, text.seconds
        stage_line(
            quiet,
            f"text: {len(text.text_emb):,} items "
            + ("from the cache" if text.cached else f"encoded in {text.seconds:.0f} s"),
        )
        if config.text.finetune_layers > 0:
            text_encoder = text_tuner(graph.catalog, config.text, device=str(device))

    if distributed.writer:
        distributed.barrier()
    if tracking is not None:  # after PyKEEN, whose MLflow tracker opens a run of its own; train() closes it on failure
        tracking.start(run_name, flatten(config.model_dump(mode="json")), out)
    torch.manual_seed(config.train.seed)
    shapes = ModelShapes(
        len(graph.users),
        len(graph.items),
        len(graph.relations),
        kg_shape=None if kg_emb is None else tuple(kg_emb.shape),
        text_shape=None if text_emb is None else tuple(text_emb.shape),
        context=None if features is None else (features.num_tokens, features.num_fields),
        rating="rating" in tasks,
        kg_model="kg" in tasks,
        repeat_fields=(0 if features is None else features.num_fields) if repeat_enabled(config) else None,
        kg_neighbours=config.model.kg_neighbours_max_degree
        if config.model.kg_neighbours == "on" and len(graph.triples)
        else None,
    )
    model = assemble_model(
        config,
        graph,
        shapes,
        kg_emb=kg_emb,
        text_emb=text_emb,
        text_encoder=text_encoder,
        context=features,
        rating_mean=float(train_log["rating"].mean()) if "rating" in tasks else 0.0,
        kg_training=None if kge is None else kge.training,
        kg_state=None if kge is None else kge.model_state,
    )
    recommender = Recommender(model, graph, config, device=device, context=features)
    with torch.no_grad():
        # Items without training interactions never receive a collaborative gradient; a zero free
        # embedding lets their KG and text views speak instead of random noise.
        model.item_emb.weight[recommender.prop_graph.item_degree.cpu() == 0] = 0.0
    sampler = negative_sampler(graph, config.train.seed)
    task_inputs = make_task_inputs(
        recommender, device, kge.training.to(device) if kge is not None and model.kg_model is not None else None
    )
    validate = selection_score(recommender, config) if len(graph.split.valid) else None
    if validate is not None and on_validation is not None:
        validate = _reporting(validate, on_validation)
    epochs = itertools.count()
    schedule = run_schedule(
        model,
        recommender.prop_graph,
        sampler,
        config.train,
        validate=validate,
        device=device,
        ease_l2=config.model.ease_l2,
        quiet=quiet or not distributed.writer,
        task_inputs=task_inputs,
        checkpoint=checkpoint,
        distributed=distributed,
        validate_blends=blend_selection(recommender, config) if validate is not None else None,
        ease_kg_weights=config.model.ease_kg_weight if config.model.use_kg and len(graph.triples) else (0.0,),
        ease_text_weights=config.model.ease_text_weight if text_emb is not None else (0.0,),
        on_epoch=None
        if tracking is None
        else lambda row: tracking.log_metrics(
            {k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "epoch"}, step=next(epochs)
        ),
        blend_rule=blend_rule(config),
        callbacks=callbacks,
    )
    blend = None if schedule.blend is None else {**schedule.blend, "rule": blend_rule(config)}
    repeat = train_repeat_use(recommender, config)  # after the EASE blend: the term is blended onto the model as chosen
    if repeat is not None:
        timings["repeat_seconds"] = repeat.pop("repeat_seconds")
        blend = {**(blend or {}), **repeat}
    kg_neighbours = train_kg_neighbours(recommender, config)  # last: blended onto the model as chosen so far
    if kg_neighbours is not None:
        blend = {**(blend or {}), **kg_neighbours}
    timings.update(
        train_seconds=schedule.seconds,
        train_seconds_to_best=schedule.seconds_to_best,
        seconds_per_epoch=schedule.seconds / max(1, len(schedule.history)),
    )

    metrics, per_user = validate_refit_test(recommender, timings)
    if kge is not None:
        # Link prediction on the held-out triples: PyKEEN's as trained, and again after joint fine-tuning.
        metrics["kge"] = kge.metrics
        if model.kg_model is not None and config.kge.link_prediction:
            metrics["kge_finetuned"] = link_prediction(model.kg_model, kge.testing, kge.training)
    result = TrainResult(recommender, metrics, timings, blend, per_user, list(notes), schedule.history)
    if out is not None:
        extra = {"best_epoch": schedule.best_epoch, "epochs_run": len(schedule.history), "processes": distributed.world}
        assert graph_dir is not None  # saved under out/graph above when not given
        write_run(result, out, graph_dir, extra)
        (out / CHECKPOINT_NAME).unlink(missing_ok=True)  # complete: run.json and model.pt replace it
    if tracking is not None:
        final = {
            f"{split}/{name}": value
            for split in ("valid", "test")
            for name, value in metrics.get(split, {}).items()
            if isinstance(value, (int, float))
        }
        tracking.log_metrics({**final, **{f"time/{k}": v for k, v in timings.items()}})
        if out is not None:
            tracking.log_files(
                [out / name for name in ("config.yaml", "metrics.json", "history.csv", "curve.png", "run.json")]
            )
        tracking.finish(success=True)
    distributed.close()
    return result


def training_context(recommender: Recommender, device: torch.device) -> torch.Tensor | None:
    """``(N, F)`` context tokens of each training interaction, on ``device``; None for a run without context."""
    context = recommender.log_context
    if context is None:
        return None
    in_train = (recommender.graph.split.interactions["split"] == "train").to_numpy()
    return torch.from_numpy(context[in_train]).to(device)


def _reporting(validate: Callable[[Any], float], report: Callable[[int, float], None]) -> Callable[[Any], float]:
    """``validate`` that also hands each score to ``report`` with its running step number."""
    steps = itertools.count()

    def validate_and_report(model: Any) -> float:
        score = validate(model)
        report(next(steps), score)
        return score

    return validate_and_report


def validate_refit_test(recommender: Recommender, timings: dict) -> tuple[dict, dict]:
    """Validation and test metrics of a trained recommender, read once after training (their times into ``timings``),
    and the per-user metrics of each.

    With ``train.refit_linear``, EASE is solved again on training plus validation between the two
    (validation is measured on the model it selected, test on the model that is saved).
    """
    metrics: dict = {}
    per_user: dict = {}
    for split in ("valid", "test"):
        if split == "test" and recommender.config.train.refit_linear:
            refit_linear(recommender, timings)
        if len(recommender.graph.split.part(split)):
            result = recommender.evaluate(split)
            metrics[split] = {**result.metrics, **recommender.rating_errors(split)}
            timings[f"eval_{split}_seconds"] = result.seconds
            per_user[split] = result.per_user
    return metrics, per_user


def refit_linear(recommender: Recommender, timings: dict) -> None:
    """Give the score terms training plus validation interactions: EASE solved again (at the penalty and side weights
    chosen) when blended in, the repeat term's counts."""
    from kgrec.train.blend import fit_linear

    ease = recommender.model.ease
    if not recommender.model.terms() or not len(recommender.graph.split.valid):
        return
    started = time.perf_counter()
    recommender.use_history(
        "train", "valid"
    )  # what Recommender.load gives the saved run; the repeat term counts both too
    if ease is not None and ease.active:  # blended out: its weights are never read
        fit_linear(recommender.model, recommender.prop_graph, ease.l2, ease.kg_weight, ease.text_weight)
    timings["refit_linear_seconds"] = time.perf_counter() - started
