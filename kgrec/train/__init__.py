"""Training: negative sampling, the fit loop, run directories and the trained Recommender."""

from kgrec.train.loop import FitResult, fit, resolve_device
from kgrec.train.run import Recommendation, Recommender
from kgrec.train.sampling import NegativeSampler

__all__ = ["FitResult", "NegativeSampler", "Recommendation", "Recommender", "fit", "resolve_device"]
