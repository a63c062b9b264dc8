"""Two checkpoints on the same queries: R@1(a) - R@1(b) with a paired bootstrap interval.

    python -m taco_lite.evaluate --checkpoint data/checkpoints/taco.pt \
        --against data/checkpoints/baseline_l1.pt --full-fusion-subset 0

Each model is ranked by the score it trained (`retrieval.deployed_scores`: s1 for L1, the
cascade for TACo) on the same pairs of a split, each split encoded as its own checkpoint was
trained (vocabulary, tokens of interest). Why paired: both answer the same queries, so the
per-query difference cancels query difficulty (`metrics.paired_bootstrap`). One checkpoint
each: the interval covers the queries, not training seeds (the sweep's tables cover both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from taco_lite.metrics import paired_bootstrap, rank_metrics


@torch.no_grad()
def dataset_ranks(model: Any, dataset: Sequence, terms: Sequence[str], lambda_t: float,
                  top_k: int = 16) -> dict[str, torch.Tensor]:  # fmt: skip
    """1-based ranks (N,) of every pair of `dataset` (items) under the run's deployed score
    (`retrieval.deployed_ranks` after one pass of the encoders)."""
    from taco_lite.evaluate.inference import embed_dataset
    from taco_lite.evaluate.retrieval import deployed_ranks

    return deployed_ranks(model, embed_dataset(model, dataset), terms, lambda_t, top_k)


def paired_difference(
    ranks_a: dict[str, torch.Tensor], ranks_b: dict[str, torch.Tensor], n_boot: int = 10000
) -> dict[str, dict[str, float]]:
    """Per direction: R@1 of a and b, their difference a - b and its 95% interval (points)."""
    out = {}
    for d in ("t2v", "v2t"):
        if ranks_a[d].shape != ranks_b[d].shape:
            raise ValueError(
                f"{d}: {tuple(ranks_a[d].shape)} vs {tuple(ranks_b[d].shape)} queries; both "
                "checkpoints must be scored on the same pairs of the same split"
            )
        b = paired_bootstrap(ranks_b[d], ranks_a[d], n_boot=n_boot)  # diff = a - b
        out[d] = {"R1_a": rank_metrics(ranks_a[d])["R1"], "R1_b": rank_metrics(ranks_b[d])["R1"],
                  "diff": b["diff"], "lo": b["lo"], "hi": b["hi"], "N": int(b["N"])}  # fmt: skip
    return out


def format_comparison(comparison: dict[str, Any], name_a: str, name_b: str) -> str:
    """Markdown: one row per split, R@1 of both and the paired difference, both directions."""
    lines = [
        f"Paired comparison, each ranked by its deployed score: a = {name_a}, b = {name_b}",
        "",
        "| split | N | R@1 t2v a / b | a - b t2v [95% CI] | R@1 v2t a / b | a - b v2t [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for split, res in comparison.items():
        t, v = res["t2v"], res["v2t"]
        lines.append(
            f"| {split} | {t['N']} | {t['R1_a']:.1f} / {t['R1_b']:.1f} | {t['diff']:+.1f} "
            f"[{t['lo']:+.1f}, {t['hi']:+.1f}] | {v['R1_a']:.1f} / {v['R1_b']:.1f} | "
            f"{v['diff']:+.1f} [{v['lo']:+.1f}, {v['hi']:+.1f}] |"
        )
    return "\n".join(lines) + "\n"


__all__ = ["dataset_ranks", "paired_difference", "format_comparison"]
