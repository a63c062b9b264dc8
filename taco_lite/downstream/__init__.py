"""Downstream tasks: step localization (CrossTask style) and action segmentation (COIN style).

`python -m taco_lite.downstream` is the command line."""

from taco_lite.downstream.cli import (
    ENCODERS,
    PAPER,
    TACO_SLUG,
    Tasks,
    build_parser,
    evaluate_encoder,
    format_table,
    localization_report,
    main,
    real_tasks,
    run,
    world_tasks,
)
from taco_lite.downstream.encoders import ensure_checkpoint, load_encoder, random_encoder, text_idf

__all__ = [
    "ENCODERS",
    "TACO_SLUG",
    "PAPER",
    "localization_report",
    "ensure_checkpoint",
    "load_encoder",
    "random_encoder",
    "evaluate_encoder",
    "Tasks",
    "world_tasks",
    "real_tasks",
    "text_idf",
    "run",
    "format_table",
    "build_parser",
    "main",
]
