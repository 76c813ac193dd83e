"""Experiment trackers for training runs (MLflow, TensorBoard): parameters, per-epoch and final metrics, run files.

Nothing is tracked unless a tracker is asked for (``kgrec train --tracker …``), and nothing leaves the
machine unless its URI points elsewhere. Each tracker also names the PyKEEN result tracker that logs
the KG-embedding stage the same way (when PyKEEN runs, i.e. not from the cache).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from class_resolver import ClassResolver

from kgrec.errors import InputError

__all__ = ["MLflowTracker", "TensorBoardTracker", "Tracker", "flatten", "tracker_resolver"]


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.01}}`` -> ``{"train.lr": 0.01}``; lists and tuples become strings."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(list(value)) if isinstance(value, (list, tuple)) else value
    return flat


class Tracker:
    """Where a run's parameters, metrics and files go. ``uri`` is the tracker's own location string.

    Call order: :meth:`start`, any number of :meth:`log_metrics`, :meth:`log_files`, :meth:`finish`.
    """

    def __init__(self, uri: str | None = None) -> None:
        self.uri = uri

    def start(self, name: str, params: dict[str, Any], directory: Path | None) -> None:
        """Open the run ``name`` (``directory``: the kgrec run folder, or None) and record ``params``."""
        raise NotImplementedError

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Numbers at ``step`` (an epoch counter across stages), or final ones without a step."""
        raise NotImplementedError

    def log_files(self, paths: list[Path]) -> None:
        """Attach files (the curve, the config) to the run."""
        raise NotImplementedError

    def finish(self, success: bool) -> None:
        """Close the run, marked failed unless ``success``."""
        raise NotImplementedError

    def pykeen(self, name: str, directory: Path | None) -> tuple[str, dict[str, Any]]:
        """``(result_tracker, result_tracker_kwargs)`` for PyKEEN's pipeline, logging the KG stage beside this run."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(uri={self.uri!r})"


class MLflowTracker(Tracker):
    """MLflow: one run per training in experiment ``kgrec``; ``uri`` is a tracking URI (``sqlite:///mlflow.db``, a server).

    Without ``uri``, ``MLFLOW_TRACKING_URI`` or MLflow's own default applies. Files are logged as artifacts.
    """

    EXPERIMENT = "kgrec"

    def __init__(self, uri: str | None = None) -> None:
        super().__init__(uri)
        try:
            import mlflow
        except ImportError:
            raise InputError("tracker 'mlflow' needs MLflow: pip install 'kgrec[mlflow]' (or mlflow-skinny)") from None
        self._mlflow = mlflow
        self._run = None

    def start(self, name: str, params: dict[str, Any], directory: Path | None) -> None:
        """Start an MLflow run with the config as parameters."""
        mlflow = self._mlflow
        if self.uri:
            mlflow.set_tracking_uri(self.uri)
        mlflow.set_experiment(self.EXPERIMENT)
        self._run = mlflow.start_run(run_name=name, tags={"kgrec.run_dir": str(directory) if directory else ""})
        # MLflow caps a parameter value at 6,000 characters; a config value is far shorter.
        mlflow.log_params({key: value for key, value in params.items()})

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Log metrics at ``step``."""
        self._mlflow.log_metrics({_metric_name(k): float(v) for k, v in metrics.items()}, step=step)

    def log_files(self, paths: list[Path]) -> None:
        """Log files as artifacts."""
        for path in paths:
            if path.is_file():
                self._mlflow.log_artifact(str(path))

    def finish(self, success: bool) -> None:
        """End the run as finished or failed."""
        if self._run is not None:
            self._mlflow.end_run(status="FINISHED" if success else "FAILED")
            self._run = None

    def pykeen(self, name: str, directory: Path | None) -> tuple[str, dict[str, Any]]:
        """PyKEEN's result tracker name and settings, writing to the same experiment."""
        return "mlflow", {
            "tracking_uri": self.uri or self._mlflow.get_tracking_uri(),
            "experiment_name": self.EXPERIMENT,
            "tags": {"kgrec.stage": "kge", "kgrec.run": name},
        }


class TensorBoardTracker(Tracker):
    """TensorBoard event files (``torch.utils.tensorboard``); ``uri`` is the log folder (default: ``<run>/tensorboard``)."""

    def __init__(self, uri: str | None = None) -> None:
        super().__init__(uri)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise InputError("tracker 'tensorboard' needs TensorBoard: pip install 'kgrec[tensorboard]'") from None
        self._writer_class = SummaryWriter
        self._writer: Any = None  # a SummaryWriter once started
        self._final_step = 0

    def _folder(self, directory: Path | None) -> Path:
        if self.uri:
            return Path(self.uri)
        if directory is None:
            raise InputError(
                "tracker 'tensorboard' without a `tracker_uri` needs a run directory (`out`) to write into"
            )
        return directory / "tensorboard"

    def start(self, name: str, params: dict[str, Any], directory: Path | None) -> None:
        """Open the writer; the config as a text table."""
        self._writer = self._writer_class(log_dir=str(self._folder(directory)))
        lines = "\n".join(f"| {key} | {value} |" for key, value in sorted(params.items()))
        self._writer.add_text("config", f"| key | value |\n|---|---|\n{lines}")

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Log metrics as scalars at ``step`` (the last step when none)."""
        if step is not None:
            self._final_step = max(self._final_step, step)
        for key, value in metrics.items():
            self._writer.add_scalar(
                _metric_name(key), float(value), global_step=step if step is not None else self._final_step
            )

    def log_files(self, paths: list[Path]) -> None:
        """Log the run's text files as text."""
        for path in paths:
            if path.is_file() and path.suffix in (".yaml", ".json", ".csv"):
                self._writer.add_text(path.name, f"```\n{path.read_text(encoding='utf-8')[:20_000]}\n```")

    def finish(self, success: bool) -> None:
        """Mark the run finished or failed and close the writer."""
        if self._writer is not None:
            self._writer.add_text("status", "finished" if success else "failed")
            self._writer.close()
            self._writer = None

    def pykeen(self, name: str, directory: Path | None) -> tuple[str, dict[str, Any]]:
        """PyKEEN's result tracker name and settings, writing beside the run's log."""
        return "tensorboard", {"experiment_path": str(self._folder(directory) / "kge")}


def _metric_name(key: str) -> str:
    return key.replace("@", "_at_")  # MLflow and TensorBoard tag names take no '@'


tracker_resolver: ClassResolver[Tracker] = ClassResolver(
    [MLflowTracker, TensorBoardTracker], base=Tracker, suffix="Tracker"
)
