"""Full-ranking evaluation and the metrics people quote (Recall, NDCG, MRR, Hit, Precision, AUC, coverage, diversity)."""

from kgrec.evaluate.auxiliary import link_prediction, rating_errors
from kgrec.evaluate.metrics import auc, coverage, intra_list_diversity, topk_contributions, topk_metrics
from kgrec.evaluate.ranking import EvaluationResult, evaluate_blends, evaluate_ranking, interaction_matrix
from kgrec.evaluate.segments import ITEM_POPULARITY, USER_ACTIVITY, Segment, segment_labels, segment_of
from kgrec.evaluate.significance import PairedComparison, holm, paired_comparison

__all__ = [
    "ITEM_POPULARITY",
    "USER_ACTIVITY",
    "EvaluationResult",
    "Segment",
    "segment_labels",
    "segment_of",
    "PairedComparison",
    "auc",
    "coverage",
    "evaluate_blends",
    "evaluate_ranking",
    "holm",
    "interaction_matrix",
    "intra_list_diversity",
    "link_prediction",
    "paired_comparison",
    "rating_errors",
    "topk_contributions",
    "topk_metrics",
]
