"""Training: the pipeline and its result, negative sampling, the fit loop and its callbacks, the schedule (backbone,
side views, EASE blend), checkpoints and run directories."""

from kgrec.train.callbacks import (
    Checkpointing,
    EarlyStopping,
    EpochTracking,
    FitResult,
    Progress,
    TrainingCallback,
    TrainingState,
)
from kgrec.train.loop import fit
from kgrec.train.result import TrainResult
from kgrec.train.sampling import NegativeSampler

__all__ = [
    "Checkpointing",
    "EarlyStopping",
    "EpochTracking",
    "FitResult",
    "NegativeSampler",
    "Progress",
    "TrainResult",
    "TrainingCallback",
    "TrainingState",
    "fit",
]
