"""Evaluation: embed a split once, score it (s1, s2, s3, cascade), retrieval and grounding.

`python -m taco_lite.evaluate --checkpoint PATH` is the command line."""

from taco_lite.evaluate.cli import build_parser, datasets_for_checkpoint, main
from taco_lite.evaluate.grounding import GROUNDING_POS, gold_pos_ids, grounding_accuracy_report
from taco_lite.evaluate.report import evaluate, format_report
from taco_lite.evaluate.retrieval import evaluate_retrieval, ranked_retrieval

__all__ = [
    "GROUNDING_POS",
    "evaluate_retrieval",
    "ranked_retrieval",
    "gold_pos_ids",
    "grounding_accuracy_report",
    "evaluate",
    "format_report",
    "datasets_for_checkpoint",
    "build_parser",
    "main",
]
