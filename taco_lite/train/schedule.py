"""When things happen in training: the learning-rate schedule and the batch order.

Both are pure functions of their arguments (the batch order of (seed, epoch) only), which is
what lets a resumed run replay exactly the batches and learning rates of an unbroken one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from taco_lite.batch import Batch


def warmup_then_linear(warmup_steps: int, steps: int) -> Callable[[int], float]:
    """LR factor for LambdaLR: ramps up over `warmup_steps`, then decays linearly towards 0."""

    def factor(s: int) -> float:  # s = optimiser steps already taken
        if s < warmup_steps:
            return (s + 1) / warmup_steps
        return max(0.0, (steps - s) / max(1, steps - warmup_steps))

    return factor


def epoch_batches(N: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Index lists of one epoch: a permutation fixed by (seed, epoch); last partial batch dropped.

    Dropping it keeps B constant, so k_neg <= B - 1 holds for every batch.
    """
    g = torch.Generator().manual_seed(seed * 1000 + epoch)
    perm = torch.randperm(N, generator=g).tolist()
    return [perm[i : i + batch_size] for i in range(0, N - batch_size + 1, batch_size)]


def iterate_batches(
    dataset: Sequence, index_lists: list[list[int]], collate_fn: Callable, num_workers: int
) -> Iterator[Batch]:
    if num_workers == 0:  # plain loop: no DataLoader, nothing touches the global RNG
        for idx in index_lists:
            yield collate_fn([dataset[i] for i in idx])
        return
    loader = DataLoader(
        dataset,
        batch_sampler=index_lists,
        collate_fn=collate_fn,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(0),  # worker seeds off the global RNG
    )
    yield from loader


def pair_view_summary(views: Mapping[Any, int]) -> dict[str, float]:
    """How often each training pair was seen: {"pairs", "views", "max", "mean"}.

    views: pair key -> count, as `train()` logs it (key (epoch, seg_id) with fresh data per
    epoch, (0, seg_id) with a fixed train split). A finite split seen for E epochs gives max E;
    `data.EndlessTrainSet` gives max 1.
    """
    counts = list(views.values())
    if not counts:
        return {"pairs": 0, "views": 0, "max": 0, "mean": 0.0}
    return {
        "pairs": len(counts),
        "views": int(sum(counts)),
        "max": int(max(counts)),
        "mean": sum(counts) / len(counts),
    }
