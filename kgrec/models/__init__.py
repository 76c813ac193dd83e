"""Recommendation models: propagation, fusion and scoring modules (registries) and KGRecommender."""

from kgrec.models.fusion import AttentionFusion, ConcatFusion, Fusion, GatedFusion, SumFusion, fusion_resolver
from kgrec.models.graph_inputs import PropagationGraph
from kgrec.models.heads import ContextEncoder, RatingHead, TaskWeighting
from kgrec.models.losses import LOSSES, bce_loss, bpr_loss
from kgrec.models.propagation import LightGCNPropagation, Propagation, RelationalPropagation, propagation_resolver
from kgrec.models.recommender import KGRecommender, Representations
from kgrec.models.scoring import DotScorer, MLPScorer, Scorer, TopK, scorer_resolver, top_k

__all__ = [
    "LOSSES",
    "AttentionFusion",
    "ConcatFusion",
    "ContextEncoder",
    "DotScorer",
    "Fusion",
    "GatedFusion",
    "KGRecommender",
    "LightGCNPropagation",
    "MLPScorer",
    "Propagation",
    "PropagationGraph",
    "RatingHead",
    "RelationalPropagation",
    "Representations",
    "Scorer",
    "SumFusion",
    "TaskWeighting",
    "TopK",
    "bce_loss",
    "bpr_loss",
    "fusion_resolver",
    "propagation_resolver",
    "scorer_resolver",
    "top_k",
]
