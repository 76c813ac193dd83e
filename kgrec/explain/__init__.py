"""Why an item was recommended: explanation paths through the training graph, and their faithfulness."""

from kgrec.explain.faithfulness import FaithfulnessResult, graph_without, path_faithfulness
from kgrec.explain.paths import ExplanationPath, PathFinder, path_text, relation_label

__all__ = ["ExplanationPath", "FaithfulnessResult", "PathFinder", "graph_without", "path_faithfulness", "path_text", "relation_label"]
