"""Data: the world as a torch Dataset, collate into a Batch, and the real-feature adapter."""

from taco_lite.data.dataset import (
    WorldDataset,
    assign_caption_ids,
    build_datasets,
    caption_key,
    collate,
    encode_text_item,
)
from taco_lite.data.endless import EndlessTrainSet

__all__ = [
    "encode_text_item",
    "caption_key",
    "assign_caption_ids",
    "WorldDataset",
    "collate",
    "build_datasets",
    "EndlessTrainSet",
]
