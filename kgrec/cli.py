"""The ``kgrec`` command line: flags become config overrides, then one library call per command.

Long (over 1,000 lines) on purpose: each command is a thin function whose click declarations (options, choices,
help) are most of its lines, and one file keeps the whole command table, with the shared option types, in one
place. Nothing heavy is imported at module level, so ``kgrec --help`` answers in under half a second.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import yaml

from kgrec.config import PRESETS, RunConfig, load_config
from kgrec.errors import ColdStartWarning, ContextWarning, KgrecError
from kgrec.io import json_safe, safe_name

# Flag name -> dotted config key: the whole mapping from command line to configuration.
_BUILD_FLAGS = {
    "split": "graph.split.kind",
    "seed": "graph.split.seed",
    "min_rating": "graph.split.min_rating",
    "cold_item_share": "graph.split.cold_item_share",
}


class _Group(click.Group):
    """Turns kgrec's own errors into one line on stderr and exit code 2 (a traceback only with --debug)."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        try:
            return super().invoke(ctx)
        except (KgrecError, OSError) as error:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            click.echo(f"kgrec: error: {_one_line(error)}", err=True)
            sys.exit(2)
        except click.UsageError as error:  # a bad flag or value: one line too, with where to look
            command = error.ctx.command_path if error.ctx is not None else "kgrec"
            click.echo(f"kgrec: error: {_flat(error.format_message())} (see '{command} --help')", err=True)
            sys.exit(2)


def _one_line(error: Exception) -> str:
    """The error as one line; an OSError (read-only folder, full disk, a file where a folder should be) names its path."""
    if isinstance(error, OSError) and not isinstance(error, KgrecError):
        where = error.filename if error.filename is not None else ""
        what = error.strerror or str(error)
        text = f"{where}: {what}" if where else what
        blocking = next((p for p in (Path(where), *Path(where).parents) if p.is_file()), None) if where else None
        if error.errno in (errno.EEXIST, errno.ENOTDIR) and blocking is not None:
            text = f"{blocking}: is a file, where a folder is needed"
        if error.errno == errno.ENOSPC:
            text += " (free some space and run the command again; nothing was left half-written)"
        return _flat(text)
    return _flat(_as_flags(str(error)))


# Library errors name arguments in backticks (`out`, `cache_dir`) and settings as config keys (model.use_kg=false);
# on the command line those are flags.
_SETTING = re.compile(r"(?<![\w.-])(?<!--set )((?:data|graph|kge|text|model|train|eval|context)\.[\w.]+=[^\s,;)]+)")


def _as_flags(message: str) -> str:
    message = re.sub(r"`([a-z][a-z_]*)`", lambda match: "--" + match.group(1).replace("_", "-"), message)
    return _SETTING.sub(r"--set \1", message)


def _config(
    config_path: str | None, flags: dict, mapping: dict[str, str], settings: tuple[str, ...], preset: str | None = None
) -> RunConfig:
    if config_path is None and preset in PRESETS:
        config_path = preset
    config = load_config(config_path) if config_path else RunConfig()
    overrides = {mapping[k]: v for k, v in flags.items() if k in mapping and v is not None}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep:
            raise KgrecError(f"--set takes KEY=VALUE, got '{setting}'")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise KgrecError(
                f"--set {key.strip()}: the value '{value}' is not valid YAML ({' '.join(str(error).split())})"
            ) from None
    return config.override(overrides) if overrides else config


class _Option(click.Option):
    """An option whose default shows as ``[10]``, the way the options whose default lives in the config write it."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        return None if record is None else (record[0], re.sub(r"\[default: ([^\]]*)\]", r"[\1]", record[1]))


def option(*names: str, **settings: Any) -> Callable:
    """``click.option`` with kgrec's way of showing defaults."""
    return click.option(*names, cls=_Option, **settings)


class _PathType(click.Path):
    """A path option that refuses an empty value: ``--out ""`` (an unset variable) would otherwise mean the current
    folder, or the default place, and write where nobody asked."""

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201 - click's signature
        if isinstance(value, str) and not value.strip():
            self.fail("is empty (an unset variable?)", param, ctx)
        return super().convert(value, param, ctx)


@click.group(cls=_Group)
@click.version_option(package_name="kgrec")
@option("--debug", is_flag=True, help="Show full tracebacks.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """kgrec: knowledge-graph-augmented recommendations with explanations."""
    ctx.obj = {"debug": debug}


@main.command("build-graph")
@option("--dataset", help="A public dataset by name (ml-100k, ml-1m, alibaba-fashion).")
@option("--data-dir", type=_PathType(file_okay=False), help="Folder holding public datasets [env KGREC_DATA_DIR].")
@option("--interactions", type=_PathType(dir_okay=False), help="Own interaction log (CSV, TSV, Parquet, .inter).")
@option("--items", type=_PathType(dir_okay=False), help="Item catalog (item, title, description, category, brand).")
@option("--users", type=_PathType(dir_okay=False), help="User attribute table.")
@option("--triples", type=_PathType(dir_okay=False), help="Extra knowledge: Turtle, N-Triples, TSV or .kg.")
@option("--links", type=_PathType(dir_okay=False), help="Item-to-entity table (.link or TSV item, entity).")
@option(
    "--kgat-dir",
    type=_PathType(file_okay=False),
    help="A dataset in the KGAT/KGIN layout (train.txt, test.txt, kg_final.txt); use with --split given.",
)
@option(
    "--download/--no-download",
    default=True,
    help="Download a --dataset that is not in the data directory from its public source, checksums verified [download].",
)
@option("--name", help="Graph name [the dataset's].")
@option("--out", type=_PathType(file_okay=False), help="Graph directory [default: graphs/<name>].")
@option(
    "--split",
    type=click.Choice(["random", "loo", "cold-items", "given"]),
    help="Split kind [random; given keeps a dataset's own test set].",
)
@option("--seed", type=int, help="Split seed [2020].")
@option("--min-rating", type=float, help="Only ratings at least this count as positives.")
@option("--cold-item-share", type=float, help="Share of items held out for --split cold-items [0.2].")
@option(
    "--config",
    "config_path",
    type=_PathType(dir_okay=False),
    help="Config file (YAML or TOML) or preset name [the dataset's preset, else defaults].",
)
@option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any config value, e.g. data.interactions.user=customer.",
)
@option("--quiet", is_flag=True, help="No progress lines on a terminal (the counts are still printed).")
def build_graph(
    config_path,
    settings,
    dataset,
    data_dir,
    interactions,
    items,
    users,
    triples,
    links,
    kgat_dir,
    download,
    name,
    out,
    quiet,
    **flags,
) -> None:
    """Build the knowledge graph, the PyG graph and the saved split; print their counts."""
    import time

    from kgrec import api
    from kgrec.data import dataset_missing, download_dataset, resolve_data_dir
    from kgrec.graph import format_stats
    from kgrec.logs import bars_wanted

    if dataset is not None and download and dataset_missing(dataset, data_dir):
        # As PyG and RecBole do: a first run on an online machine fetches the public data itself.
        click.echo(
            f"{dataset} is not in {resolve_data_dir(data_dir)}: downloading it (every file's checksum is verified)",
            err=True,
        )
        click.echo(
            f"downloaded {dataset} into {download_dataset(dataset, data_dir, show_progress=bars_wanted(quiet))}",
            err=True,
        )

    if kgat_dir is not None and flags.get("split") is None and config_path is None:
        flags["split"] = "given"  # the layout's point is its published test set; --split/--set still choose otherwise
    config = _config(config_path, flags, _BUILD_FLAGS, settings, preset=dataset)
    # Progress is for a person at a terminal; a pipe or a log gets the counts and, on failure, the one error line.
    stage = None if quiet or not sys.stderr.isatty() else (lambda line: click.echo(f"build-graph: {line}", err=True))
    started = time.perf_counter()
    data = api.open_dataset(config, dataset, data_dir, interactions, items, users, triples, links, name, kgat_dir)
    if stage is not None:
        stage(
            f"read {len(data.interactions):,} interactions, {len(data.items):,} items and {len(data.triples):,} triples "
            f"({time.perf_counter() - started:.1f} s)"
        )
    out = Path(out) if out else Path("graphs") / safe_name(name or data.name, "graph name")
    graph = api.build_graph(data, config, out=out, on_stage=stage)
    click.echo(format_stats(graph.stats))
    click.echo(f"wrote {out}")


_TRAIN_FLAGS = {
    "fusion": "model.fusion",
    "propagation": "model.propagation",
    "kge_model": "kge.model",
    "text_model": "text.model",
    "epochs": "train.epochs",
    "device": "train.device",
    "seed": "train.seed",
    "task_weighting": "train.task_weighting",
    "batching": "train.batching",
}


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("hour=21", "device=mobile,age=30")`` as a dict; a token without '=' is an error."""
    found: dict[str, str] = {}
    for pair in (p for text in pairs for p in text.split(",") if p.strip()):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise KgrecError(f"--context takes KEY=VALUE pairs, got '{pair}'")
        found[key.strip()] = value.strip()
    return found


def _device_option(default: str | None = "auto"):  # noqa: ANN202 - a click decorator
    """The one ``--device`` of every command (train's default comes from its config, which defaults to auto)."""
    return option(
        "--device",
        default=default,
        metavar="DEVICE",
        help="Where the model runs: auto (CUDA when torch sees one), cpu, cuda or cuda:N [auto].",
    )


def _split_option():  # noqa: ANN202 - a click decorator
    """``--split``: which held-out part a ranking measures (evaluate, baseline)."""
    return option(
        "--split",
        type=click.Choice(["test", "valid"]),
        default="test",
        show_default=True,
        help="Which held-out part to rank.",
    )


def _candidates_option():  # noqa: ANN202 - a click decorator
    """``--candidates``: every item, or only those unseen in training (evaluate, baseline)."""
    return option(
        "--candidates",
        type=click.Choice(["all", "unseen"]),
        default="all",
        show_default=True,
        help="Rank all items, or only items never seen in training (cold-start evaluation).",
    )


class _RegistryChoice(click.Choice):
    """A choice among a registry's names, read when a value is checked: the registries live in kgrec.models, whose
    torch and PyG imports take seconds, which ``--help`` must not wait for. Help shows the names kgrec ships
    (``shipped``; a test keeps them equal to the registry's)."""

    def __init__(self, resolver_name: str, shipped: tuple[str, ...], extra: tuple[str, ...] = ()) -> None:
        self.resolver_name, self.shipped, self.extra = resolver_name, shipped, extra
        self._names: tuple[str, ...] | None = None
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:
        if self._names is None:
            from kgrec import models

            self._names = (*self.extra, *sorted(getattr(models, self.resolver_name).options))
        return self._names

    @choices.setter
    def choices(self, value: tuple[str, ...]) -> None:
        self._names = tuple(value)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join((*self.extra, *self.shipped)) + "]"


FUSIONS = ("attention", "concat", "gated", "sum")
PROPAGATIONS = ("knowledge", "knowledgemean", "lightgcn", "relational")


@main.command()
@option("--graph", "graph_dir", type=_PathType(file_okay=False), help="A graph from build-graph.")
@option("--out", type=_PathType(file_okay=False), help="Run directory [default: runs/<graph name>-<fusion>].")
@option(
    "--resume",
    "resume_dir",
    type=_PathType(file_okay=False),
    help="Continue an interrupted run from its last checkpoint (its own config and graph).",
)
@option("--fusion", type=_RegistryChoice("fusion_resolver", FUSIONS), help="How graph and text views join [gated].")
@option(
    "--propagation",
    type=_RegistryChoice("propagation_resolver", PROPAGATIONS, extra=("auto",)),
    help="GNN over the graph [lightgcn]; knowledge puts KG entities in the graph; auto: knowledge when the graph has KG triples.",
)
@option("--kge-model", help="PyKEEN model for entity embeddings [TransE].")
@option("--text-model", help="Local path or hub name of the text encoder [bundled all-MiniLM-L6-v2].")
@option("--epochs", type=int, help="Maximum epochs [300].")
@_device_option(default=None)
@option("--seed", type=int, help="Training seed [2020].")
@option(
    "--context",
    "context_fields",
    metavar="FIELDS",
    help="Comma-separated context features: hour, weekday, gap, period, user-table columns (age, ...) and log columns (device, ...).",
)
@option("--tasks", metavar="TASKS", help="Comma-separated objectives trained together: rank, rating, kg [rank].")
@option("--task-weighting", type=click.Choice(["fixed", "uncertainty"]), help="How task losses combine [fixed].")
@option(
    "--batching",
    type=click.Choice(["full", "sampled", "auto"]),
    help="Propagate over the whole graph each step, or over each batch's sampled neighbourhood [full].",
)
@option("--fanout", metavar="N,N,N", help="Neighbours sampled per node at each hop, for --batching sampled [10,10,10].")
@option("--config", "config_path", type=_PathType(dir_okay=False), help="Config file (YAML or TOML) or preset name.")
@option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Any config value, e.g. model.dim=128.")
@option(
    "--cache-dir",
    type=_PathType(file_okay=False),
    envvar="KGREC_CACHE_DIR",
    help="Where PyKEEN and text embeddings are cached [env KGREC_CACHE_DIR, else <graph>/cache]; for a read-only graph.",
)
@option("--quiet", is_flag=True, help="No progress bars.")
@option(
    "--tracker",
    type=click.Choice(["mlflow", "tensorboard"]),
    help="Log parameters, per-epoch and final metrics and files.",
)
@option(
    "--tracker-uri",
    help="MLflow tracking URI (e.g. sqlite:///mlflow.db) or TensorBoard folder [MLflow's default; <run>/tensorboard].",
)
def train(
    graph_dir,
    out,
    resume_dir,
    config_path,
    settings,
    quiet,
    context_fields,
    tasks,
    fanout,
    cache_dir,
    tracker,
    tracker_uri,
    **flags,
) -> None:
    """Train the recommender on a built graph; write the run directory and print test metrics."""
    from kgrec import api
    from kgrec.graph import load_graph

    if resume_dir is not None:
        given = [
            name
            for name, value in (
                ("--graph", graph_dir),
                ("--out", out),
                ("--config", config_path),
                ("--set", settings),
                ("--context", context_fields),
                ("--tasks", tasks),
                ("--fanout", fanout),
            )
            if value
        ] + [f"--{k.replace('_', '-')}" for k, v in flags.items() if v is not None]
        if given:
            raise KgrecError(f"--resume continues a run with its own config and graph; drop {given[0]}")
        with _resume_hint(Path(resume_dir)):
            result = api.resume(resume_dir, quiet=quiet, cache_dir=cache_dir)
        _print_metrics(result.metrics.get("test", {}), "test")
        click.echo(f"wrote {resume_dir}")
        return
    if graph_dir is None:
        raise KgrecError("give --graph (a graph from build-graph), or --resume RUN_DIR")
    config = _config(config_path, flags, _TRAIN_FLAGS, settings)
    graph = load_graph(graph_dir)
    if tasks:
        config = config.override({"train.tasks": _names(tasks)})
    if fanout:
        try:
            config = config.override({"train.fanout": [int(n) for n in _names(fanout)]})
        except ValueError:
            raise KgrecError(f"--fanout takes comma-separated whole numbers, got '{fanout}'") from None
    if context_fields:
        config = config.override(api.context_overrides(graph, _names(context_fields)))
    out = Path(out) if out else Path("runs") / safe_name(f"{graph.name}-{config.model.fusion}", "run name")
    with _resume_hint(out):
        result = api.train(
            graph,
            config,
            out=out,
            graph_dir=graph_dir,
            quiet=quiet,
            cache_dir=cache_dir,
            tracker=tracker,
            tracker_uri=tracker_uri,
        )
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 reports (and alone wrote the run)
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
        _print_metrics(result.metrics.get("test", {}), "test")
        click.echo(f"wrote {out}")


def _interruptible(work: Callable[[], Any], timeout: float, what: str) -> Any:
    """``work()`` in a worker thread, stopped by Ctrl-C or after ``timeout`` seconds.

    A SPARQL engine in native code (Oxigraph) does not look at Python's signals while it evaluates, so a long
    query ignored Ctrl-C; the main thread waits in short steps instead, and leaves the process when told to
    (the worker cannot be cancelled, and a query writes nothing, so nothing is left half-done).
    """
    import threading

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    try:
        worker.start()
        worker.join(timeout)
    except KeyboardInterrupt:
        _leave(130, f"kgrec: interrupted; {what} was stopped")
    if worker.is_alive():
        _leave(2, f"kgrec: error: {what} took longer than {timeout:g} s and was stopped (--timeout raises the limit)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _leave(code: int, message: str) -> None:
    """Exit at once, with the worker thread still running (``sys.exit`` would wait for it)."""
    click.echo(message, err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextlib.contextmanager
def _resume_hint(out: Path) -> Iterator[None]:
    """On Ctrl-C, say how to continue (when a checkpoint was kept) and exit 130, without a traceback."""
    from kgrec.train.checkpoint import CHECKPOINT_NAME

    try:
        yield
    except KeyboardInterrupt:
        if (out / CHECKPOINT_NAME).is_file():
            click.echo(f"kgrec: interrupted; continue with: kgrec train --resume {out}", err=True)
        else:
            click.echo("kgrec: interrupted before the first checkpoint; nothing was kept", err=True)
        sys.exit(130)


def _print_segments(table: Any) -> None:
    """One line per segment: users, held-out interactions, and the recall and NDCG at each cut-off."""
    shown = [c for c in table.columns if c.startswith(("recall@", "ndcg@"))]
    click.echo(f"{'by':<16} {'segment':>8} {'users':>7} {'targets':>8} " + " ".join(f"{c:>10}" for c in shown))
    for row in table.to_dict("records"):
        values = " ".join(f"{row[c]:>10.4f}" for c in shown)
        click.echo(f"{row['by']:<16} {row['segment']:>8} {row['users']:>7} {row['targets']:>8} {values}")


def _print_metrics(metrics: dict, split: str) -> None:
    for name, value in metrics.items():
        click.echo(f"{split:5s} {name:14s} {value:.4f}")


@main.command()
@option("--run", "run_dir", required=True, type=_PathType(file_okay=False), help="A run directory.")
@_split_option()
@option("-k", "ks", type=int, multiple=True, help="Cut-offs (repeatable) [the run's eval.ks].")
@_candidates_option()
@option(
    "--segments",
    is_flag=True,
    help="Also by user activity and by held-out item popularity (training interactions; see docs/training.md).",
)
@_device_option()
def evaluate(run_dir, split, ks, candidates, segments, device) -> None:
    """Full-ranking evaluation of a run; merged into its metrics.json."""
    from kgrec import api

    if segments:
        by_segment = api.evaluate_segments(run_dir, split, tuple(ks) or None, candidates, device=device)
        _print_segments(by_segment.table)
        return
    result = api.evaluate(run_dir, split, tuple(ks) or None, candidates, device=device)
    _print_metrics(result.metrics, split)
    against = "all items" if candidates == "all" else "the items unseen in training"
    click.echo(f"{result.num_users} users ranked against {against} in {result.seconds:.3f} s")


#: kgrec.baselines.BASELINES' names, written out so that --help does not wait for torch (a test keeps them equal).
BASELINE_NAMES = ("popularity", "item-knn", "ease", "kg-knn", "text-knn")


@main.command()
@option("--graph", "graph_dir", required=True, type=_PathType(file_okay=False), help="A graph from build-graph.")
@option(
    "--name",
    "names",
    multiple=True,
    type=click.Choice(BASELINE_NAMES),
    help="A baseline (repeatable) [all that apply].",
)
@_split_option()
@option("-k", "ks", type=int, multiple=True, help="Cut-offs (repeatable) [10 and 20].")
@_candidates_option()
@option("--seed", type=int, default=0, show_default=True, help="Popularity's tie-breaking order.")
@option(
    "--config",
    "config_path",
    type=_PathType(dir_okay=False),
    help="A run config whose text section text-knn encodes with.",
)
def baseline(graph_dir, names, split, ks, candidates, seed, config_path) -> None:
    """Evaluate baselines on a graph (popularity, item and KG and text nearest neighbours), ranked as evaluate ranks a run."""
    from kgrec import api
    from kgrec.errors import InputError

    config = load_config(config_path) if config_path else None
    for name in names or BASELINE_NAMES:
        try:
            result = api.baseline(graph_dir, name, split, candidates, tuple(ks) or (10, 20), seed, config)
        except InputError as error:
            if names:  # asked for by name: its failure is the answer
                raise
            click.echo(f"{name}: skipped ({error.message})", err=True)
            continue
        click.echo(f"baseline {name}")
        _print_metrics(result.metrics, split)


@main.command()
@option("--graph", "graph_dir", required=True, type=_PathType(file_okay=False), help="A graph from build-graph.")
@option(
    "--study", "study_dir", required=True, type=_PathType(file_okay=False), help="Study folder (created, or resumed)."
)
@option(
    "--trials",
    type=click.IntRange(1),
    required=True,
    help="Finished trials (complete or pruned) the study should hold.",
)
@option("--timeout", type=click.FloatRange(0, min_open=True), help="Stop drawing new trials after this many seconds.")
@option("--jobs", type=click.IntRange(1), default=1, show_default=True, help="Trials in parallel processes.")
@option("--space", type=_PathType(dir_okay=False), help="Search space YAML [kgrec/configs/spaces/default.yaml].")
@option(
    "--config",
    "config_path",
    type=_PathType(dir_okay=False),
    help="Base config file or preset every trial starts from.",
)
@option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="A fixed config value for every trial.")
@option("--seed", type=int, default=0, show_default=True, help="Sampler seed.")
@option(
    "--pruner",
    type=click.Choice(["percentile", "median", "none"]),
    default="percentile",
    show_default=True,
    help="Stop trials whose per-epoch validation falls in the bottom quarter (percentile) or half (median) of earlier trials.",
)
@option(
    "--prune-startup",
    type=click.IntRange(0),
    default=5,
    show_default=True,
    help="Finished trials before any is pruned.",
)
@option(
    "--prune-warmup",
    type=click.IntRange(0),
    default=5,
    show_default=True,
    help="Epochs a trial runs before it can be pruned.",
)
@option("--tracker", type=click.Choice(["mlflow", "tensorboard"]), help="Log every trial as a tracked run.")
@option("--tracker-uri", help="MLflow tracking URI or TensorBoard folder.")
def tune(
    graph_dir,
    study_dir,
    trials,
    timeout,
    jobs,
    space,
    config_path,
    settings,
    seed,
    pruner,
    prune_startup,
    prune_warmup,
    tracker,
    tracker_uri,
) -> None:
    """Search hyper-parameters with Optuna (TPE, pruning, resumable); the best config goes to STUDY/best.yaml."""
    from kgrec.tune import Pruning
    from kgrec.tune import tune as run_study

    config = _config(config_path, {}, {}, settings)
    pruning = Pruning(pruner, prune_startup, prune_warmup)
    result = run_study(
        graph_dir,
        study_dir,
        trials,
        config,
        space,
        timeout,
        jobs,
        seed,
        tracker=tracker,
        tracker_uri=tracker_uri,
        pruning=pruning,
    )
    click.echo(
        f"{result.complete} complete, {result.pruned} pruned, {result.failed} failed trials ({result.seconds:.0f} s this call)"
    )
    click.echo(f"best: trial {result.best_trial}, validation {result.best_value:.4f}")
    for key, value in result.best_params.items():
        click.echo(f"  {key} = {value}")
    click.echo(f"wrote {result.best_config} (kgrec train --graph {graph_dir} --config {result.best_config})")


@main.command()
@click.argument("baseline", type=_PathType(file_okay=False))
@click.argument("runs", nargs=-1, required=True, type=_PathType(file_okay=False))
@option("--metric", default="ndcg@20", show_default=True, help="A per-user metric (recall@20, mrr@10, auc ...).")
@option(
    "--evaluation",
    default="test",
    show_default=True,
    help="Which stored evaluation: test, valid, or test_unseen (after evaluate --candidates unseen).",
)
@option("--resamples", type=click.IntRange(100), default=10_000, show_default=True, help="Bootstrap resamples.")
@option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@option(
    "--by",
    type=click.Choice(["user-activity", "item-popularity"]),
    help="One comparison per segment (after evaluate --segments on every run); Holm over segments and runs.",
)
@option("--json", "as_json", is_flag=True, help="One JSON object per run instead of a table.")
def compare(baseline, runs, metric, evaluation, resamples, seed, by, as_json) -> None:
    """Paired per-user comparison of RUNS against BASELINE on the same split (bootstrap CI, t-test, Wilcoxon, Holm)."""
    from kgrec import api

    results = api.compare(baseline, list(runs), metric, evaluation, resamples, seed, by=by)
    if as_json:
        for result in results:
            click.echo(json.dumps(json_safe(result.to_dict())))
        return
    if by is None:
        click.echo(
            f"{metric} on {evaluation}, paired over users, against {baseline} (mean {results[0].baseline_mean:.4f}):"
        )
    else:  # each segment has its own baseline mean: shown in the row
        click.echo(f"{metric} on {evaluation} by {by}, paired over each segment's users, against {baseline}:")
    segment = "" if by is None else f"{'segment':>8} {'base':>8} "
    click.echo(
        f"{segment}{'run':<40} {'users':>6} {'mean':>8} {'diff':>9} {'rel':>7} {'95% CI':>21} {'t p':>9} "
        f"{'Wilcoxon p':>10} {'Holm t':>9} {'Holm W':>9}"
    )
    for r in results:
        interval = f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}]"
        label = "" if by is None else f"{r.segment:>8} {r.baseline_mean:>8.4f} "
        click.echo(
            f"{label}{r.run:<40} {r.users:>6} {r.mean:>8.4f} {r.difference:>+9.4f} {r.relative:>+7.1%} {interval:>21} "
            f"{r.t_p:>9.2g} {r.wilcoxon_p:>10.2g} {r.holm_t_p:>9.2g} {r.holm_wilcoxon_p:>9.2g}"
        )


@main.command()
@option("--run", "run_dir", required=True, type=_PathType(file_okay=False), help="A run directory.")
@option("--user", "user_ids", multiple=True, help="User id (repeatable).")
@option("--users-file", type=_PathType(dir_okay=False), help="A file with one user id per line.")
@option("-k", type=int, default=10, show_default=True, help="Items per user.")
@option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@option(
    "--explain",
    "with_paths",
    is_flag=True,
    help="Attach each item's best explanation path and each part's share of its score.",
)
@option("--endpoint", help="SPARQL endpoint serving the graph, for entity labels [the graph's own].")
@option(
    "--labels",
    type=_PathType(dir_okay=False),
    help="Entity labels for explanations: CSV/TSV with columns entity,label, or RDF with rdfs:label.",
)
@option("--history", help="Comma-separated item ids: recommend for a new user with this history (no retraining).")
@option(
    "--new-items",
    type=_PathType(dir_okay=False),
    help="A catalog file of new items to make recommendable (no retraining).",
)
@option(
    "--context",
    "context_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Context of the request (hour=21 device=mobile); for --new-user, also their attributes (age=25 gender=F).",
)
@option(
    "--retrieval",
    type=click.Choice(["exact", "faiss"]),
    default="exact",
    show_default=True,
    help="Score every item, or take candidates from a FAISS HNSW index (large catalogs; runs without the linear part).",
)
@option(
    "--new-user",
    is_flag=True,
    help="Recommend for a new user known only by --context attributes (and --history, if given).",
)
@option(
    "--include-seen/--exclude-seen",
    default=None,
    help="Keep or drop the items each user already used [kept for a run trained with eval.task=in-context, dropped otherwise].",
)
@_device_option()
@click.argument("more_context", nargs=-1, metavar="[KEY=VALUE]...")
def recommend(
    run_dir,
    user_ids,
    users_file,
    k,
    as_json,
    with_paths,
    endpoint,
    labels,
    history,
    new_items,
    context_pairs,
    retrieval,
    new_user,
    include_seen,
    device,
    more_context,
) -> None:
    """Top-K items per user, with titles and scores: unseen ones, or for an in-context run the user's own too."""
    ids = list(user_ids)
    if users_file:
        try:
            ids += [line.strip() for line in Path(users_file).read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise KgrecError(f"{users_file}: cannot read user ids: {error}") from None
    items = [item.strip() for item in history.split(",") if item.strip()] if history else []
    context = _pairs(context_pairs + more_context)
    if not ids and not items and not new_user:
        raise KgrecError("give at least one --user, a --users-file, a --history or --new-user")
    if k < 1:
        raise KgrecError("-k must be at least 1")
    if not (
        with_paths or items or new_items or context or new_user or include_seen or retrieval != "exact"
    ) and device in ("auto", "cpu"):
        # The usual question, answered from the ranking stored with the run, without loading torch, PyG and the model
        # (seconds in a fresh process); None when the stored ranking does not answer it.
        from kgrec.inference.ranked import quick_recommend

        quick = quick_recommend(run_dir, ids, k)
        if quick is not None:
            _print_recommendations(quick, as_json)
            return
    from kgrec import api

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ContextWarning)
        warnings.simplefilter("always", ColdStartWarning)
        recommendations = api.recommend(
            run_dir,
            ids,
            k,
            explain=with_paths,
            endpoint=endpoint,
            history=items,
            new_items=new_items,
            context=context,
            new_user=new_user,
            retrieval=retrieval,
            device=device,
            labels=labels,
            include_seen=include_seen,
            unknown_users="cold-start",  # as the server answers them
        )
    notes = (ContextWarning, ColdStartWarning)
    for notice in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, notes)):
        click.echo(f"note: {notice}", err=True)
    for other in caught:  # recording caught every warning: the rest are shown as they would have been
        if not issubclass(other.category, notes):
            warnings.showwarning(other.message, other.category, other.filename, other.lineno)
    _print_recommendations(recommendations, as_json)


def _print_recommendations(recommendations: list[Any], as_json: bool) -> None:
    """A table of each user's items (with explanations and score shares when attached), or one JSON object per user."""
    import dataclasses
    import json

    for rec in recommendations:
        if as_json:
            click.echo(json.dumps(json_safe(dataclasses.asdict(rec))))
            continue
        click.echo(f"user {rec.user_id}")
        for rank, (item_id, title, score) in enumerate(zip(rec.item_ids, rec.titles, rec.scores), start=1):
            click.echo(f"  {rank:2d}. {_flat(title or item_id)}  [item {_flat(item_id)}]  score {score:.3f}")
            if rec.explanations is not None and rec.shares is None:
                click.echo(
                    "      why: the user is new to the run (a cold-start answer; the score counts training interactions)"
                )
            elif rec.explanations is not None:
                from kgrec.explain import path_text

                path = rec.explanations[rank - 1]
                why = (
                    path_text(path["user_id"], path["relations"], path["labels"])
                    if path
                    else "no path in the training graph"
                )
                names = {"graph": "graph view", "text": "text", "ease": "EASE", "repeat": "repeat use"}
                # "+ 0.0" turns a rounded -0 into 0: "-0%" reads as a view that lowers the score.
                shares = ", ".join(
                    f"{names[part]} {round(share, 2) + 0.0:.0%}"
                    for part, share in (rec.shares or [{}] * rank)[rank - 1].items()
                )
                click.echo(f"      why: {_flat(why)}  (score: {shares})")


def _flat(text: str) -> str:
    """Text for a table row: line breaks and tabs in a title become spaces (``--json`` keeps them)."""
    return " ".join(str(text).split())


@main.command()
@option("--run", "run_dir", required=True, type=_PathType(file_okay=False), help="A run directory.")
@option("--user", "user_id", required=True, help="User id.")
@option("--item", "item_id", required=True, help="The recommended item's id.")
@option("--max-paths", type=int, default=5, show_default=True, help="Paths to show.")
@option(
    "--max-hops", type=click.IntRange(1, 2), default=2, show_default=True, help="KG entities between the two items."
)
@option(
    "--max-fanout",
    type=click.IntRange(1),
    default=50,
    show_default=True,
    help="Entities expanded per node, most specific first.",
)
@option("--endpoint", help="SPARQL endpoint serving the graph, for entity labels [the graph's own].")
@option(
    "--labels",
    type=_PathType(dir_okay=False),
    help="Entity labels for explanations: CSV/TSV with columns entity,label, or RDF with rdfs:label.",
)
@option("--json", "as_json", is_flag=True, help="One JSON object per path.")
@_device_option()
def explain(run_dir, user_id, item_id, max_paths, max_hops, max_fanout, endpoint, labels, as_json, device) -> None:
    """Why ITEM for USER: paths user -> training item -> KG hops -> item, scored by the model."""
    import json

    from kgrec import api

    if max_paths < 1:
        raise KgrecError("--max-paths must be at least 1")
    paths = api.explain(
        run_dir, user_id, item_id, max_paths, max_hops, max_fanout, endpoint, device=device, labels=labels
    )
    if not paths:
        click.echo(f"user {user_id} has no training interactions to explain item {item_id} from")
    for rank, path in enumerate(paths, start=1):
        if as_json:
            click.echo(json.dumps(json_safe(path.to_dict())))
        else:
            click.echo(f"{rank}. {_flat(path.text())}  (score {path.score:+.3f}, specificity {path.specificity:.2f})")


@main.command()
@click.argument("sparql")
@option("--graph", "graph_dir", type=_PathType(file_okay=False), help="A graph from build-graph.")
@option("--endpoint", help="A SPARQL 1.1 endpoint serving the graph instead.")
@option("--json", "as_json", is_flag=True, help="JSON lines instead of tab-separated values.")
@option(
    "--allow-service",
    is_flag=True,
    help="Let SERVICE <url> and FROM <url> fetch from other endpoints (off: a query never makes this machine send requests).",
)
@option(
    "--store",
    "backend",
    type=click.Choice(["oxigraph", "rdflib"]),
    help="Local store and SPARQL engine [oxigraph where installed].",
)
@option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Seconds the query (loading included) may take before it is stopped.",
)
def query(sparql, graph_dir, endpoint, as_json, allow_service, backend, timeout) -> None:
    """Run a SPARQL SELECT/ASK query over a graph's RDF (prefixes kgrec:, kg:, rdfs:, rdf: predeclared)."""
    # api.query is this function; kgrec.api itself would import torch and PyG, seconds before the first answer.
    from kgrec.graph.sparql import query as sparql_query

    table = _interruptible(
        lambda: sparql_query(sparql, graph_dir, endpoint, allow_service, backend), timeout, "the query"
    )
    if as_json:
        import json

        for record in table.to_dict(orient="records"):
            click.echo(json.dumps(json_safe(record)))
    else:
        click.echo(table.to_csv(sep="\t", index=False).rstrip("\n"))


@main.command("ls")
@click.argument("what", type=click.Choice(["fusions", "propagations", "scorers", "kge-models"]))
def list_parts(what) -> None:
    """List the registered choices for a swappable part."""
    if what == "kge-models":
        from pykeen.models import model_resolver

        names = model_resolver.options
    else:
        from kgrec import models

        names = getattr(
            models,
            {"fusions": "fusion_resolver", "propagations": "propagation_resolver", "scorers": "scorer_resolver"}[what],
        ).options
    click.echo("\n".join(sorted(names)))


@main.group()
def datasets() -> None:
    """List, download and verify public datasets."""


@datasets.command("list")
def datasets_list() -> None:
    """Show the public datasets kgrec knows."""
    from kgrec.data import PUBLIC_DATASETS

    for spec in PUBLIC_DATASETS.values():
        click.echo(f"{spec.name:10s} {spec.summary}")


@datasets.command("download")
@click.argument("name")
@option("--data-dir", type=_PathType(file_okay=False), help="Target folder [env KGREC_DATA_DIR].")
@option("--url", help="A mirror of the archive (each file's checksum is still verified).")
@option("--force", is_flag=True, help="Download even if a verified copy is present.")
@option("--quiet", is_flag=True, help="No progress bar.")
def datasets_download(name, data_dir, url, force, quiet) -> None:
    """Download a public dataset from its public source and verify its checksums."""
    from kgrec.data import download_dataset
    from kgrec.logs import bars_wanted

    folder = download_dataset(name, data_dir, url=url, force=force, show_progress=bars_wanted(quiet))
    click.echo(f"{name}: verified in {folder}")


@datasets.command("verify")
@click.argument("name")
@option("--data-dir", type=_PathType(file_okay=False), help="Folder holding datasets [env KGREC_DATA_DIR].")
def datasets_verify(name, data_dir) -> None:
    """Check a public dataset's files against their published checksums."""
    from kgrec.data import verify_dataset

    click.echo(f"{name}: verified in {verify_dataset(name, data_dir)}")


@main.command()
@option("--graph", "graph_dir", required=True, type=_PathType(file_okay=False), help="A graph directory.")
@option("--out", required=True, type=_PathType(file_okay=False), help="Folder for the RecBole files.")
@option("--name", help="Dataset name for the files [the graph's name].")
def export(graph_dir, out, name) -> None:
    """Write a graph's split as RecBole atomic benchmark files (.train/.valid/.test.inter, .item, .kg, .link)."""
    from kgrec.graph import export_recbole, load_graph

    click.echo(f"wrote {export_recbole(load_graph(graph_dir), out, name)}")


@main.command()
@option("--run", "run_dir", required=True, type=_PathType(file_okay=False), help="The trained run to start from.")
@option(
    "--events",
    required=True,
    type=_PathType(dir_okay=False),
    help="New interactions (a log like train's: user, item [, rating, timestamp]).",
)
@option("--out", required=True, type=_PathType(file_okay=False), help="The updated run (a new run directory).")
@option("--epochs", type=click.IntRange(1), default=3, show_default=True, help="Epochs over old plus new interactions.")
@option(
    "--new-items",
    type=_PathType(dir_okay=False),
    help="A catalog file of items the events may name that the run lacks.",
)
@option("--quiet", is_flag=True, help="No progress bar.")
@_device_option()
def update(run_dir, events, out, epochs, new_items, quiet, device) -> None:
    """Warm-start a run on its interactions plus new ones (new users and items get rows), instead of a full retrain."""
    from kgrec import api

    result = api.update(run_dir, events, out, epochs, new_items, quiet, device)
    stats = result.recommender.graph.stats.get("update", {})
    click.echo(
        f"added {stats.get('added', 0):,} interactions ({stats.get('new_users', 0):,} new users; {stats.get('already_known', 0):,} "
        f"already in the run left out) in {result.timings['train_seconds']:.1f} s"
    )
    if "test" in result.metrics:
        _print_metrics({k: v for k, v in result.metrics["test"].items() if k.startswith(("ndcg", "recall"))}, "test")
    click.echo(f"wrote {out}")


@main.command()
@option("--run", "run_dir", required=True, type=_PathType(file_okay=False), help="A run directory.")
@option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on (0: any free one).",
)
@option("--state", "state_dir", type=_PathType(file_okay=False), help="Folder of the durable event log [RUN/serving].")
@option(
    "--token",
    envvar="KGREC_SERVE_TOKEN",
    help="Token the write endpoints require (or KGREC_SERVE_TOKEN) [none: read-only].",
)
@option("--open-writes", is_flag=True, help="Accept writes without a token: anyone who reaches the port may post.")
@option(
    "--reload-root",
    type=_PathType(file_okay=False),
    help="Folder whose runs POST /admin/reload may swap in [none: only this run].",
)
@option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="warning",
    show_default=True,
    help="What the HTTP server (uvicorn) logs.",
)
@_device_option()
def serve(run_dir, host, port, state_dir, token, open_writes, reload_root, log_level, device) -> None:
    """Answer recommendations over HTTP (OpenAPI docs at /docs); SIGHUP or POST /admin/reload swaps in a newer run."""
    from kgrec.serve import serve as run_server

    if token is not None and not token.strip():
        raise KgrecError(
            '--token is empty (an unset variable in --token "$TOKEN"?): give a token, or --open-writes to '
            "accept writes from anyone"
        )
    if token is not None and open_writes:
        raise KgrecError("--open-writes and --token contradict each other: give one")
    if open_writes:
        click.echo(
            f"warning: --open-writes: anyone who reaches {host}:{port} can post interactions and items and reload runs",
            err=True,
        )
    elif token is None:
        click.echo("note: no --token: the server is read-only (writes answer 403)", err=True)
    click.echo(f"kgrec serve: {run_dir} on http://{host}:{port} (docs at /docs)", err=True)
    run_server(
        run_dir, host, port, state_dir, token, device, log_level, open_writes=open_writes, reload_root=reload_root
    )


@main.command()
def ontology() -> None:
    """Print the kgrec RDF ontology (Turtle)."""
    from kgrec.graph.rdf import ontology_turtle

    click.echo(ontology_turtle(), nl=False)
