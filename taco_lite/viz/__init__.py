"""Every figure of the kit, in one style."""

from taco_lite.viz.figures import (
    BEST_COLOUR,
    FIG_WIDTH,
    GOLD_COLOUR,
    INTEREST_COLOUR,
    STEP_COLOURS,
    WIDE_WIDTH,
    figure_png,
    frame_strip,
    kit_style,
    plot_cascade_candidates,
    plot_clip,
    plot_token_frame_alignment,
    retrieval_results_png,
    show,
)
from taco_lite.viz.tags import interest_spans, render_tagged, tag_row

__all__ = [
    "FIG_WIDTH",
    "WIDE_WIDTH",
    "STEP_COLOURS",
    "kit_style",
    "plot_clip",
    "GOLD_COLOUR",
    "BEST_COLOUR",
    "INTEREST_COLOUR",
    "frame_strip",
    "plot_token_frame_alignment",
    "plot_cascade_candidates",
    "retrieval_results_png",
    "figure_png",
    "show",
    "tag_row",
    "interest_spans",
    "render_tagged",
]
