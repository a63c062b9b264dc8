"""Cascade sampling (paper Sec. 3.3) for training, and cascade ranking (docs/method.md §5) at test time.

Training: the fusion layers are too expensive for all B^2 pairs of a batch. TACo scores every
pair cheaply with what L1 and L2 already computed, a(i, j) = s1(i, j) + sum_{p in P_i} s(i, p, j)
(`pair_scores`), keeps the k_neg hardest negatives per anchor (`hard_negatives`), and lays out
the 2B(k_neg + 1) pairs that the fusion layers see (`fusion_pairs`).

Inference: rank all candidates by s1 + lambda_t * s2 (`weighted_token_scores` gives s2) and
re-score only the top-k with fusion (`cascade_rerank`).

Text i is the row, video j the column; (text i, video i) is the positive. Imports only torch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from taco_lite.shapes import (
    SCORES_INF,
    require_bool,
    require_dims,
    require_finite,
    require_finite_result,
    require_float,
    require_int,
    require_no_nan,
    shape_str,
)

__all__ = [
    "pair_scores",
    "hard_negatives",
    "random_negatives",
    "fusion_pairs",
    "fusion_pair_count",
    "weighted_token_scores",
    "cascade_rerank",
]


# --------------------------------------------------------------------------------------------
# Training: which pairs go through the fusion layers
# --------------------------------------------------------------------------------------------


def pair_scores(
    sim_global: torch.Tensor, token_scores: torch.Tensor, token_mask: torch.Tensor
) -> torch.Tensor:
    """a(i, j) = s1(i, j) + sum over p in P_i of s(i, p, j), the cascade sampling score (Sec. 3.3).

    sim_global: (B, B), s1; token_scores: (B, n, B), s; token_mask: (B, n) bool, True for the
    tokens of interest P_i. Returns pair_scores (B, B) in float32.

    Why: the hardest negatives for the fusion layers are the pairs the cheap scores already
    find confusing, and both scores are by-products of L1 and L2 (no extra encoder pass).
    The paper's sum is unweighted (idf weights are used by L2 only). The caller runs this under
    `torch.no_grad()`; the function itself is pure. Masked tokens never enter the sum, so
    padding may hold any value.
    """
    require_dims("sim_global", sim_global, "(B, B)")
    require_dims("token_scores", token_scores, "(B, n, B)")
    require_dims("token_mask", token_mask, "(B, n)")
    require_float("sim_global", sim_global)
    require_float("token_scores", token_scores)
    require_bool("token_mask", token_mask)
    B_t, n, B_v = token_scores.shape
    if sim_global.shape != (B_t, B_v):
        raise ValueError(
            f"sim_global has shape {shape_str(sim_global)} but token_scores is "
            f"{shape_str(token_scores)}: both need the same texts (rows) and videos (last dim)"
        )
    if token_mask.shape != (B_t, n):
        raise ValueError(
            f"token_mask has shape {shape_str(token_mask)} but token_scores is "
            f"{shape_str(token_scores)}: the mask needs one entry per token, shape ({B_t}, {n})"
        )
    require_finite("sim_global", sim_global)
    require_finite("token_scores (tokens of interest)", token_scores[token_mask])  # rest: any
    tok = torch.where(token_mask[:, :, None], token_scores.float(), 0.0)  # (B, n, B)
    return require_finite_result("pair_scores", sim_global.float() + tok.sum(dim=1))  # (B, B)


def _check_k(k: int, B: int) -> int:
    k = require_int("k_neg", k)
    if k < 1:
        raise ValueError(f"k_neg={k} but each anchor needs at least 1 negative: use k_neg >= 1")
    if k > B - 1:
        raise ValueError(
            f"k_neg={k} but a batch of {B} pairs has only {B - 1} negatives per anchor: "
            f"lower k_neg or raise the batch size"
        )
    return k


def _best_by_tier(scores: torch.Tensor, tier: torch.Tensor, k: int) -> torch.Tensor:
    """Per row, the first k columns ordered by (tier ascending, score descending).

    Two stable sorts instead of "set the diagonal to -inf": a negative whose score is itself
    -inf must still rank above the positive, and a tie must never let the positive in.
    """
    by_score = scores.sort(dim=1, descending=True, stable=True).indices  # (B, B)
    by_tier = tier.gather(1, by_score).sort(dim=1, stable=True).indices  # (B, B)
    return by_score.gather(1, by_tier)[:, :k]  # (B, k)


def hard_negatives(
    pair_scores: torch.Tensor, k: int, caption_ids: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k hardest negatives of every text and every video (paper Sec. 3.3).

    pair_scores: (B, B), a(i, j) from `pair_scores`; k: k_neg (K' in the paper), 1 <= k <= B-1.
    Returns (videos_for_text, texts_for_video), both LongTensor (B, k):
      videos_for_text[i] = the k videos j != i with the highest a(i, j), best first;
      texts_for_video[j] = the k texts i != j with the highest a(i, j), best first.
    The positive (index i for row i) is never returned, even with ties or -inf scores: it is
    ranked after every other candidate whatever its score.

    caption_ids (optional, (B,) long; off by default, beyond the paper): equal ids mean
    identical captions. A "negative" whose caption equals the anchor's is a false negative, so
    it is ranked below every true negative. Fallback: if an anchor has fewer than k true
    negatives, its remaining slots are filled with those duplicates, best-scored first (the
    shape stays (B, k); the positive index itself is still never returned).
    """
    require_dims("pair_scores", pair_scores, "(B, B)")
    require_float("pair_scores", pair_scores)
    B, B_v = pair_scores.shape
    if B != B_v:
        raise ValueError(
            f"pair_scores has shape {shape_str(pair_scores)}: hard negatives need the square "
            f"(B, B) matrix of a training batch, positives on the diagonal"
        )
    k = _check_k(k, B)
    require_no_nan("pair_scores", pair_scores)

    eye = torch.eye(B, dtype=torch.bool, device=pair_scores.device)  # (B, B)
    tier = 2 * eye.long()  # (B, B): 0 = true negative, 1 = duplicate caption, 2 = positive
    if caption_ids is not None:
        require_dims("caption_ids", caption_ids, "(B,)")
        if caption_ids.shape[0] != B:
            raise ValueError(
                f"caption_ids has shape {shape_str(caption_ids)} but pair_scores is "
                f"{shape_str(pair_scores)}: one caption id per pair, shape ({B},)"
            )
        ids = caption_ids.to(pair_scores.device)  # (B,)
        same = ids[:, None] == ids[None, :]  # (B, B)
        tier = tier.masked_fill(same & ~eye, 1)
    scores = pair_scores.detach()
    videos_for_text = _best_by_tier(scores, tier, k)  # (B, k), over videos j for each text i
    texts_for_video = _best_by_tier(scores.T, tier.T, k)  # (B, k), over texts i for each video j
    return videos_for_text, texts_for_video


def random_negatives(
    B: int,
    k: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """k uniform negatives per anchor, without replacement and never the positive.

    The ablation baseline `negatives="random"` (paper Table 3, "random"): same count and same
    L3 as `hard_negatives`, so any gap in recall comes from *which* negatives are chosen.
    Returns (videos_for_text, texts_for_video), LongTensor (B, k) each, on `device`.
    Draws on `generator`'s device (CPU if None), so a seeded generator gives the same
    negatives on CPU and CUDA.
    """
    B = require_int("B", B)
    if B < 2:
        raise ValueError(f"B={B} but negatives need a batch of at least 2 pairs")
    k = _check_k(k, B)
    draw_device = generator.device if generator is not None else torch.device("cpu")

    def draw() -> torch.Tensor:
        noise = torch.rand(B, B - 1, generator=generator, device=draw_device)  # (B, B-1)
        pick = noise.argsort(dim=1)[:, :k]  # (B, k), k distinct slots among the B-1 others
        anchor = torch.arange(B, device=draw_device)[:, None]  # (B, 1)
        return pick + (pick >= anchor).long()  # (B, k), slot s -> index s, skipping the anchor

    videos_for_text = draw()
    texts_for_video = draw()
    if device is not None:
        videos_for_text = videos_for_text.to(device)
        texts_for_video = texts_for_video.to(device)
    return videos_for_text, texts_for_video


def fusion_pairs(
    videos_for_text: torch.Tensor, texts_for_video: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lay out the 2B anchors' (positive, negatives) pairs for the fusion layers.

    videos_for_text, texts_for_video: (B, k) LongTensor from `hard_negatives`/`random_negatives`.
    Returns (text_idx, video_idx), LongTensor (2B * (1 + k),) each, so that the trainer can
    gather `text_tokens[text_idx]` and `video_tokens[video_idx]`, run fusion once, and
    `logits.view(2 * B, 1 + k)` is ready for `losses.fusion_nce`:
      rows 0..B-1   text anchor i:  (text i, video i), (text i, video j1), ..., (text i, video jk)
      rows B..2B-1  video anchor j: (text j, video j), (text i1, video j), ..., (text ik, video j)
    The positive is column 0 of every row.
    """
    require_dims("videos_for_text", videos_for_text, "(B, k)")
    require_dims("texts_for_video", texts_for_video, "(B, k)")
    if videos_for_text.shape != texts_for_video.shape:
        raise ValueError(
            f"videos_for_text has shape {shape_str(videos_for_text)} but texts_for_video is "
            f"{shape_str(texts_for_video)}: both need (B, k) with the same k"
        )
    for name, t in (("videos_for_text", videos_for_text), ("texts_for_video", texts_for_video)):
        if t.dtype != torch.long:
            raise ValueError(f"{name} should be a LongTensor of indices but has dtype {t.dtype}")
    B, k = videos_for_text.shape
    anchor = torch.arange(B, device=videos_for_text.device)[:, None]  # (B, 1)
    text_rows = torch.cat([anchor, anchor.expand(B, k)], dim=1)  # (B, 1+k), text i throughout
    video_rows = torch.cat([anchor, videos_for_text], dim=1)  # (B, 1+k), video i then negatives
    text_cols = torch.cat([anchor, texts_for_video], dim=1)  # (B, 1+k), text j then negatives
    video_cols = torch.cat([anchor, anchor.expand(B, k)], dim=1)  # (B, 1+k), video j throughout
    text_idx = torch.cat([text_rows, text_cols], dim=0).reshape(-1)  # (2B * (1+k),)
    video_idx = torch.cat([video_rows, video_cols], dim=0).reshape(-1)  # (2B * (1+k),)
    return text_idx, video_idx


def fusion_pair_count(B: int, k: int) -> int:
    """Pairs the fusion layers see per batch with cascade sampling: 2B(k + 1).

    Compare with B^2 for all pairs: for B = 128, k = 8 that is 2304 vs 16384 (about 7x fewer),
    and the ratio B / (2(k + 1)) grows with the batch (a headline number of the kit).
    """
    B = require_int("B", B)
    k = require_int("k_neg", k)
    if B < 1 or k < 0:
        raise ValueError(f"need B >= 1 and k_neg >= 0 but got B={B}, k_neg={k}")
    return 2 * B * (k + 1)


# --------------------------------------------------------------------------------------------
# Inference: s2 and cascade re-ranking (docs/method.md §5)
# --------------------------------------------------------------------------------------------


def weighted_token_scores(token_scores: torch.Tensor, token_weights: torch.Tensor) -> torch.Tensor:
    """s2(i, j) = sum over p of w[i, p] * s(i, p, j), the token-level retrieval score (§5).

    token_scores: (N, n, M), s(i, p, j) for N texts against M videos; token_weights: (N, n).
    Returns (N, M) float32. Tokens with weight 0 are left out entirely (not multiplied), so a
    padded token's inf never becomes 0 * inf = NaN. A text without tokens of interest gets
    s2 = 0 for every video, so it is ranked by the other scores alone.
    """
    require_dims("token_scores", token_scores, "(N, n, M)")
    require_dims("token_weights", token_weights, "(N, n)")
    require_float("token_scores", token_scores)
    require_float("token_weights", token_weights)
    N, n, _ = token_scores.shape
    if token_weights.shape != (N, n):
        raise ValueError(
            f"token_weights has shape {shape_str(token_weights)} but token_scores is "
            f"{shape_str(token_scores)}: weights need one entry per token, shape ({N}, {n})"
        )
    require_finite("token_weights", token_weights)
    active = token_weights != 0  # (N, n)
    require_finite("token_scores (tokens with nonzero weight)", token_scores[active])
    tok = torch.where(active[:, :, None], token_scores.float(), 0.0)  # (N, n, M)
    w = torch.where(active, token_weights.float(), 0.0)  # (N, n)
    s2 = torch.einsum("ip,ipj->ij", w, tok)  # (N, M)
    return require_finite_result("weighted_token_scores (s2)", s2)


def cascade_rerank(
    coarse: torch.Tensor,
    k: int,
    fine_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    add_coarse: bool = True,
    rows_per_call: int | None = None,
) -> torch.Tensor:
    """Cascade inference: re-score only each query's top-k candidates with the fusion head.

    coarse: (N, M), cheap scores s1 + lambda_t * s2 (rows = queries, columns = candidates).
    k: how many candidates per row the fusion head re-scores, 1 <= k <= M (k = M is full fusion).
    fine_fn(rows, cols) -> scores: rows and cols are LongTensor (R, k) of query and candidate
        indices; it returns (R, k) (or R * k values) fusion scores s3 for those pairs.
    add_coarse: final top-k score is coarse + fine (the paper's sum s1 + lambda_t s2 + s3) when
        True, fine alone when False.
    rows_per_call: call fine_fn on this many query rows at a time (bounds fusion memory).

    Returns (N, M) float64 scores with this exact rule, per row:
      * the top-k candidates by `coarse` get (coarse +) fine, and are ordered by it;
      * every other candidate keeps coarse minus one shift, chosen so that the best of them
        sits 1.0 below the worst re-scored candidate.
    So all top-k candidates outrank all others: R@r for r <= k depends only on the re-ranking,
    while a ground truth outside the top-k keeps its coarse rank (MedR, MnR stay meaningful).
    Float64 keeps the shift from rounding away small score differences.
    """
    require_dims("coarse", coarse, "(N, M)")
    require_float("coarse", coarse)
    require_finite("coarse", coarse, SCORES_INF)
    N, M = coarse.shape
    k = require_int("k", k)
    if not 1 <= k <= M:
        raise ValueError(
            f"k={k} but coarse {shape_str(coarse)} has {M} candidates per row: "
            f"use 1 <= k <= {M} (k = {M} re-scores everything, i.e. full fusion)"
        )
    step = N if rows_per_call is None else require_int("rows_per_call", rows_per_call)
    if step < 1:
        raise ValueError(f"rows_per_call must be >= 1 but is {step}")

    coarse = coarse.detach().double()  # (N, M)
    top = coarse.topk(k, dim=1).indices  # (N, k), candidates to re-score
    fine_parts = []
    for r0 in range(0, N, step):
        cols = top[r0 : r0 + step]  # (R, k)
        rows = torch.arange(r0, r0 + cols.shape[0], device=coarse.device)[:, None].expand_as(cols)
        out = fine_fn(rows, cols)
        if not isinstance(out, torch.Tensor) or out.numel() != cols.numel():
            got = shape_str(out) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"fine_fn returned {got} for {cols.shape[0]} rows x {k} candidates: "
                f"it must return one score per (row, col) pair, shape {shape_str(cols)}"
            )
        fine_parts.append(out.detach().reshape(cols.shape).to(coarse))
    fine = torch.cat(fine_parts, dim=0)  # (N, k)
    require_finite("fine_fn scores", fine, SCORES_INF)

    top_final = coarse.gather(1, top) + fine if add_coarse else fine  # (N, k)
    is_top = torch.zeros_like(coarse, dtype=torch.bool).scatter_(1, top, True)  # (N, M)
    if k == M:
        return torch.zeros_like(coarse).scatter_(1, top, top_final)
    rest = coarse.masked_fill(is_top, float("-inf"))  # (N, M), only the non-top-k
    shift = (rest.amax(dim=1) - top_final.amin(dim=1) + 1.0).clamp_min(0.0)  # (N,)
    shift = torch.nan_to_num(shift, nan=0.0, posinf=0.0)  # rows whose scores hold +-inf
    final = coarse - shift[:, None]  # (N, M), the rest keep their coarse order
    return final.scatter_(1, top, top_final)  # (N, M)
