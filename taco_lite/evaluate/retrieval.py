"""Retrieval of a trained TACo model per score (paper Table 11) and by cascade inference (§5).

What is reported (docs/evaluation.md explains every number):

- retrieval on the whole split for s1, s2, s1+s2 (the cascade's cheap first stage) and
  `cascade` (top-k re-scored by fusion), text-to-video and video-to-text;
- Table 11, with all N^2 fusion passes, on the whole split by default (or a seeded random
  subset): s1, s2, s1+s2, s3 alone, `sum` = s1 + lambda_t * s2 + s3 (the paper's inference) and `cascade`,
  with the R@1 gap cascade - sum and the wall-time ratio full fusion / cascade;
- `ranked_retrieval`: the score a run trained with given loss terms would use at test time.

Grounding is in `grounding.py`, the report over splits in `report.py`, the command line
(`python -m taco_lite.evaluate`) in `cli.py`. The scores themselves live in `inference.py`;
ranks follow `metrics.retrieval_ranks` (rank = 1 + number of candidates scoring strictly
higher than the ground truth).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from taco_lite.evaluate.inference import (
    Embedded,
    cascade_scores,
    coarse_scores,
    embed_dataset,
    full_fusion_scores,
    global_scores,
    token_scores_s2,
)
from taco_lite.metrics import rank_metrics, retrieval_metrics, retrieval_ranks, retrieval_report

__all__ = ["evaluate_retrieval", "ranked_retrieval", "deployed_ranks", "retrieval_with_ranks"]


def _device(name: torch.device | str | None, model: Any) -> torch.device:
    if name is None:
        return next(model.parameters()).device
    if isinstance(name, torch.device):
        return name
    from taco_lite.runtime.device import resolve_device

    return resolve_device(name)


def _embedded(model: Any, data: Embedded | Sequence, device: torch.device, batch_size: int):
    return data if isinstance(data, Embedded) else embed_dataset(model, data, batch_size, device)


def _temperatures(model: Any) -> tuple[float, float]:
    cfg = getattr(model, "cfg", None)
    return float(getattr(cfg, "tau1", 1.0)), float(getattr(cfg, "tau2", 1.0))


def _cascade_report(model, emb, coarse, top_k, chunk) -> dict[str, dict[str, float]]:
    return {
        "t2v": retrieval_metrics(cascade_scores(model, emb, coarse, top_k, "t2v", chunk)),
        "v2t": retrieval_metrics(cascade_scores(model, emb, coarse, top_k, "v2t", chunk)),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate_retrieval(
    model: Any,
    dataset: Embedded | Sequence,
    lambda_t: float = 0.5,
    top_k: int = 16,
    full_fusion_subset: int | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    batch_size: int = 128,
    fusion_chunk: int = 512,
) -> dict[str, Any]:
    """Retrieval for each score alone and combined (Table 11) plus cascade inference (§5).

    dataset: a split (items for `data.collate`) or an `Embedded` from `embed_dataset`.
    Returns {"N", "chance_R1", "top_k", "lambda_t", "fusion_pairs", "s1", "s2", "s1+s2",
    "cascade", "subset"}; each score entry is {"t2v": m, "v2t": m} with m = {"R1", "R5", "R10"
    (percent), "MedR", "MnR" (1-based ranks)}. "subset" holds the same on `full_fusion_subset`
    items drawn with `seed` (all items if N is smaller), plus "s3", "sum", "R1_gap" (cascade -
    sum, percentage points), "seconds_full", "seconds_cascade" and "speedup" (full / cascade).
    Both timed paths start from the cached embeddings and include their s1/s2 computation.
    `full_fusion_subset=None` (the default) runs Table 11 on the whole split ("subset" then
    holds all N items, "full": True): a subset can mislead (on 200 test pairs s3 alone scored
    23.3 R@1, on all 406 pairs 13.1). `full_fusion_subset=0` skips it ("subset": None).
    """
    device = _device(device, model)
    was_training = model.training
    model.eval()
    try:
        emb = _embedded(model, dataset, device, batch_size).to(device)
        N = len(emb)
        k = min(top_k, N)
        if k < 1:
            raise ValueError(f"top_k is {top_k} but the cascade re-scores at least 1 candidate")
        tau1, tau2 = _temperatures(model)
        s1, s2 = global_scores(emb), token_scores_s2(emb)  # (N, N) each
        coarse = coarse_scores(s1, s2, lambda_t, tau1, tau2)  # (N, N)
        out: dict[str, Any] = {
            "N": N, "chance_R1": 100.0 / N, "top_k": k, "lambda_t": lambda_t,
            "fusion_pairs": 2 * N * k,
            "s1": retrieval_report(s1), "s2": retrieval_report(s2),
            "s1+s2": retrieval_report(coarse),
            "cascade": _cascade_report(model, emb, coarse, k, fusion_chunk),
        }  # fmt: skip
        out["subset"] = (
            _subset_report(
                model, emb, lambda_t, top_k, full_fusion_subset, seed, fusion_chunk, device
            )
            if full_fusion_subset is None or full_fusion_subset > 0
            else None  # 0 skips full fusion (e.g. a quick check at the end of training)
        )
    finally:
        model.train(was_training)
    return out


def _subset_report(model, emb, lambda_t, top_k, size, seed, chunk, device) -> dict[str, Any]:
    """Table 11 with all N_s^2 fusion passes (the full split, or a seeded subset of `size`),
    with cascade timing."""
    N = len(emb)
    if size is not None and size < 0:
        raise ValueError(
            f"full_fusion_subset is {size} but must be >= 0 (None: the full split; 0 skips it)"
        )
    g = torch.Generator().manual_seed(seed)
    whole = size is None or size >= N
    idx = torch.arange(N) if whole else torch.randperm(N, generator=g)[:size].sort().values
    sub = emb.subset(idx)
    Ns, k = len(sub), min(top_k, len(sub))
    tau1, tau2 = _temperatures(model)

    _sync(device)
    t0 = time.perf_counter()
    s1, s2 = global_scores(sub), token_scores_s2(sub)  # (Ns, Ns)
    coarse = coarse_scores(s1, s2, lambda_t, tau1, tau2)  # (Ns, Ns)
    s3 = full_fusion_scores(model, sub, chunk)  # (Ns, Ns): Ns^2 fusion passes
    total = coarse + s3  # (Ns, Ns) the paper's s1 + lambda_t s2 + s3
    _sync(device)
    seconds_full = time.perf_counter() - t0

    t0 = time.perf_counter()
    s1c, s2c = global_scores(sub), token_scores_s2(sub)
    coarse_c = coarse_scores(s1c, s2c, lambda_t, tau1, tau2)
    cascade = _cascade_report(model, sub, coarse_c, k, chunk)  # 2 * Ns * k fusion passes
    _sync(device)
    seconds_cascade = time.perf_counter() - t0

    full = retrieval_report(total)
    return {
        "N": Ns, "full": whole, "seed": seed, "top_k": k, "indices": idx.tolist(),
        "s1": retrieval_report(s1), "s2": retrieval_report(s2),
        "s1+s2": retrieval_report(coarse), "s3": retrieval_report(s3),
        "sum": full, "cascade": cascade,
        "R1_gap": {d: cascade[d]["R1"] - full[d]["R1"] for d in ("t2v", "v2t")},
        "fusion_pairs_full": Ns * Ns, "fusion_pairs_cascade": 2 * Ns * k,
        "seconds_full": seconds_full, "seconds_cascade": seconds_cascade,
        "speedup": seconds_full / max(seconds_cascade, 1e-9),
    }  # fmt: skip


def deployed_scores(
    model: Any, emb: Embedded, terms: Sequence[str], lambda_t: float = 0.5, top_k: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """The score a run trained with loss `terms` would use at test time (§5), as query rows:
    (t2v (N, N) text x video, v2t (N, N) video x text).

    The paper's inference sums the scores the run trained: s1 (L1 only); s1 + lambda_t * s2
    (L1+L2: s1 / tau1 + lambda_t * s2 / tau2, as `coarse_scores`); s3 over all N^2 pairs
    (L3 only, no cheap first stage exists); otherwise cascade inference, ranking by
    s1 + lambda_t * s2 (s2 only if L2 was trained) and re-scoring the top-k with + s3.
    """
    tau1, tau2 = _temperatures(model)
    terms = tuple(terms)
    emb = emb.to(next(model.parameters()).device)  # fusion runs where the model lives
    if terms == ("L3",):
        full = full_fusion_scores(model, emb)  # (N, N)
        return full, full.T
    s1 = global_scores(emb)  # (N, N)
    lam = lambda_t if "L2" in terms else 0.0
    s2 = token_scores_s2(emb) if lam else torch.zeros_like(s1)  # (N, N)
    coarse = coarse_scores(s1, s2, lam, tau1, tau2)  # (N, N): s1/tau1 + lambda_t s2/tau2
    if "L3" not in terms:  # L1 (+ L2): the first stage is the whole score
        return (coarse, coarse.T) if lam else (s1, s1.T)
    k = min(top_k, len(emb))
    return cascade_scores(model, emb, coarse, k, "t2v"), cascade_scores(
        model, emb, coarse, k, "v2t"
    )


def deployed_ranks(
    model: Any, emb: Embedded, terms: Sequence[str], lambda_t: float = 0.5, top_k: int = 16
) -> dict[str, torch.Tensor]:
    """1-based ranks (N,) of every query under `deployed_scores`: {"t2v", "v2t"}, for paired
    comparisons between runs on the same queries (`metrics.paired_bootstrap`)."""
    t2v, v2t = deployed_scores(model, emb, terms, lambda_t, top_k)
    return {"t2v": retrieval_ranks(t2v), "v2t": retrieval_ranks(v2t)}


def retrieval_with_ranks(
    model: Any, emb: Embedded, terms: Sequence[str], lambda_t: float = 0.5, top_k: int = 16
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """`ranked_retrieval`'s metrics and the 1-based ranks (N,) behind them, per direction, from
    one call of `deployed_scores`: the ranks are what a paired comparison between runs needs."""
    out: dict[str, Any] = {}
    if "L1" in tuple(terms):
        out["s1"] = retrieval_report(global_scores(emb.to(next(model.parameters()).device)))
    ranks = deployed_ranks(model, emb, terms, lambda_t, top_k)
    out["ranked"] = {d: rank_metrics(r) for d, r in ranks.items()}
    return out, ranks


def ranked_retrieval(
    model: Any, emb: Embedded, terms: Sequence[str], lambda_t: float = 0.5, top_k: int = 16
) -> dict[str, Any]:
    """Retrieval by the score a run trained with loss `terms` would use at test time
    (`deployed_scores`). Returns {"ranked": {"t2v", "v2t"}} plus {"s1": ...} when L1 was
    trained."""
    return retrieval_with_ranks(model, emb, terms, lambda_t, top_k)[0]
