"""Downstream tasks: step localization (CrossTask style) and action segmentation (COIN style).

`python -m taco_lite.downstream` is the command line."""

from taco_lite.downstream.cli import (
    ENCODERS,
    PAPER,
    TACO_SLUG,
    build_parser,
    ensure_checkpoint,
    evaluate_encoder,
    format_table,
    load_encoder,
    localization_report,
    main,
    random_encoder,
    run,
)

__all__ = [
    "ENCODERS",
    "TACO_SLUG",
    "PAPER",
    "localization_report",
    "ensure_checkpoint",
    "load_encoder",
    "random_encoder",
    "evaluate_encoder",
    "run",
    "format_table",
    "build_parser",
    "main",
]
