"""Retrieval and grounding metrics (TACO_SPEC §6) on similarity matrices. Imports only torch.

Convention: rows are queries, columns are candidates, and the ground truth of query i is
candidate i (the diagonal). For text-to-video retrieval pass sim[text, video]; for
video-to-text pass sim.T (`retrieval_report` does both).

Ranks are 1-based and *optimistic on ties*: rank = 1 + the number of candidates scoring
strictly higher than the ground truth. A candidate that ties with the ground truth does not
push it down. (This is the rule of TACO_SPEC §6; note that a constant similarity matrix
therefore scores R@1 = 100, so never evaluate a model whose scores collapsed to a constant
without looking at the scores.)
"""

from __future__ import annotations

import torch

from taco_lite.shapes import (
    require_bool,
    require_dims,
    require_float,
    require_no_nan,
    shape_str,
)

__all__ = [
    "retrieval_ranks",
    "retrieval_metrics",
    "retrieval_report",
    "grounding_counts",
    "grounding_accuracy",
]


def retrieval_ranks(sim: torch.Tensor) -> torch.Tensor:
    """1-based rank of each query's ground truth: 1 + #{j : sim[i, j] > sim[i, i]}.

    sim: (N, N), rows = queries, ground truth on the diagonal. Returns LongTensor (N,).
    Ties count in the query's favour (strictly higher only). NaN raises ValueError, because a
    NaN compares false with everything and would silently rank the ground truth first.
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
    require_no_nan("sim", sim)
    gt = sim.diagonal()[:, None]  # (N, 1)
    return 1 + (sim > gt).sum(dim=1)  # (N,)


def retrieval_metrics(sim: torch.Tensor) -> dict[str, float]:
    """R@1, R@5, R@10 (percent, 0-100), MedR and MnR (1-based ranks) for one direction.

    sim: (N, N), rows = queries, ground truth on the diagonal (TACO_SPEC §6).
    Returns {"R1", "R5", "R10", "MedR", "MnR"} as Python floats. MedR is the true median:
    the mean of the two middle ranks when N is even (as `numpy.median`).
    Lower MedR/MnR and higher R@k are better; a perfect matrix gives R1 = 100, MedR = MnR = 1.
    """
    ranks = retrieval_ranks(sim).double()  # (N,)
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
