"""Hyper-parameter search over run configs with Optuna: the search space, the study folder and its outputs.

A study folder holds ``study.db`` (Optuna's SQLite storage, so a killed study resumes where it
stopped), ``space.yaml`` and ``base.yaml`` (what is searched, and the config every trial starts
from), ``trials/<number>/`` (each trial's run directory), ``best.yaml`` (the best trial's complete
config: ``kgrec train --config best.yaml --graph G`` repeats it), ``trials.csv``, and two plots
(``history.png``, ``importance.png``). Trials are ranked by the validation selection metric only.
The search space, the study folder's lock and resume, the pruner and the summary are one workflow, kept in one
module (over 400 lines) rather than spread over a package whose parts only it uses.
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from kgrec import api
from kgrec.config import RunConfig, dump_config, load_config
from kgrec.errors import InputError
from kgrec.graph import KnowledgeGraph, load_graph
from kgrec.io import DirectoryLock, atomic_write, write_json

__all__ = ["Parameter", "Pruning", "SearchSpace", "TuneResult", "load_space", "tune"]

STUDY_NAME = "kgrec"


class Parameter(BaseModel):
    """One searched config value: ``int``/``float`` in ``[low, high]`` (``log`` scale, ``step``), or ``categorical`` ``choices``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[bool | int | float | str] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Parameter:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty 'choices' list")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"an {self.type} parameter needs low < high, got low={self.low}, high={self.high}")
        elif self.log and self.low <= 0:
            raise ValueError("a log-scale parameter needs low > 0")
        return self

    def suggest(self, trial: Any, name: str) -> Any:
        """The value ``trial`` (an ``optuna.Trial``) draws for config key ``name``."""
        if self.type == "categorical":
            return trial.suggest_categorical(name, self.choices)
        assert self.low is not None and self.high is not None  # checked by the validator for numeric types
        if self.type == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def example(self) -> Any:
        """A value in range (to check the key against the config before any trial runs)."""
        if self.type == "categorical":
            assert self.choices is not None
            return self.choices[0]
        assert self.low is not None
        return int(self.low) if self.type == "int" else self.low


class SearchSpace(BaseModel):
    """Config keys (``"train.lr"``) to the parameter each is drawn from."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Parameter]

    def apply(self, config: RunConfig, values: dict[str, Any]) -> RunConfig:
        """``config`` with ``values`` set; a scalar drawn for a list field (``model.ease_l2``) becomes a one-element list."""
        tree = config.model_dump(mode="python")
        overrides = {}
        for key, value in values.items():
            node: Any = tree
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            overrides[key] = (
                [value] if isinstance(node, (list, tuple)) and not isinstance(value, (list, tuple)) else value
            )
        return config.override(overrides)


def load_space(source: str | Path | None, base: RunConfig) -> SearchSpace:
    """A search space from a YAML file, or the packaged default (``None``), checked against ``base``.

    Raises:
        InputError: an unreadable file, a malformed parameter, or a key the config does not have.
    """
    if source is None:
        text, origin = (
            resources.files("kgrec.configs").joinpath("spaces/default.yaml").read_text(encoding="utf-8"),
            "the default space",
        )
    else:
        try:
            text, origin = Path(source).read_text(encoding="utf-8"), str(source)
        except OSError as error:
            raise InputError(f"cannot read the search space: {error.strerror}", source) from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise InputError(f"not valid YAML: {' '.join(str(error).split())[:200]}", origin) from None
    if not isinstance(raw, dict):
        raise InputError(
            f"a search space maps config keys to parameters ({{train.lr: {{type: float, low: .., high: ..}}}}), not a {type(raw).__name__}",
            origin,
        )
    try:
        space = SearchSpace(parameters=raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:] if p not in ("function-after[_complete(), Parameter]",))
        raise InputError(f"search space entry {where or '?'}: {first['msg']}", origin) from None
    if not space.parameters:
        raise InputError("the search space is empty", origin)
    for key, parameter in space.parameters.items():
        try:
            space.apply(base, {key: parameter.example()})
        except InputError as error:
            raise InputError(f"search space key '{key}': {error.message}", origin) from None
    return space


@dataclass(frozen=True)
class Pruning:
    """When a trial is stopped early on its per-epoch validation score.

    ``kind``: ``percentile`` stops a trial whose score at an epoch is in the bottom ``percentile`` of
    earlier trials at that epoch; ``median`` is the same at 50; ``none`` runs every trial to its end.
    Nothing is pruned before ``startup_trials`` trials have finished or before epoch ``warmup_epochs``.
    The per-epoch score is the learned model's alone, while a trial's value is measured after the EASE
    blend, which can reorder trials: that is why the default prunes only the bottom quarter, late.
    """

    kind: Literal["percentile", "median", "none"] = "percentile"
    startup_trials: int = 5
    warmup_epochs: int = 5
    percentile: float = 25.0

    def __post_init__(self) -> None:
        if self.startup_trials < 0 or self.warmup_epochs < 0 or not 0 < self.percentile < 100:
            raise InputError(
                f"pruning needs startup_trials and warmup_epochs >= 0 and 0 < percentile < 100, got {self}"
            )

    def pruner(self) -> Any:
        """The Optuna pruner."""
        import optuna

        if self.kind == "none":
            return optuna.pruners.NopPruner()
        pruned_share = 50.0 if self.kind == "median" else self.percentile
        # Optuna's percentile is the share of trials *kept* (25: only the top quarter survives); ours is the share pruned.
        return optuna.pruners.PercentilePruner(
            100.0 - pruned_share, n_startup_trials=self.startup_trials, n_warmup_steps=self.warmup_epochs
        )


@dataclass(frozen=True)
class TuneResult:
    """How a study stands: the best trial's number, validation score, parameters and config file, and trial counts."""

    best_trial: int
    best_value: float
    best_params: dict[str, Any]
    best_config: Path
    complete: int
    pruned: int
    failed: int
    seconds: float


def tune(
    graph_dir: str | Path,
    study: str | Path,
    trials: int,
    config: RunConfig | None = None,
    space: str | Path | None = None,
    timeout: float | None = None,
    jobs: int = 1,
    seed: int = 0,
    quiet: bool = True,
    tracker: str | None = None,
    tracker_uri: str | None = None,
    pruning: Pruning | None = None,
) -> TuneResult:
    """Run (or resume) a study of ``trials`` finished trials (complete or pruned) on a saved graph.

    Each trial is one :func:`kgrec.api.train` of ``config`` (the defaults without one) with the
    space's values drawn by Optuna's TPE sampler; its validation score after every epoch feeds the
    pruner of ``pruning`` (:class:`Pruning`'s defaults without one), which stops trials that fall behind. The value
    a trial returns is the final validation ``eval.select_metric`` (after the EASE blend); test metrics are never read here.
    ``jobs`` processes draw trials in parallel from the same SQLite study. The study folder is
    locked while it runs; trials a killed process left running are marked failed when it resumes.
    ``tracker``/``tracker_uri`` log every trial as its own run (see :func:`kgrec.api.train`).

    Raises:
        InputError: a study folder started with another space or base config, a bad space, a graph
            without validation interactions, or ``trials`` < 1.
    """
    import optuna

    if trials < 1 or jobs < 1:
        raise InputError(f"trials and jobs must be at least 1, got {trials} and {jobs}")
    study_dir = Path(study)
    pruning = pruning or Pruning()
    graph = load_graph(str(graph_dir))
    if not len(graph.split.valid):
        raise InputError(
            "tuning selects on validation, and this graph's split has no validation interactions", graph_dir
        )
    base = config or RunConfig()  # as kgrec train: the defaults unless a config is given
    search = load_space(space, base)
    started = time.perf_counter()
    study_dir.mkdir(parents=True, exist_ok=True)
    with DirectoryLock(study_dir).acquire(wait_seconds=0.0):
        _record_setup(study_dir, base, search)
        storage = _storage(study_dir)
        study_ = optuna.create_study(
            storage=storage,
            study_name=STUDY_NAME,
            direction="maximize",
            load_if_exists=True,
            **_search(seed, pruning),
        )
        for trial in study_.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            # We hold the lock, so whoever ran these is gone: a killed study. Optuna would wait for them forever.
            storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        if jobs == 1:
            _optimize(study_dir, str(graph_dir), trials, timeout, seed, quiet, tracker, tracker_uri, pruning)
        else:
            context = multiprocessing.get_context("spawn")  # torch and fork do not mix
            workers = [
                context.Process(
                    target=_optimize,
                    args=(
                        study_dir,
                        str(graph_dir),
                        trials,
                        timeout,
                        seed + 1 + j,
                        True,
                        tracker,
                        tracker_uri,
                        pruning,
                    ),
                )
                for j in range(jobs)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        study_ = optuna.load_study(study_name=STUDY_NAME, storage=storage)
        return _summarise(study_, study_dir, time.perf_counter() - started, pruning)


def _search(seed: int, pruning: Pruning) -> dict[str, Any]:
    """The sampler and pruner every process of a study uses (Optuna keeps neither in the storage)."""
    import optuna

    return {"sampler": optuna.samplers.TPESampler(seed=seed), "pruner": pruning.pruner()}


def _storage(study_dir: Path) -> Any:
    import optuna

    return optuna.storages.RDBStorage(
        f"sqlite:///{(study_dir / 'study.db').resolve()}", engine_kwargs={"connect_args": {"timeout": 60}}
    )


def _record_setup(study_dir: Path, base: RunConfig, space: SearchSpace) -> None:
    """Write ``base.yaml`` and ``space.yaml`` on the first run; refuse to resume a study with other ones."""
    files = {
        "base.yaml": dump_config(base),
        "space.yaml": yaml.safe_dump(
            {k: v.model_dump(exclude_defaults=True) for k, v in space.parameters.items()}, sort_keys=True
        ),
    }
    for name, text in files.items():
        path = study_dir / name
        if path.is_file():
            if path.read_text(encoding="utf-8") != text:
                raise InputError(
                    f"this study was started with another {name.split('.')[0]} config; use a new `study` folder", path
                )
        else:
            with atomic_write(path) as handle:
                handle.write(text)


def _optimize(
    study_dir: Path,
    graph_dir: str,
    trials: int,
    timeout: float | None,
    seed: int,
    quiet: bool,
    tracker: str | None,
    tracker_uri: str | None,
    pruning: Pruning,
) -> None:
    """Draw and run trials until the study holds ``trials`` finished ones (or ``timeout`` seconds pass)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(study_dir)
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage, **_search(seed, pruning))
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    if len(study.get_trials(deepcopy=False, states=finished)) >= trials:
        return
    base = load_config(study_dir / "base.yaml")
    space = load_space(study_dir / "space.yaml", base)
    graph = load_graph(graph_dir)
    objective = _objective(study_dir, graph, graph_dir, base, space, quiet, tracker, tracker_uri)

    def stop_after_failures(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        # A config the space allows but training refuses fails every time: do not draw forever.
        if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))) >= max(3, trials):
            study.stop()

    study.optimize(
        objective,
        timeout=timeout,
        callbacks=[optuna.study.MaxTrialsCallback(trials, states=finished), stop_after_failures],
        catch=(InputError,),
        gc_after_trial=True,
    )


def _objective(
    study_dir: Path,
    graph: KnowledgeGraph,
    graph_dir: str,
    base: RunConfig,
    space: SearchSpace,
    quiet: bool,
    tracker: str | None,
    tracker_uri: str | None,
) -> Callable[[Any], float]:
    import optuna

    def objective(trial: optuna.Trial) -> float:
        values = {key: parameter.suggest(trial, key) for key, parameter in space.parameters.items()}
        config = space.apply(base, values)
        out = study_dir / "trials" / str(trial.number)
        if out.exists():
            shutil.rmtree(out)  # a failed attempt's leftovers under a reused number

        def report(step: int, score: float) -> None:
            trial.report(score, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"validation {score:.4f} at step {step} is behind earlier trials")

        try:
            result = api.train(
                graph,
                config,
                out=out,
                graph_dir=graph_dir,
                quiet=quiet,
                on_validation=report,
                tracker=tracker,
                tracker_uri=tracker_uri,
            )
        except optuna.TrialPruned:
            shutil.rmtree(out, ignore_errors=True)
            raise
        trial.set_user_attr("run", str(out))
        return float(result.metrics["valid"][config.eval.select_metric])

    return objective


def _summarise(study: Any, study_dir: Path, seconds: float, pruning: Pruning) -> TuneResult:
    """``best.yaml``, ``trials.csv``, the plots and ``summary.json`` of the study as it stands."""
    import optuna

    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = {
        s: states.count(s)
        for s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    }
    if not counts[optuna.trial.TrialState.COMPLETE]:
        raise InputError(
            f"no trial completed ({counts[optuna.trial.TrialState.PRUNED]} pruned, "
            f"{counts[optuna.trial.TrialState.FAIL]} failed): see the trials' errors above",
            study_dir,
        )
    best = study.best_trial
    best_config = study_dir / "best.yaml"
    with atomic_write(best_config) as handle:
        handle.write((Path(best.user_attrs["run"]) / "config.yaml").read_text(encoding="utf-8"))
    frame = study.trials_dataframe(attrs=("number", "value", "state", "params", "duration", "user_attrs"))
    with atomic_write(study_dir / "trials.csv") as handle:
        frame.to_csv(handle, index=False)
    _plots(study, study_dir)
    result = TuneResult(
        best.number,
        float(best.value),
        dict(best.params),
        best_config,
        counts[optuna.trial.TrialState.COMPLETE],
        counts[optuna.trial.TrialState.PRUNED],
        counts[optuna.trial.TrialState.FAIL],
        seconds,
    )
    write_json(
        study_dir / "summary.json", {**result.__dict__, "best_config": str(best_config), "pruning": pruning.__dict__}
    )
    return result


def _plots(study: Any, study_dir: Path) -> None:
    """Optuna's optimisation history and parameter importances (PED-ANOVA, no extra dependency) as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import warnings

    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as plots

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib backend experimental
        figures = {"history.png": lambda: plots.plot_optimization_history(study)}
        complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
        if len(complete) >= 2 and len(study.best_trial.params) >= 1:
            figures["importance.png"] = lambda: plots.plot_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
            )
        for name, draw in figures.items():
            try:
                axes = draw()
            except (ValueError, RuntimeError):  # e.g. every completed trial drew the same values
                continue
            with atomic_write(study_dir / name, mode="wb") as handle:
                axes.figure.savefig(handle, format="png", dpi=110, bbox_inches="tight")  # type: ignore[union-attr]
            plt.close(axes.figure)  # type: ignore[arg-type]
