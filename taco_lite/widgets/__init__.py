"""The ipywidgets explorers: alignment, cascade sampler, retrieval browser."""

from taco_lite.widgets.app import (
    Explorer,
    alignment_explorer,
    cascade_explorer,
    load_explorers,
    retrieval_browser,
)

__all__ = [
    "load_explorers",
    "Explorer",
    "alignment_explorer",
    "cascade_explorer",
    "retrieval_browser",
]
