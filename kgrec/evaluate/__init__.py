"""Full-ranking evaluation and the metrics people quote (Recall, NDCG, MRR, Hit, Precision, AUC, coverage, diversity)."""

from kgrec.evaluate.metrics import auc, coverage, intra_list_diversity, topk_metrics
from kgrec.evaluate.ranking import EvaluationResult, evaluate_ranking, interaction_matrix

__all__ = ["EvaluationResult", "auc", "coverage", "evaluate_ranking", "interaction_matrix", "intra_list_diversity", "topk_metrics"]
