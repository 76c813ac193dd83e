"""Why an item was recommended: explanation paths through the training graph, their faithfulness, and score shares."""

from kgrec.explain.faithfulness import FaithfulnessResult, graph_without, path_faithfulness
from kgrec.explain.metrics import ExplanationMetrics, explanation_metrics, path_type
from kgrec.explain.paths import RANKINGS, ExplanationPath, PathFinder, path_text, relation_label
from kgrec.explain.shares import score_shares

__all__ = [
    "ExplanationMetrics",
    "ExplanationPath",
    "FaithfulnessResult",
    "PathFinder",
    "RANKINGS",
    "explanation_metrics",
    "graph_without",
    "path_faithfulness",
    "path_text",
    "path_type",
    "relation_label",
    "score_shares",
]
