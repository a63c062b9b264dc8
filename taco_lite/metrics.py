"""Retrieval and grounding metrics (docs/method.md §6) on similarity matrices. Imports only torch.

Convention: rows are queries, columns are candidates, and the ground truth of query i is
candidate i (the diagonal). For text-to-video retrieval pass sim[text, video]; for
video-to-text pass sim.T (`retrieval_report` does both).

Ranks are 1-based and *optimistic on ties*: rank = 1 + the number of candidates scoring
strictly higher than the ground truth. A candidate that ties with the ground truth does not
push it down. (This is the rule of docs/method.md §6; note that a constant similarity matrix
therefore scores R@1 = 100, so never evaluate a model whose scores collapsed to a constant
without looking at the scores.)
"""

from __future__ import annotations

import warnings

import torch

from taco_lite.shapes import (
    SCORES_INF,
    require_bool,
    require_dims,
    require_finite,
    require_float,
    require_no_nan,
    shape_str,
)

__all__ = [
    "retrieval_ranks",
    "rank_metrics",
    "retrieval_metrics",
    "paired_bootstrap",
    "retrieval_report",
    "grounding_counts",
    "grounding_accuracy",
]


def retrieval_ranks(sim: torch.Tensor) -> torch.Tensor:
    """1-based rank of each query's ground truth: 1 + #{j : sim[i, j] > sim[i, i]}.

    sim: (N, N), rows = queries, ground truth on the diagonal. Returns LongTensor (N,).
    Ties count in the query's favour (strictly higher only). NaN and +-inf raise ValueError,
    because a NaN compares false with everything and inf ties with inf, so either would
    silently rank the ground truth first.
    """
    require_dims("sim", sim, "(N, N)")
    require_float("sim", sim)
    N, M = sim.shape
    if N != M:
        raise ValueError(
            f"sim has shape {shape_str(sim)} but retrieval needs a square (N, N) matrix with "
            f"the ground truth of query i at column i"
        )
    if N == 0:
        raise ValueError("sim is empty (N = 0): nothing to rank")
    require_finite("sim", sim, SCORES_INF)
    low = sim.dtype in LOW_PRECISION
    sim = sim.float() if sim.dtype != torch.float64 else sim  # (N, N), float32 or wider
    gt = sim.diagonal()[:, None]  # (N, 1)
    if low:
        _warn_low_precision_ties(sim, gt)
    return 1 + (sim > gt).sum(dim=1)  # (N,)


LOW_PRECISION = (torch.bfloat16, torch.float16)


def _warn_low_precision_ties(sim: torch.Tensor, gt: torch.Tensor) -> None:
    """bf16 keeps 8 bits of mantissa: close scores round to one value, and the optimistic tie
    rule (docs/method.md §6) then counts each tie for the query, inflating R@k. Warn when it
    happens so that the caller recomputes the scores in float32."""
    ties = (sim == gt).sum(dim=1) - 1  # (N,) candidates tied with the ground truth
    n_tied = int((ties > 0).sum())
    if n_tied:
        warnings.warn(
            f"sim is low precision: {n_tied} of {sim.shape[0]} queries tie with their ground "
            "truth, and ties count in the query's favour (docs/method.md §6), so R@k may be "
            "inflated. Compute the similarity in float32 (e.g. embeddings.float() before "
            "the matrix product) for trustworthy ranks",
            stacklevel=3,
        )


def retrieval_metrics(sim: torch.Tensor) -> dict[str, float]:
    """R@1, R@5, R@10 (percent, 0-100), MedR and MnR (1-based ranks) for one direction.

    sim: (N, N), rows = queries, ground truth on the diagonal (docs/method.md §6).
    Returns {"R1", "R5", "R10", "MedR", "MnR"} as Python floats. MedR is the true median:
    the mean of the two middle ranks when N is even (as `numpy.median`).
    Lower MedR/MnR and higher R@k are better; a perfect matrix gives R1 = 100, MedR = MnR = 1.
    """
    return rank_metrics(retrieval_ranks(sim))


def rank_metrics(ranks: torch.Tensor) -> dict[str, float]:
    """R@1, R@5, R@10 (percent), MedR and MnR from 1-based ranks (N,), as `retrieval_metrics`."""
    require_dims("ranks", ranks, "(N,)")
    if ranks.numel() == 0:
        raise ValueError("ranks is empty (N = 0): nothing to summarise")
    if bool((ranks < 1).any()):
        raise ValueError("ranks must be 1-based (>= 1); use metrics.retrieval_ranks")
    ranks = ranks.double()  # (N,)
    return {
        "R1": 100.0 * float((ranks <= 1).double().mean()),
        "R5": 100.0 * float((ranks <= 5).double().mean()),
        "R10": 100.0 * float((ranks <= 10).double().mean()),
        "MedR": float(torch.quantile(ranks, 0.5)),  # linear: mean of the middles if N is even
        "MnR": float(ranks.mean()),
    }


def retrieval_report(sim: torch.Tensor) -> dict[str, dict[str, float]]:
    """Both directions from one text x video matrix: {"t2v": ..., "v2t": ...}.

    sim: (N, N) with sim[i, j] = score of text i against video j; "t2v" ranks videos for each
    text (rows of sim), "v2t" ranks texts for each video (rows of sim.T).
    """
    return {"t2v": retrieval_metrics(sim), "v2t": retrieval_metrics(sim.T)}


def paired_bootstrap(
    ranks_a: torch.Tensor,
    ranks_b: torch.Tensor,
    k: int = 1,
    n_boot: int = 10000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """Paired bootstrap interval of R@k(b) - R@k(a), in percentage points, over queries and seeds.

    ranks_a, ranks_b: 1-based ranks of the same queries under runs a and b, shape (N,) for one
    seed or (S, N) for S seeds (row s of both: the same training seed; every row the same N
    queries). Why paired: both runs answer the same queries, so the per-query difference
    cancels query difficulty and the interval is much tighter than two separate ones.

    Each of `n_boot` replicates draws S seeds with replacement and, within each drawn seed, N
    queries with replacement (a two-level bootstrap; with S = 1 only queries are resampled),
    and takes the mean of hit_b - hit_a (hit = rank <= k, in percent). Returns {"R_a", "R_b",
    "diff" (point estimate: R_b - R_a on all queries), "lo", "hi" (percentile interval at
    `level`), "se" (std of the replicates), "N", "S", "n_boot"}. Deterministic in `seed`.
    """
    a, b = ranks_a, ranks_b
    if a.shape != b.shape:
        raise ValueError(
            f"ranks_a has shape {shape_str(a)} but ranks_b is {shape_str(b)}: a paired "
            "bootstrap needs the same queries (and seeds) in both runs"
        )
    if a.dim() == 1:
        a, b = a[None], b[None]
    require_dims("ranks_a", a, "(S, N)")
    S, N = a.shape
    if N == 0 or S == 0:
        raise ValueError("ranks are empty: the bootstrap needs at least one query")
    if k < 1 or n_boot < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"need k >= 1, n_boot >= 1, 0 < level < 1; got {k}, {n_boot}, {level}")
    d = 100.0 * ((b <= k).double() - (a <= k).double())  # (S, N) per-query difference
    g = torch.Generator().manual_seed(seed)
    reps, chunk = [], max(1, 2_000_000 // (S * N))
    for start in range(0, n_boot, chunk):
        c = min(chunk, n_boot - start)
        s_idx = torch.randint(S, (c, S), generator=g)  # (c, S) drawn seeds
        q_idx = torch.randint(N, (c, S, N), generator=g)  # (c, S, N) drawn queries
        reps.append(d[s_idx[:, :, None], q_idx].mean(dim=(1, 2)))  # (c,)
    rep = torch.cat(reps)  # (n_boot,)
    alpha = (1.0 - level) / 2
    lo, hi = torch.quantile(rep, torch.tensor([alpha, 1.0 - alpha], dtype=rep.dtype))
    return {
        "R_a": 100.0 * float((a <= k).double().mean()),
        "R_b": 100.0 * float((b <= k).double().mean()),
        "diff": float(d.mean()),
        "lo": float(lo),
        "hi": float(hi),
        "se": float(rep.std()),
        "N": N,
        "S": S,
        "n_boot": n_boot,
    }


def grounding_counts(
    token_frame_sim: torch.Tensor,
    gold_frames: torch.Tensor,
    token_mask: torch.Tensor,
    video_mask: torch.Tensor | None = None,
) -> tuple[int, int]:
    """(correct, scored) for token grounding, so a dataset total can be summed over batches.

    token_frame_sim: (n, m) or (B, n, m), token p of a text against frame k of *its own* video.
    gold_frames: bool, same shape, True where the frame shows what the token names.
    token_mask: bool (n,) or (B, n), which tokens to score (e.g. tokens of interest).
    video_mask: bool (m,) or (B, m), True = real frame; None means every frame is real.

    A token is scored if it is in token_mask and has at least one gold frame among the valid
    frames. It is correct if its argmax over valid frames is a gold frame (ties go to the
    earliest frame, as `argmax`). Why this metric: TACo's token loss should make a word
    attend to the frames it names; this checks that directly, not just through retrieval.
    """
    sim, gold, tmask = token_frame_sim, gold_frames, token_mask
    require_float("token_frame_sim", sim)
    require_bool("gold_frames", gold)
    require_bool("token_mask", tmask)
    if sim.dim() == 2:
        sim, gold, tmask = sim[None], gold[None], tmask[None]
        video_mask = video_mask[None] if video_mask is not None else None
    require_dims("token_frame_sim", sim, "(B, n, m)")
    B, n, m = sim.shape
    if gold.shape != sim.shape:
        raise ValueError(
            f"gold_frames has shape {shape_str(gold_frames)} but token_frame_sim is "
            f"{shape_str(token_frame_sim)}: gold needs one entry per (token, frame)"
        )
    if tmask.shape != (B, n):
        raise ValueError(
            f"token_mask has shape {shape_str(token_mask)} but token_frame_sim is "
            f"{shape_str(token_frame_sim)}: the mask needs one entry per token"
        )
    if video_mask is None:
        video_mask = torch.ones(B, m, dtype=torch.bool, device=sim.device)
    require_bool("video_mask", video_mask)
    if video_mask.shape != (B, m):
        raise ValueError(
            f"video_mask has shape {shape_str(video_mask)} (batched) but token_frame_sim is "
            f"{shape_str(sim)}: the mask needs one entry per frame"
        )
    require_no_nan("token_frame_sim", sim)

    gold = gold & video_mask[:, None, :]  # (B, n, m), gold on padded frames does not count
    scored = tmask & gold.any(dim=2)  # (B, n)
    masked = sim.masked_fill(~video_mask[:, None, :], float("-inf"))  # (B, n, m)
    best = masked.argmax(dim=2)  # (B, n), predicted frame of each token
    hit = gold.gather(2, best[:, :, None]).squeeze(2)  # (B, n)
    return int((hit & scored).sum()), int(scored.sum())


def grounding_accuracy(
    token_frame_sim: torch.Tensor,
    gold_frames: torch.Tensor,
    token_mask: torch.Tensor,
    video_mask: torch.Tensor | None = None,
) -> float:
    """Fraction of scored tokens whose best frame is a gold frame (see `grounding_counts`).

    Returns a float in [0, 1]. Raises ValueError when no token has a gold frame, rather than
    returning NaN: accuracy over nothing is undefined (sum `grounding_counts` over batches
    when single batches may be empty).
    """
    correct, scored = grounding_counts(token_frame_sim, gold_frames, token_mask, video_mask)
    if scored == 0:
        raise ValueError(
            "no token in token_mask has a gold frame on a valid frame: grounding accuracy is "
            "undefined here; check gold_frames (all False without ground truth) or sum "
            "grounding_counts over several batches"
        )
    return correct / scored
