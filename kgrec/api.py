"""The public verbs of kgrec: each CLI command calls one of these, and each is a thin layer over the package
(reading files and run folders, then one call into :mod:`kgrec.train`, :mod:`kgrec.inference`, :mod:`kgrec.explain`,
:mod:`kgrec.baselines` or :mod:`kgrec.graph`).

Over 400 lines because it is the public API on one page: every verb with its full docstring, which the API
reference renders."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from kgrec.config import RunConfig
from kgrec.data import Dataset, load_dataset, read_catalog, read_dataset, read_entity_labels
from kgrec.data.kgat import read_kgat_dir
from kgrec.embed import has_item_text
from kgrec.errors import ColdStartWarning, InputError, KgrecError
from kgrec.evaluate import EvaluationResult, PairedComparison, holm, paired_comparison
from kgrec.evaluate.metrics import TOPK_METRICS
from kgrec.explain import ExplanationPath, PathFinder, score_shares
from kgrec.graph import KnowledgeGraph, load_graph, save_graph
from kgrec.graph import build_graph as _build_graph
from kgrec.graph.sparql import LocalStore, open_store
from kgrec.graph.sparql import query as sparql_query
from kgrec.inference import Recommendation, Recommender, read_per_user, resolve_device, write_per_user
from kgrec.inference.segments import SegmentEvaluation
from kgrec.io import DirectoryLock, write_json
from kgrec.logs import library_output
from kgrec.models import fusion_resolver, propagation_resolver, resolve_propagation, scorer_resolver
from kgrec.models.propagation import sampled_training_problem
from kgrec.train.callbacks import TrainingCallback
from kgrec.train.checkpoint import CHECKPOINT_NAME, read_checkpoint
from kgrec.train.distributed import from_environment
from kgrec.train.pipeline import train_recommender
from kgrec.train.result import TrainResult
from kgrec.train.rundir import RunDirectory
from kgrec.train.tracking import tracker_resolver

__all__ = [
    "load_dataset",
    "read_dataset",
    "open_dataset",
    "build_graph",
    "context_overrides",
    "train",
    "resume",
    "update",
    "load_run",
    "evaluate",
    "evaluate_segments",
    "baseline",
    "compare",
    "recommend",
    "explain",
    "query",
]


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
    kgat_dir: str | Path | None = None,
) -> Dataset:
    """A public dataset by name, the user's own files read with ``config.data``, or a KGAT/KGIN-layout folder; exactly one."""
    if sum(source is not None for source in (dataset, interactions, kgat_dir)) != 1:
        raise InputError("give exactly one of a public dataset name, an interaction file or a KGAT/KGIN folder")
    if kgat_dir is not None:
        if any(path is not None for path in (items, users, triples, links)):
            raise InputError(
                "a KGAT/KGIN folder brings its own interactions and KG; items/users/triples/links are for own files"
            )
        return read_kgat_dir(kgat_dir, name=name)
    if dataset is not None:
        if any(path is not None for path in (items, users, triples, links)):
            raise InputError(
                f"dataset '{dataset}' brings its own files; `items`/`users`/`triples`/`links` are for own data"
            )
        return load_dataset(dataset, data_dir)
    return read_dataset(interactions, items, users, triples, links, config=config.data, name=name)


def build_graph(
    dataset: Dataset,
    config: RunConfig | None = None,
    out: str | Path | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> KnowledgeGraph:
    """Split the dataset and build its knowledge graph; save it to ``out`` atomically when given.

    Args:
        dataset: From :func:`load_dataset` or :func:`read_dataset`.
        config: The run config; only its ``graph`` section is used here.
        out: A graph directory (e.g. ``graphs/ml-100k``), replaced as a whole when the build succeeds.
        on_stage: Called with a line after each stage (built, written) and its time, for progress output.
    """
    config = config or RunConfig()
    started = time.perf_counter()
    graph = _build_graph(dataset, config.graph)
    if on_stage is not None:
        on_stage(f"split and built the graph ({time.perf_counter() - started:.1f} s)")
    if out is not None:
        started = time.perf_counter()
        save_graph(graph, str(out))
        if on_stage is not None:
            on_stage(f"wrote the RDF, PyG graph and split to {out} ({time.perf_counter() - started:.1f} s)")
        started = time.perf_counter()
        if LocalStore(out).warm() and on_stage is not None:  # the first `kgrec query` opens it instead of parsing kg.nt
            on_stage(f"built the SPARQL store ({time.perf_counter() - started:.1f} s)")
    return graph


def _check_names(config: RunConfig, graph: KnowledgeGraph) -> None:
    """Resolve every registry name before any heavy work, so a typo fails in milliseconds."""
    propagation = resolve_propagation(config.model.propagation, config.model.use_kg, len(graph.triples))
    for resolver, key, value in (
        (propagation_resolver, "model.propagation", propagation),
        (fusion_resolver, "model.fusion", config.model.fusion),
        (scorer_resolver, "model.scorer", config.model.scorer),
    ):
        try:
            resolver.lookup(value)
        except (KeyError, ValueError):
            raise InputError(f"unknown {key} '{value}' (choices: {', '.join(sorted(resolver.options))})") from None
    sampled = config.train.samples(int((graph.split.interactions["split"] == "train").sum()))
    if sampled and (
        problem := sampled_training_problem(
            config.train.tasks, propagation, propagation_resolver.lookup(propagation).needs_whole_kg
        )
    ):
        raise InputError(problem)
    if "kg" in config.train.tasks and not config.model.use_kg:
        raise InputError("train.tasks includes kg but model.use_kg is false: the kg task fine-tunes the KG embeddings")
    metric, _, k = config.eval.select_metric.partition("@")
    if metric not in TOPK_METRICS or not k.isdigit() or int(k) not in config.eval.ks:
        raise InputError(
            f"eval.select_metric '{config.eval.select_metric}' must be NAME@K with K in eval.ks {list(config.eval.ks)}"
        )


def context_overrides(graph: KnowledgeGraph, names: list[str]) -> dict[str, list[str]]:
    """Config overrides (``context.time/user/columns``) for context feature names, sorted by where each lives in ``graph``."""
    from kgrec.data.context import TIME_FEATURES, log_context_columns

    user_columns = set() if graph.user_table is None else set(graph.user_table.columns) - {"user_id"}
    log_columns = set(log_context_columns(graph.split.interactions))
    sorted_names: dict[str, list[str]] = {"context.time": [], "context.user": [], "context.columns": []}
    for name in names:
        if name in TIME_FEATURES:
            sorted_names["context.time"].append(name)
        elif name in user_columns:
            sorted_names["context.user"].append(name)
        elif name in log_columns:
            sorted_names["context.columns"].append(name)
        else:
            known = sorted(TIME_FEATURES) + sorted(user_columns) + sorted(log_columns)
            raise InputError(f"unknown context feature '{name}' for graph {graph.name} (choices: {', '.join(known)})")
    return sorted_names


def _cache_dir(graph_dir: str | Path | None, cache_dir: str | Path | None) -> Path | None:
    """Where embedding caches go: ``cache_dir`` if given, else ``<graph_dir>/cache``; checked to be writable now.

    Raises:
        InputError: when the folder cannot be written (a read-only graph needs a cache elsewhere).
    """
    import tempfile

    folder = (
        Path(cache_dir) if cache_dir is not None else (Path(graph_dir) / "cache" if graph_dir is not None else None)
    )
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise InputError(
            f"cannot write the embedding cache here ({error.strerror or error}); "
            "give a writable folder elsewhere (`cache_dir`)",
            folder,
        ) from None
    return folder


def resume(run_dir: str | Path, quiet: bool = False, cache_dir: str | Path | None = None) -> TrainResult:
    """Continue an interrupted ``train`` from its run directory's last checkpoint, with its own config and graph.

    The result is the same as the uninterrupted run's (on CPU, same seed).

    Raises:
        InputError: when the run has no readable checkpoint, is complete already, or its config or graph changed.
    """
    from kgrec.config import load_config

    run_dir = Path(run_dir)
    if (run_dir / "run.json").is_file():
        raise InputError("this run is complete (run.json exists); there is nothing to resume", run_dir)
    saved = read_checkpoint(run_dir / CHECKPOINT_NAME)
    config = load_config(run_dir / "config.yaml")
    graph_dir = saved["meta"]["graph_dir"]
    return train(
        load_graph(graph_dir), config, out=run_dir, graph_dir=graph_dir, quiet=quiet, cache_dir=cache_dir, _resume=saved
    )


def train(
    graph: KnowledgeGraph,
    config: RunConfig | None = None,
    out: str | Path | None = None,
    graph_dir: str | Path | None = None,
    quiet: bool = False,
    cache_dir: str | Path | None = None,
    _resume: dict | None = None,
    on_validation: Callable[[int, float], None] | None = None,
    tracker: str | None = None,
    tracker_uri: str | None = None,
    callbacks: Sequence[TrainingCallback] = (),
) -> TrainResult:
    """Train the recommender: PyKEEN embeddings -> text embeddings -> propagation + fusion, early-stopped on validation.

    Args:
        graph: From :func:`build_graph` or :func:`kgrec.graph.load_graph`.
        config: The complete run config (saved as ``out/config.yaml`` before training starts).
        out: Run directory; with it, the model, metrics, history, curve and timings are written there.
        graph_dir: Where ``graph`` is saved (recorded in the run; caches live in ``graph_dir/cache``).
            Without it and with ``out``, the graph is saved to ``out/graph``.
        quiet: No progress bars.
        cache_dir: Where the PyKEEN and text embeddings are cached instead of ``graph_dir/cache``
            (for a read-only graph folder).
        on_validation: Called with ``(step, score)`` after every validation during training (step counts
            from 0 across stages); an exception it raises stops training (``kgrec tune`` prunes this way).
        tracker: ``"mlflow"`` or ``"tensorboard"`` (:data:`~kgrec.train.tracking.tracker_resolver`): the
            config as parameters, each epoch's loss and validation score, the final metrics, and the
            run's config, history and curve as files; PyKEEN's own tracker logs the KG stage.
        tracker_uri: The tracker's location (an MLflow tracking URI, a TensorBoard log folder).
        callbacks: Extra training callbacks (:class:`~kgrec.train.callbacks.TrainingCallback`), run in every stage's training loop
            beside early stopping, checkpoints, progress and the tracker.

    ``out`` must be absent, empty or an earlier run (see :class:`~kgrec.train.rundir.RunDirectory`); it is
    locked while training, so a second process writing the same run stops with an error. A checkpoint is
    written after every ``train.checkpoint_every`` epochs; an interrupted run continues with :func:`resume`
    (``kgrec train --resume DIR``). A run that fails before its first checkpoint leaves nothing behind.

    Returns:
        A :class:`~kgrec.train.TrainResult`: the trained :class:`~kgrec.inference.Recommender` (best validation state,
        ``result.recommender``) and its metrics, timings, chosen blend and notes.
    """
    config = config or RunConfig()
    _check_names(config, graph)
    notes = []
    if config.model.use_text and not has_item_text(graph.catalog):
        # Every item's text would be the same string: a constant view that costs an encoder pass.
        config = config.override({"model.use_text": False})
        notes.append(
            "the catalog has no titles, descriptions or categories: trained without a text view (model.use_text=false)"
        )
    if config.model.use_kg and not len(graph.triples):
        config = config.override({"model.use_kg": False})
        notes.append(
            "the graph has no KG triples (no categories, brands or extra triples): trained without a KG view (model.use_kg=false)"
        )
    distributed, device = from_environment(resolve_device(config.train.device))
    if distributed.active and graph_dir is None:
        raise InputError(
            "data-parallel training needs the graph on disk (graph_dir), so every process reads the same caches"
        )
    tracking = None
    if (
        tracker is not None and distributed.writer
    ):  # before the run folder: a missing tracker library leaves nothing behind
        try:
            tracking = tracker_resolver.make(tracker, uri=tracker_uri)
        except KeyError:
            raise InputError(
                f"unknown tracker '{tracker}' (known: {', '.join(sorted(tracker_resolver.options))})"
            ) from None
    run_dir = None
    if out is not None and distributed.writer:  # under torchrun, rank 0 alone writes the run directory
        run_dir = RunDirectory(out, resume=_resume is not None).open()
    try:
        cache = _cache_dir(graph_dir, cache_dir)
        with library_output(quiet):
            return train_recommender(
                graph,
                config,
                run_dir=run_dir,
                graph_dir=graph_dir,
                cache_dir=cache,
                distributed=distributed,
                device=device,
                quiet=quiet,
                resume=_resume,
                on_validation=on_validation,
                tracking=tracking,
                notes=notes,
                callbacks=callbacks,
            )
    except BaseException as error:
        if tracking is not None:
            tracking.finish(success=False)
        if run_dir is not None:
            run_dir.fail(bad_input=isinstance(error, KgrecError))
        raise
    finally:
        if run_dir is not None:
            run_dir.close()


def update(
    run: Run,
    events: str | Path,
    out: str | Path,
    epochs: int = 3,
    new_items: str | Path | None = None,
    quiet: bool = False,
    device: str = "cpu",
) -> TrainResult:
    """Warm-start a trained run on its interactions plus ``events`` (new users and items get rows): a new run in ``out``.

    Instead of a full retrain: the trained weights are the start; the events join the training part
    of the run's graph (validation and test stay as they were, so the updated model is selected and
    measured like its predecessor); new users start at the mean of their items' embeddings; ``epochs``
    epochs of the whole model follow, keeping the best of them by validation. EASE is solved again on the grown interactions (its
    penalty kept) and its blend weight chosen again. ``new_items`` is a catalog file of items the
    events may name. PyKEEN and the text encoder are not run again: new items get their rows as
    ``recommend --new-items`` gives them.

    Raises:
        InputError: an event naming an item in neither the catalog nor ``new_items``; a run with a
            fine-tuned text encoder or KG model; ``out`` not a folder kgrec may write.
    """
    from kgrec.data import read_interactions
    from kgrec.train.update import update_recommender

    if epochs < 1:
        raise InputError(f"epochs must be at least 1, not {epochs}")
    previous = load_run(run, device)
    if previous.directory is not None and _same_folder(out, previous.directory):
        # Writing the update into the run it starts from would clear that run before the new one is complete:
        # a failure or a kill in between would leave neither.
        raise InputError(
            "is the run this update starts from; write the update to a new `out` folder (the run stays as it is)", out
        )
    trained_items = len(previous.graph.items)
    if new_items is not None:
        previous = previous.add_items(read_catalog(new_items, previous.config.data))
    log = read_interactions(events, previous.config.data)
    return update_recommender(
        previous,
        log,
        out,
        epochs=epochs,
        added_items=len(previous.graph.items) - trained_items,
        quiet=quiet,
        source=events,
    )


def _same_folder(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same folder (through links and relative parts), existing or not."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return a.samefile(b)
    return a.resolve() == b.resolve()


#: A trained run as the verbs take it: the recommender, a training result, or a run directory.
Run = Recommender | TrainResult | str | Path


def load_run(run: Run, device: str = "cpu") -> Recommender:
    """A trained run: the given :class:`Recommender` as it is (a :class:`~kgrec.train.TrainResult`'s own), or the run directory
    loaded onto ``device`` (``auto``: CUDA if any)."""
    if isinstance(run, TrainResult):
        return run.recommender
    return run if isinstance(run, Recommender) else Recommender.load(run, device=device)


def evaluate(
    run: Run, split: str = "test", ks: tuple[int, ...] | None = None, candidates: str = "all", device: str = "cpu"
) -> EvaluationResult:
    """Full-ranking evaluation of a trained run; with a run directory, also merged into its ``metrics.json``.

    With ``candidates="unseen"`` only items without training interactions are ranked, and the
    metrics are stored under ``"<split>_unseen"``.
    """
    recommender = load_run(run, device)
    result = recommender.evaluate(split, ks, candidates)
    if recommender.directory is not None:
        key = split if candidates == "all" else f"{split}_{candidates}"
        _store_evaluation(recommender, key, result.metrics, {key: result.per_user})
    return result


def _store_evaluation(recommender: Recommender, key: str, values: dict, per_user: dict[str, pd.DataFrame]) -> None:
    """Merge ``values`` into ``metrics.json`` under ``key`` and store the per-user tables, under the run's lock, so
    two evaluations never drop each other's numbers."""
    import json

    assert recommender.directory is not None
    with DirectoryLock(recommender.directory).acquire(wait_seconds=10.0):
        path = Path(recommender.directory) / "metrics.json"
        try:
            metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputError(f"corrupted metrics.json: {error}", path) from None
        metrics[key] = {**metrics.get(key, {}), **values}
        write_json(path, metrics)
        write_per_user(recommender.directory, per_user, recommender.graph.split_digest)


def evaluate_segments(
    run: Run, split: str = "test", ks: tuple[int, ...] | None = None, candidates: str = "all", device: str = "cpu"
) -> SegmentEvaluation:
    """The run's metrics by user activity and by held-out item popularity (:mod:`kgrec.evaluate.segments`); with a run
    directory, also stored: ``metrics.json`` under ``"<split>_segments"`` (with the bounds used) and the per-user
    tables ``kgrec compare --by`` reads."""
    from kgrec.inference.segments import evaluate_segments as by_segment
    from kgrec.inference.segments import item_segment_name

    recommender = load_run(run, device)
    result = by_segment(recommender, split, ks, candidates)
    if recommender.directory is not None:
        key = split if candidates == "all" else f"{split}_{candidates}"
        tables = {key if name == "overall" else item_segment_name(key, name): t for name, t in result.per_user.items()}
        _store_evaluation(recommender, f"{key}_segments", result.to_dict(), tables)
    return result


def baseline(
    graph: KnowledgeGraph | str | Path,
    name: str,
    split: str = "test",
    candidates: str = "all",
    ks: tuple[int, ...] = (10, 20),
    seed: int = 0,
    config: RunConfig | None = None,
    cache_dir: str | Path | None = None,
) -> EvaluationResult:
    """Evaluate a baseline (``popularity``, ``item-knn``, ``kg-knn``, ``text-knn``; :mod:`kgrec.baselines`) on a graph,
    ranked as :func:`evaluate` ranks a run: the row beside a model that says what the simplest thing gives.

    ``config``'s text section is text-knn's encoder (the defaults without one); its embeddings are cached in
    ``cache_dir``, else the graph folder's ``cache/`` when ``graph`` is a folder.
    """
    from kgrec.baselines import evaluate_baseline

    graph_dir = None if isinstance(graph, KnowledgeGraph) else Path(graph)
    loaded = graph if isinstance(graph, KnowledgeGraph) else load_graph(graph)
    cache = Path(cache_dir) if cache_dir is not None else None if graph_dir is None else graph_dir / "cache"
    text = (config or RunConfig()).text
    return evaluate_baseline(
        loaded, name, split=split, candidates=candidates, ks=ks, seed=seed, text=text, cache_dir=cache
    )


def compare(
    baseline: str | Path,
    runs: list[str | Path],
    metric: str = "ndcg@20",
    evaluation: str = "test",
    resamples: int = 10_000,
    seed: int = 0,
    by: Literal["user-activity", "item-popularity"] | None = None,
) -> list[PairedComparison]:
    """Each run against ``baseline`` on the same users: mean difference, 95% bootstrap interval, paired t-test and
    Wilcoxon p-values, Holm-adjusted over the runs. Reads each run's ``per_user.parquet``.

    ``evaluation``: ``"test"``, ``"valid"`` or ``"test_unseen"`` (after ``kgrec evaluate --candidates unseen``).
    A context-aware run ranks (user, context) queries; a user's value is then the mean over their queries.
    ``by``: one comparison per segment (:mod:`kgrec.evaluate.segments`; the runs evaluated with
    :func:`evaluate_segments` first), Holm-adjusted over every (segment, run) pair.

    Raises:
        InputError: a run without per-user metrics for ``evaluation`` or without ``metric``, or runs
            evaluated on different splits or on different users.
    """
    from kgrec.evaluate import ITEM_POPULARITY, USER_ACTIVITY, segment_labels, segment_of
    from kgrec.inference.segments import item_segment_name

    if not runs:
        raise InputError("compare needs a baseline run and at least one run to compare with it")
    if by not in (None, "user-activity", "item-popularity"):
        raise InputError(f"compare --by takes user-activity or item-popularity, not '{by}'")
    stored = {str(run): read_per_user(run) for run in [baseline, *runs]}
    groups: dict[str | None, dict[str, pd.DataFrame]] = {}
    if by == "item-popularity":
        for label in segment_labels(ITEM_POPULARITY):
            name = item_segment_name(evaluation, label)
            base = stored[str(baseline)]
            if base.loc[base["evaluation"] == name, metric if metric in base.columns else "user"].notna().sum() >= 2:
                groups[label] = {run: _per_user_of(table, name, metric, run) for run, table in stored.items()}
        if not groups:
            raise InputError(
                "no per-user metrics by item segment: run 'kgrec evaluate --segments' on it first", baseline
            )
    else:
        tables = {run: _per_user_of(table, evaluation, metric, run) for run, table in stored.items()}
        if by is None:
            groups[None] = tables
        else:
            for run, table in tables.items():
                if "train_interactions" not in table.columns or table["train_interactions"].isna().any():
                    raise InputError(
                        f"no users' training activity with '{evaluation}': run 'kgrec evaluate --segments' first", run
                    )
            for index, label in enumerate(segment_labels(USER_ACTIVITY)):
                parts = {
                    run: t[segment_of(t["train_interactions"].to_numpy(), USER_ACTIVITY) == index]
                    for run, t in tables.items()
                }
                if parts[str(baseline)].groupby("user")[metric].mean().notna().sum() >= 2:  # a test needs two users
                    groups[label] = parts
    stats = [
        (segment, run, _paired(tables, str(baseline), run, metric, resamples, seed))
        for segment, tables in groups.items()
        for run in map(str, runs)
    ]
    holm_t, holm_w = holm([s["t_p"] for *_, s in stats]), holm([s["wilcoxon_p"] for *_, s in stats])
    return [
        PairedComparison(
            run=run, baseline=str(baseline), metric=metric, holm_t_p=ht, holm_wilcoxon_p=hw, segment=segment, **s
        )
        for (segment, run, s), ht, hw in zip(stats, holm_t, holm_w)
    ]


def _per_user_of(stored: pd.DataFrame, evaluation: str, metric: str, run: str | Path) -> pd.DataFrame:
    """A run's per-user table of one evaluation, checked to hold ``metric``."""
    table = stored[stored["evaluation"] == evaluation]
    if table.empty:
        found = ", ".join(sorted(stored["evaluation"].unique()))
        raise InputError(f"no per-user '{evaluation}' metrics (it has: {found})", run)
    if metric not in table.columns or table[metric].isna().all():
        ignored = ("evaluation", "split_digest", "user", "query", "train_interactions")
        known = ", ".join(c for c in table.columns if c not in ignored and table[c].notna().any())
        raise InputError(f"no per-user metric '{metric}' (known: {known})", run)
    return table


def _paired(tables: dict[str, pd.DataFrame], baseline: str, run: str, metric: str, resamples: int, seed: int) -> dict:
    """The paired statistics of ``run`` against ``baseline`` over the same users (a user's queries averaged)."""
    reference, digest = tables[baseline]["split_digest"].iloc[0], tables[run]["split_digest"].iloc[0]
    if digest != reference:
        raise InputError(
            f"evaluated on another split than the baseline {baseline} (split digest {digest} vs {reference}): "
            "a paired comparison needs the same held-out interactions",
            run,
        )
    base = tables[baseline].groupby("user", sort=True)[metric].mean()
    other = tables[run].groupby("user", sort=True)[metric].mean()
    if not other.index.equals(base.index):
        raise InputError(
            f"ranked other users than the baseline {baseline} ({len(other)} vs {len(base)}): "
            "evaluate both with the same candidates",
            run,
        )
    both = base.notna() & other.notna()  # AUC is undefined for some users
    return paired_comparison(base[both].to_numpy(), other[both].to_numpy(), resamples, seed) | {
        "users": int(both.sum())
    }


def recommend(
    run: Run,
    user_ids: list[str],
    k: int = 10,
    explain: bool = False,
    endpoint: str | None = None,
    history: list[str] | None = None,
    new_items: str | Path | None = None,
    context: dict[str, str] | None = None,
    new_user: bool = False,
    retrieval: str = "exact",
    device: str = "cpu",
    labels: str | Path | dict[str, str] | None = None,
    include_seen: bool | None = None,
    unknown_users: Literal["error", "cold-start"] = "error",
) -> list[Recommendation]:
    """Top-``k`` unseen items for each user id, with titles and scores; with ``explain``, each item's
    best explanation path (entity ``labels`` as in :func:`explain`) and how its score divides among
    graph view, text view and the score terms (:func:`kgrec.explain.score_shares`). With ``history`` (item ids),
    also one recommendation for a new user who interacted with those items (no retraining; returned last,
    as user ``new``; it has no training history to explain from). With ``new_items`` (a catalog file), those
    items are added first (text and KG links, no retraining) and compete with the rest. ``context``
    (``{"hour": "21", "device": "mobile"}``) conditions a context-aware run; with ``new_user``, the new user
    is known by the context's attributes (``age``, ``gender`` ...) and ``history``, if any. ``retrieval="faiss"``
    takes candidates from an approximate inner-product index (see :meth:`Recommender.recommend`). ``include_seen``
    keeps the items a user already interacted with among the candidates; by default it follows the run's task: a run
    trained for ``eval.task: in-context`` ("which of my items now") keeps them, a discovery run does not.
    ``unknown_users="cold-start"`` answers a user id the run does not know as the server does (the most popular items,
    or from stated attributes; :meth:`Recommender.recommend_cold_start`) with a :class:`~kgrec.errors.ColdStartWarning`,
    instead of an error."""
    if (history or new_user) and explain:
        raise InputError("explanations work for users in the graph; a new user's history is not part of it")
    recommender = load_run(run, device)
    if new_items is not None:
        recommender = recommender.add_items(read_catalog(new_items, recommender.config.data))
    if include_seen is None:
        include_seen = recommender.config.eval.task == "in-context"
    strangers = (
        {user for user in user_ids if user not in recommender.graph.users} if unknown_users == "cold-start" else set()
    )
    known = [user for user in user_ids if user not in strangers]
    answered = {
        rec.user_id: rec
        for rec in (
            recommender.recommend(known, k, exclude_seen=not include_seen, context=context, retrieval=retrieval)
            if known
            else []
        )
    }
    for user in dict.fromkeys(user for user in user_ids if user in strangers):
        warnings.warn(
            f"user '{user}' is not in the run: a cold-start answer (the most popular items, or from stated attributes)",
            ColdStartWarning,
            stacklevel=2,
        )
        answered[user] = recommender.recommend_cold_start(user, k, context)
    recommendations = [answered[user] for user in user_ids]
    if history or new_user:
        recommendations.append(recommender.recommend_for_history(list(history or []), k, context=context))
    if not explain:
        return recommendations
    finder = PathFinder(recommender, labels=_label_store(endpoint), entity_labels=_entity_labels(labels))
    explainable = [rec for rec in recommendations if rec.user_id not in strangers]
    shares = iter(
        score_shares(recommender, [rec.user_id for rec in explainable], [rec.item_ids for rec in explainable], context)
        if explainable
        else []
    )
    explained = []
    for rec in recommendations:
        if rec.user_id in strangers:  # no history to explain from, no learned score to divide
            explained.append(dataclasses.replace(rec, explanations=[None] * len(rec.item_ids), shares=None))
            continue
        rec_shares = next(shares)
        paths = [finder.find(rec.user_id, item_id, max_paths=1) for item_id in rec.item_ids]
        explained.append(
            dataclasses.replace(
                rec, explanations=[found[0].to_dict() if found else None for found in paths], shares=rec_shares
            )
        )
    return explained


def explain(
    run: Run,
    user_id: str,
    item_id: str,
    max_paths: int = 5,
    max_hops: int = 2,
    max_fanout: int = 50,
    endpoint: str | None = None,
    device: str = "cpu",
    labels: str | Path | dict[str, str] | None = None,
) -> list[ExplanationPath]:
    """Top paths user -> training-history item -> KG hops -> ``item_id``, scored by the trained model.

    Entity labels come from ``labels`` first (a file for :func:`kgrec.data.read_entity_labels`, or a
    dict), then from ``endpoint`` when the graph is served by a SPARQL endpoint, then from the graph;
    an entity with none is described by its relation (``a shared genre (m.02kdv5l)``).
    """
    recommender = load_run(run, device)
    finder = PathFinder(
        recommender,
        max_fanout=max_fanout,
        max_hops=max_hops,
        labels=_label_store(endpoint),
        entity_labels=_entity_labels(labels),
    )
    return finder.find(str(user_id), str(item_id), max_paths)


def _label_store(endpoint: str | None):  # noqa: ANN202 - a labels callable or None
    # A local graph's own labels are already in the KnowledgeGraph (kg.nt is written from it); parsing kg.nt with
    # rdflib only to read them again took 11 s on ml-100k. An endpoint may know more.
    return None if endpoint is None else open_store(None, endpoint).labels


def _entity_labels(labels: str | Path | dict[str, str] | None) -> dict[str, str] | None:
    return labels if labels is None or isinstance(labels, dict) else read_entity_labels(labels)


def query(
    sparql: str,
    graph_dir: str | Path | None = None,
    endpoint: str | None = None,
    allow_service: bool = False,
    backend: str | None = None,
) -> pd.DataFrame:
    """SPARQL SELECT/ASK over a built graph's RDF (or an endpoint serving it), as a table.

    Federated parts (``SERVICE <url>``, ``FROM <url>``) would send requests to other machines; they
    are refused unless ``allow_service``. ``backend``: the local store, ``oxigraph`` (default) or ``rdflib``.
    """
    return sparql_query(sparql, graph_dir, endpoint, allow_service, backend)
