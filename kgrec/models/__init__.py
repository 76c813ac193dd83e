"""Recommendation models: propagation, fusion and scoring modules (registries) and RecommenderNetwork."""

from kgrec.models.context_encoder import ContextEncoder
from kgrec.models.fusion import AttentionFusion, ConcatFusion, Fusion, GatedFusion, SumFusion, fusion_resolver
from kgrec.models.graph_inputs import PropagationGraph, RelationalAdjacency
from kgrec.models.kg_neighbours import KGNeighbourTerm
from kgrec.models.losses import LOSSES, bce_loss, bpr_loss
from kgrec.models.multitask import RatingHead, TaskWeighting
from kgrec.models.network import RecommenderNetwork, Representations
from kgrec.models.propagation import (
    KnowledgePropagation,
    LightGCNPropagation,
    Propagation,
    RelationalMeanConv,
    RelationalPropagation,
    propagation_resolver,
    resolve_propagation,
)
from kgrec.models.repeat import RepeatUse
from kgrec.models.scoring import DotScorer, MLPScorer, Scorer, TopK, scorer_resolver, top_k

__all__ = [
    "LOSSES",
    "AttentionFusion",
    "ConcatFusion",
    "ContextEncoder",
    "DotScorer",
    "Fusion",
    "GatedFusion",
    "KGNeighbourTerm",
    "RecommenderNetwork",
    "KnowledgePropagation",
    "LightGCNPropagation",
    "MLPScorer",
    "Propagation",
    "PropagationGraph",
    "RelationalAdjacency",
    "RatingHead",
    "RelationalMeanConv",
    "RelationalPropagation",
    "RepeatUse",
    "Representations",
    "Scorer",
    "SumFusion",
    "TaskWeighting",
    "TopK",
    "bce_loss",
    "bpr_loss",
    "fusion_resolver",
    "propagation_resolver",
    "resolve_propagation",
    "scorer_resolver",
    "top_k",
]
