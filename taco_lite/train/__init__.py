"""Training: one TACo step, batch schedules, and the loop with checkpoints.

`python -m taco_lite.train --preset fast` is the command line."""

from taco_lite.train.cli import build_parser, configs_from_args, main
from taco_lite.train.loop import TrainResult, load_world_datasets, train

__all__ = [
    "TrainResult",
    "load_world_datasets",
    "train",
    "build_parser",
    "configs_from_args",
    "main",
]
