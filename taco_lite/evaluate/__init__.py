"""Evaluation: embed a split once, score it (s1, s2, s3, cascade), retrieval and grounding.

`python -m taco_lite.evaluate --checkpoint PATH` is the command line."""

from taco_lite.evaluate.retrieval import (
    GROUNDING_POS,
    build_parser,
    datasets_for_checkpoint,
    evaluate,
    evaluate_retrieval,
    format_report,
    gold_pos_ids,
    grounding_accuracy_report,
    main,
    ranked_retrieval,
)

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
