"""Training: negative sampling, the fit loop, the schedule (backbone, side views, EASE blend), checkpoints and run directories."""

from kgrec.train.loop import FitResult, fit
from kgrec.train.sampling import NegativeSampler

__all__ = ["FitResult", "NegativeSampler", "fit"]
