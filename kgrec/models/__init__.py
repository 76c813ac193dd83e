"""Recommendation models: propagation, fusion and scoring modules (registries) and KGRecommender."""

from kgrec.models.fusion import AttentionFusion, ConcatFusion, Fusion, GatedFusion, SumFusion, fusion_resolver
from kgrec.models.graph_inputs import PropagationGraph
from kgrec.models.losses import LOSSES, bce_loss, bpr_loss
from kgrec.models.propagation import LightGCNPropagation, Propagation, RelationalPropagation, propagation_resolver
from kgrec.models.recommender import KGRecommender, Representations
from kgrec.models.scoring import DotScorer, MLPScorer, Scorer, TopK, scorer_resolver, top_k

__all__ = [
    "LOSSES",
    "AttentionFusion",
    "ConcatFusion",
    "DotScorer",
    "Fusion",
    "GatedFusion",
    "KGRecommender",
    "LightGCNPropagation",
    "MLPScorer",
    "Propagation",
    "PropagationGraph",
    "RelationalPropagation",
    "Representations",
    "Scorer",
    "SumFusion",
    "TopK",
    "bce_loss",
    "bpr_loss",
    "fusion_resolver",
    "propagation_resolver",
    "scorer_resolver",
    "top_k",
]
