"""What the training loop watches besides the loss curve: divergence, and the pair counts
that must survive a resume.

`DivergenceGuard.check(record)` stops a run whose loss is not finite or has grown by orders of
magnitude over its start (`--lr 1e6` reached a loss of 1.3e12 and used to end with rc 0): it
raises `TrainingDiverged`, and the loop saves nothing as final (no model.pt, no last.pt at the
diverged step; the last periodic checkpoint, written before, stays).

`views_to_tensor` / `views_from_tensor` carry the (epoch, seg_id) -> times-seen counts through
a checkpoint (a plain int64 tensor, which `weights_only` loading accepts), so that a resumed
run's `pair_views` counts the whole run.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import torch

GROWTH = 100.0  # a loss above GROWTH x max(first loss, 1) has diverged


class TrainingDiverged(ValueError):
    """The loss went non-finite or grew by orders of magnitude."""


class DivergenceGuard:
    def __init__(self, history: list[dict[str, Any]], ckpt_dir: Any, lr: float):
        first = next((r.get("loss") for r in history if r.get("loss") is not None), None)
        self.reference = first
        self.ckpt_dir = ckpt_dir
        self.lr = lr

    def check(self, record: Mapping[str, Any]) -> None:
        loss = record.get("loss")
        if loss is None:
            return
        if self.reference is None:
            self.reference = loss
        limit = GROWTH * max(abs(self.reference), 1.0)
        if math.isfinite(loss) and loss <= limit:
            return
        what = "is not finite" if not math.isfinite(loss) else (
            f"grew from {self.reference:.3g} to {loss:.3g} (over {GROWTH:.0f}x)"
        )  # fmt: skip
        raise TrainingDiverged(
            f"training diverged at step {record.get('step')}: the loss {what}. Nothing was "
            f"saved as final (the last periodic checkpoint in {self.ckpt_dir} is from before). "
            f"Lower the learning rate (--lr, now {self.lr:g}) and keep gradient clipping on"
        )


def views_to_tensor(views: Mapping[tuple[int, int], int]) -> torch.Tensor:
    """(K, 3) int64 rows of (epoch, seg_id, count)."""
    rows = [(int(e), int(s), int(c)) for (e, s), c in sorted(views.items())]
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, 3)


def views_from_tensor(t: Any) -> Counter:
    if not isinstance(t, torch.Tensor) or t.numel() == 0:
        return Counter()
    return Counter({(int(e), int(s)): int(c) for e, s, c in t.tolist()})
